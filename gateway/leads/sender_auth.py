"""Optional third layer of command authorization: DKIM or DMARC passed upstream.

Authentication-Results headers (RFC 8601) can be written by anyone, so only those
added by servers the admin names as trusted (by authserv-id) are believed. The
`authres` library parses the header's grammar (comments, quoted values, several
results per header), which is easy to get subtly wrong by hand.
"""

from __future__ import annotations

from collections.abc import Iterable

import authres

from parsers.model import ParsedMail


def authenticated_by(mail: ParsedMail, trusted_servers: Iterable[str]) -> str | None:
    """The passing method ("dkim=pass" or "dmarc=pass") from a trusted server, or None."""
    trusted = {server.lower() for server in trusted_servers}
    for value in mail.header_values("authentication-results"):
        try:
            parsed = authres.AuthenticationResultsHeader.parse(
                "Authentication-Results: " + " ".join(value.split())
            )
        except Exception:  # the library raises several types on malformed input
            continue
        if (parsed.authserv_id or "").lower() not in trusted:
            continue
        for result in parsed.results:
            if result.method in {"dkim", "dmarc"} and result.result == "pass":
                return f"{result.method}=pass by {parsed.authserv_id}"
    return None
