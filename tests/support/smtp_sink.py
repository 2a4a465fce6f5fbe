"""A real SMTP server that records what it receives: the smarthost in tests."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    received_monotonic: float
    message: EmailMessage = field(init=False)

    def __post_init__(self) -> None:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.message = parsed

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        content: str = part.get_content() if part is not None else ""
        return content.replace("\r\n", "\n")


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        if self.sink.refuse_with:
            return self.sink.refuse_with
        with self.sink.lock:
            self.sink.mails.append(
                ReceivedMail(
                    envelope.mail_from or "",
                    list(envelope.rcpt_tos),
                    envelope.original_content or b"",
                    time.monotonic(),
                )
            )
            self.sink.arrived.notify_all()
        return "250 OK"


class SmtpSink:
    def __init__(self, idle_timeout: float = 300) -> None:
        self.mails: list[ReceivedMail] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.refuse_with: str | None = None
        self.delay = 0.0  # seconds each DATA takes: a slow smarthost
        self.port = free_port()
        self.controller = Controller(
            _SinkHandler(self),
            hostname="127.0.0.1",
            port=self.port,
            decode_data=False,
            # Seconds before an idle client is dropped with 421, as real servers do.
            timeout=idle_timeout,
        )

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.mails) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} mails at the sink, got {len(self.mails)}: "
                        + ", ".join(m.subject for m in self.mails)
                    )
                self.arrived.wait(remaining)
            return list(self.mails)

    def to(self, address: str) -> list[ReceivedMail]:
        with self.lock:
            return [m for m in self.mails if address in m.rcpt_tos]
