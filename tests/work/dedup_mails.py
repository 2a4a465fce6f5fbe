"""Mail as a second delivery or a re-fetched copy brings it, for the de-duplication tests."""

from __future__ import annotations

import re

# Fields a receiving MX adds on top of each delivery it makes.
TRACE = (
    b"Return-Path: <alice@acme.example>\r\n"
    b"Delivered-To: support@example.com\r\n"
    b"Received: from mx2.example.com (mx2.example.com [192.0.2.7])\r\n"
    b"\tby gateway.example.com; Mon, 23 Nov 2026 14:02:11 +0000\r\n"
)


def without_message_id(raw: bytes) -> bytes:
    """The mail as a client that sets no Message-ID (a script, a device) sends it."""
    return re.sub(rb"(?im)^message-id:.*\r\n", b"", raw, count=1)
