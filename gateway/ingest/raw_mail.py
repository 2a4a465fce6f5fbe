"""An inbound item's columns from the raw bytes, read without parsing the mail.

Imports only the standard library, because pipe ingest (gateway/ingest/pipe.py) uses
it too and must start fast; the full path (gateway/ingest/inbound.py) shares it so the
two write the same columns.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def peek_message_id(raw: bytes) -> str | None:
    """The Message-ID from the header block, read without a full parse."""
    header_end = re.search(rb"\r?\n\r?\n", raw)
    head = raw[: header_end.start()] if header_end else raw
    match = _MESSAGE_ID.search(head)
    if match is None:
        return None
    value = match.group(1).decode("ascii", "replace").strip()
    return value.strip("<>").strip() or None


def content_hash(raw: bytes) -> str:
    """sha256 of the exact bytes (not the content key: that leaves trace fields out)."""
    return hashlib.sha256(raw).hexdigest()


def null_sender_as_empty(mail_from: str | None) -> str | None:
    """A bounce's null sender as one value: aiosmtpd hands over `<>` as written,
    a pipe transport's `${sender}` (with null_sender=) is empty."""
    if mail_from is not None and mail_from.strip() == "<>":
        return ""
    return mail_from


def inbound_columns(
    raw: bytes,
    source: str,
    received_at: datetime,
    mail_from: str | None,
    rcpt_tos: Sequence[str],
) -> dict[str, Any]:
    """The columns of one new, pending inbound item."""
    return {
        "received_at": received_at,
        "source": source,
        "mail_from": null_sender_as_empty(mail_from),
        "rcpt_tos": list(rcpt_tos),
        "raw": raw,
        "sha256": content_hash(raw),
        "message_id": peek_message_id(raw),
        "state": "pending",
        "attempts": 0,
    }
