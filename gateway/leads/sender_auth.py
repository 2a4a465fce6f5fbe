"""Optional third layer of command authorization: DKIM or DMARC passed at our border.

Authentication-Results headers (RFC 8601) can be written by anyone: a sender can put
one in the mail it submits, naming our border server and claiming dkim=pass. Each
server prepends its own, so the header our border MTA added sits above anything the
sender wrote. Following RFC 8601 section 5 only one instance is read: the topmost
header whose authserv-id is one the admin named as trusted. Lower ones, even with
the same authserv-id, are ignored; that our border strips or never forwards
sender-made headers with its authserv-id is a requirement on the border (README,
"Who may"). If that topmost header cannot be parsed, nothing below it is believed
either.

A pass counts only when it is aligned with the From domain, as DMARC means it: a
dmarc=pass for the From domain, or a dkim=pass whose signing domain (header.d) is
the From domain or a parent of it. A valid signature by some other domain proves
nothing about who wrote From. The `authres` library parses the header's grammar
(comments, quoted values, several results per header).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import authres

from parsers.model import ParsedMail

_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class SenderCheck:
    passed: bool
    detail: str  # what was found, for the confirmation, the audit trail and the log
    code: str = ""  # for a failure: not_authenticated or not_aligned


def _authserv_id(value: str) -> str:
    """The authserv-id before the first ';', read without the full grammar."""
    head = _COMMENT.sub(" ", value.split(";", 1)[0]).split()
    return head[0].lower() if head else ""


def _topmost_trusted(mail: ParsedMail, trusted: set[str]) -> str | None:
    for value in mail.header_values("authentication-results"):
        if _authserv_id(value) in trusted:
            return value
    return None


def _property(result: authres.core.AuthenticationResult, kind: str, name: str) -> str:
    for prop in result.properties:
        if prop.type == kind and prop.name == name:
            return str(prop.value).strip().lower()
    return ""


def aligned(signing_domain: str, from_domain: str) -> bool:
    """DKIM d= equal to the From domain or a parent of it (never a bare top-level name)."""
    signing, author = signing_domain.strip(".").lower(), from_domain.strip(".").lower()
    if not signing or "." not in signing:
        return False
    return author == signing or author.endswith("." + signing)


def check_sender(mail: ParsedMail, from_domain: str, trusted_servers: Iterable[str]) -> SenderCheck:
    """Whether our border vouches, aligned with `from_domain`, for the mail's author."""
    trusted = {server.lower() for server in trusted_servers}
    value = _topmost_trusted(mail, trusted)
    if value is None:
        names = ", ".join(sorted(trusted))
        return SenderCheck(
            False, f"no Authentication-Results from a trusted server ({names})", "not_authenticated"
        )
    try:
        parsed = authres.AuthenticationResultsHeader.parse(
            "Authentication-Results: " + " ".join(value.split())
        )
    except Exception:  # the library raises several types on malformed input
        return SenderCheck(
            False,
            f"the topmost Authentication-Results of {_authserv_id(value)} is unreadable",
            "not_authenticated",
        )
    by = parsed.authserv_id
    found: list[str] = []
    for result in parsed.results:
        if result.method == "dmarc":
            domain = _property(result, "header", "from")
            if result.result == "pass" and domain == from_domain:
                return SenderCheck(True, f"dmarc=pass for {domain} by {by}")
            found.append(f"dmarc={result.result} for {domain or '?'}")
        elif result.method == "dkim":
            domain = _property(result, "header", "d")
            if result.result == "pass" and aligned(domain, from_domain):
                return SenderCheck(True, f"dkim=pass for {domain} by {by}")
            found.append(f"dkim={result.result} for {domain or '?'}")
    if any("=pass" in f for f in found):
        return SenderCheck(
            False,
            f"{by} found {', '.join(found)}: no pass for the From domain {from_domain}",
            "not_aligned",
        )
    what = ", ".join(found) or "no dkim or dmarc result"
    return SenderCheck(False, f"{by} found {what}", "not_authenticated")
