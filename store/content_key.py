"""The content key: the name two stored copies of one mail share, whatever delivered them.

A retried SMTP delivery, a second delivery by an MX, or an IMAP copy fetched again
after a UIDVALIDITY change carries the bytes its sender wrote, plus trace fields the
receiving side added on the way (RFC 5321 section 4.4 and the like). The key is the
sha256 of the mail with those fields left out, so every copy of one mail gets the same
key and two different mails do not:

- line endings are read as LF, whether the copy came with CRLF or LF;
- the header block ends at the first empty line; every field in it is kept, in order,
  except the trace fields below; a folded field is unfolded, its name lower-cased, and
  runs of spaces and tabs in it read as one space;
- the body is kept byte for byte, except for line ends at its very end.

The Message-ID field is part of the header block, so "the same Message-ID and the same
content" and, for mail without one, "the same content" are one rule. Every other
field (Date, From, Subject, DKIM-Signature, ...) counts: a copy that differs anywhere
else is a different mail, since taking two mails for one would lose one.

The stored raw bytes are never changed; the key is only computed from them. It lives
in the store because it is the key of the store's `inbound_dedup` table, and the
migration that created the table computed it for mail already processed: a change
to this definition needs a migration that computes the keys again.
"""

from __future__ import annotations

import hashlib
import re

# Fields a receiving host adds per delivery: the same mail delivered twice has them
# twice, with other values (time stamps, queue ids, hops, filter scores).
TRACE_FIELDS = frozenset(
    {
        b"received",
        b"return-path",
        b"delivered-to",
        b"x-original-to",
        b"envelope-to",
        b"x-received",
        b"received-spf",
        b"authentication-results",
        b"arc-authentication-results",
        b"arc-message-signature",
        b"arc-seal",
    }
)
# Spam filters at the MX (SpamAssassin and its kind) score each delivery afresh.
TRACE_PREFIXES = (b"x-spam-",)

_BLANKS = re.compile(rb"[ \t]+")


def _is_trace(name: bytes) -> bool:
    return name in TRACE_FIELDS or name.startswith(TRACE_PREFIXES)


def _split(text: bytes) -> tuple[bytes, bytes]:
    """Header block and body of LF-ended text."""
    if text.startswith(b"\n"):
        return b"", text[1:]  # no header block at all
    head, _, body = text.partition(b"\n\n")
    return head, body


def _fields(head: bytes) -> list[bytes]:
    """Header fields, unfolded, in order; continuation lines join their field."""
    fields: list[bytes] = []
    for line in head.split(b"\n"):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += b" " + line
        else:
            fields.append(line)
    return fields


def canonical_content(raw: bytes) -> bytes:
    """The bytes the content key is the sha256 of (see the module docstring)."""
    head, body = _split(raw.replace(b"\r\n", b"\n"))
    kept: list[bytes] = []
    for field in _fields(head):
        name, colon, value = field.partition(b":")
        name = name.strip().lower()
        if colon and _is_trace(name):
            continue
        if colon:
            kept.append(name + b":" + _BLANKS.sub(b" ", value).strip())
        else:
            kept.append(_BLANKS.sub(b" ", field).strip())  # not a field; kept as text
    return b"\n".join(kept) + b"\n\n" + body.rstrip(b"\n")


def content_key(raw: bytes) -> str:
    """64 hex digits naming this mail's content; equal for every copy of one mail."""
    return hashlib.sha256(canonical_content(raw)).hexdigest()
