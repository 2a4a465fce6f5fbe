"""A real aiosmtpd smarthost that counts each Message-ID it accepts and can refuse.

aiosmtpd enforces RFC 5321's line limit on its own: a DATA line over 998 characters
(plus CRLF) gets "500 Line too long", as the smarthost in the issue answered.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.smtp_sink import free_port

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.MULTILINE | re.IGNORECASE)


class _Handler:
    def __init__(self, smarthost: Smarthost) -> None:
        self.smarthost = smarthost

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.smarthost.refuse.get(address)
        if reply is not None:
            with self.smarthost.lock:
                self.smarthost.refusals[address] += 1
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.smarthost.delay:
            await asyncio.sleep(self.smarthost.delay)
        raw = envelope.original_content or b""
        found = _MESSAGE_ID.search(raw)
        message_id = found.group(1).decode("ascii", "replace") if found else "<none>"
        with self.smarthost.lock:
            self.smarthost.accepted[message_id] += 1
            self.smarthost.raw.append(raw)
            self.smarthost.deliveries.append((message_id, tuple(envelope.rcpt_tos)))
            self.smarthost.accepted_at.append((message_id, time.monotonic()))
            for rcpt in envelope.rcpt_tos:
                self.smarthost.by_recipient.setdefault(rcpt, []).append(message_id)
        if self.smarthost.on_accept is not None:
            # Kept, and about to say so: what a test does here happens before the 250.
            self.smarthost.on_accept(message_id)
        return "250 OK"


class Smarthost:
    def __init__(self, refuse: dict[str, str] | None = None, delay: float = 0.0) -> None:
        # Recipient address -> the reply its RCPT TO gets instead of 250.
        self.refuse: dict[str, str] = dict(refuse or {})
        self.refusals: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()  # Message-ID -> times accepted
        self.deliveries: list[tuple[str, tuple[str, ...]]] = []  # (Message-ID, recipients)
        self.accepted_at: list[tuple[str, float]] = []  # (Message-ID, time.monotonic())
        self.by_recipient: dict[str, list[str]] = {}  # recipient -> Message-IDs accepted
        self.raw: list[bytes] = []
        self.delay = delay  # seconds each DATA takes before its 250
        self.on_accept: Callable[[str], None] | None = None  # called with each Message-ID
        self.lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, decode_data=False
        )

    def __enter__(self) -> Smarthost:
        self._controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._controller.stop()

    def total(self) -> int:
        with self.lock:
            return len(self.deliveries)

    def to(self, address: str) -> list[str]:
        """Message-IDs accepted for this recipient, once per acceptance."""
        with self.lock:
            return list(self.by_recipient.get(address, ()))

    def recipients_reached(self, addresses: set[str]) -> int:
        with self.lock:
            return len(addresses.intersection(self.by_recipient))
