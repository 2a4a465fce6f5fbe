"""Drive the gateway through simulated days: real listener, store and SMTP sink, fake clock.

Instead of ticking every few seconds of simulated time, the simulation jumps the clock
straight to the earliest stored timer, which is what a daemon ticking every five
seconds would see, only thousands of times faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesParser
from email.utils import parseaddr, parsedate_to_datetime
from typing import Any

from sqlalchemy import func, select

from gateway.cli.case_changes import CaseChanges
from gateway.clock import FakeClock
from gateway.config import GatewayConfig
from gateway.ingest.smtp import InboundHandler, RecipientPolicy, SmtpListener
from gateway.outbound.delivery import OutboxSender
from gateway.outbound.marks import OWN_MARKER_HEADER
from gateway.timeline.timers import TimerTicker
from gateway.work.worker import Worker
from store.db import Store
from store.models import Case, OutboxMail
from tests.conftest import make_config
from tests.support.mails import build_mail, send
from tests.support.smtp_sink import SmtpSink

OWNERS_L1 = [{"name": "Senior Agent", "email": "senior@example.com"}]
SUPPORT_MANAGER = [{"name": "Support Manager", "email": "support-manager@example.com"}]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in November 2026 (UTC), the month every simulation runs in."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def timeline_config(
    store: Store, sink: SmtpSink, *, level_overrides: dict[int, dict[str, Any]] | None = None
) -> GatewayConfig:
    """Business hours 09:00-17:00 UTC Mon-Fri, Wednesday 25 Nov 2026 a holiday."""
    levels: list[dict[str, Any]] = [
        {
            "number": 1,
            "name": "Senior support agent",
            "first_response": "4h",
            "status_interval": "8h",
            "resolution": "3d",
            "calendar": "business",
            "owners": OWNERS_L1,
        },
        {
            "number": 2,
            "name": "Team lead",
            "first_response": "1h",
            "status_interval": "4h",
            "resolution": "2d",
            "monitoring": "48h",
            "calendar": "business",
            "owners": [{"name": "Team Lead", "email": "lead@example.com"}],
            "managers": SUPPORT_MANAGER,
            "assignment": "account_lead",
        },
        {
            "number": 3,
            "name": "Technical team",
            "first_response": "1h",
            "status_interval": "4h",
            "resolution": "1d",
            "owners": [{"name": "On-call Engineer", "email": "oncall@example.com"}],
            "managers": [{"name": "Engineering Manager", "email": "eng-manager@example.com"}],
        },
        {
            "number": 4,
            "name": "Executive team",
            "first_response": "30m",
            "status_interval": "2h",
            "resolution": "12h",
            "owners": [{"name": "Head of Support", "email": "head-of-support@example.com"}],
            "managers": [{"name": "Chief Operating Officer", "email": "coo@example.com"}],
        },
    ]
    for level in levels:
        level.update((level_overrides or {}).get(int(level["number"]), {}))
    return make_config(
        store,
        sink,
        calendars={
            "business": {
                "timezone": "UTC",
                "working_days": ["mon", "tue", "wed", "thu", "fri"],
                "hours": "09:00-17:00",
                "holidays": ["2026-11-25"],
            }
        },
        levels=levels,
        auto_reply={"max_per_address_per_hour": 20},
    )


def mail(
    *,
    sender: str,
    to: str = "support@example.com",
    cc: str = "",
    subject: str = "Checkout is failing for all our users",
    body: str = "Since this morning no customer can pay. Please help.",
    message_id: str,
    in_reply_to: str | None = None,
    date: datetime | None = None,
) -> bytes:
    reply = f"<{in_reply_to}>" if in_reply_to else None
    return build_mail(
        sender=sender,
        to=to,
        cc=cc or None,
        subject=subject,
        body=body,
        message_id=f"<{message_id}>",
        in_reply_to=reply,
        references=reply,
        date=date,
    )


@dataclass(frozen=True)
class Sent:
    at: datetime
    kind: str
    to: tuple[str, ...]

    def __repr__(self) -> str:
        return f"{self.at:%a %H:%M} {self.kind} -> {','.join(self.to)}"


class Simulation:
    def __init__(self, store: Store, sink: SmtpSink, clock: FakeClock, config: GatewayConfig):
        self.store, self.sink, self.clock, self.config = store, sink, clock, config
        self.ticks = 0
        self.restart()

    def restart(self) -> None:
        """New objects on the same store: everything they need must come from the store."""
        self.worker = Worker(self.config, self.store, self.clock)
        self.ticker = TimerTicker(self.config, self.store, self.clock)
        self.sender = OutboxSender(self.config.outbound, self.store, self.clock)
        self.commands = CaseChanges(self.config, self.store, self.clock)

    def receive(self, raw: bytes, *, rcpt: str = "support@example.com") -> str | None:
        """Mail in through a real SMTP listener (up for this one mail), then the worker."""
        stored: list[int] = []
        handler = InboundHandler(
            self.store, self.clock, RecipientPolicy(self.config.smtp), stored.append
        )
        listener = SmtpListener(self.config.smtp, handler)
        listener.start()
        try:
            envelope_from = parseaddr(str(BytesParser().parsebytes(raw, headersonly=True)["From"]))
            send(listener.port, raw, mail_from=envelope_from[1], rcpt=(rcpt,))
        finally:
            listener.stop()
        [item_id] = stored
        outcome = self.worker.process_next(item_id)
        assert outcome is not None and outcome.state == "done", outcome
        self.sender.deliver_due()
        return outcome.case_key

    def _earliest_timer(self) -> datetime | None:
        with self.store.session() as session:
            return session.scalar(select(func.min(Case.next_timer_at)))

    def tick(self) -> None:
        self.ticker.tick()
        self.ticks += 1
        self.sender.deliver_due()

    def run_until(self, end: datetime) -> None:
        for _ in range(10_000):
            earliest = self._earliest_timer()
            if earliest is None or earliest > end:
                self.clock.set(max(end, self.clock.now()))
                self.tick()
                return
            self.clock.set(max(earliest, self.clock.now()))
            self.tick()
        raise AssertionError("timers never settled")

    def outbox(self) -> list[OutboxMail]:
        with self.store.session() as session:
            return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))

    def sent(self, since: datetime | None = None) -> list[Sent]:
        """What reached the SMTP sink, with the send time taken from each mail's Date.

        Staff mail goes out once per recipient (each copy carries that person's own
        reply token); the copies of one notice are listed once, with all recipients.
        """
        result: dict[tuple[datetime, str, str, int], Sent] = {}
        for n, received in enumerate(self.sink.wait_for(len(self.outbox()))):
            date = parsedate_to_datetime(str(received.message["Date"])).astimezone(UTC)
            message_id = str(received.message["Message-ID"]).strip().strip("<>")
            kind = self._kind_of(message_id)
            if since is not None and date < since:
                continue
            case_key = str(received.message[OWN_MARKER_HEADER] or "")
            # Only staff copies (ids tagged with the case's token) merge.
            staff = bool(case_key) and message_id.startswith(f"{case_key}.")
            key = (date, kind, case_key, -1 if staff else n)
            earlier = result.get(key)
            to = (*earlier.to, *received.rcpt_tos) if earlier else tuple(received.rcpt_tos)
            result[key] = Sent(date, kind, tuple(sorted(to)))
        return list(result.values())

    def _kind_of(self, message_id: str) -> str:
        with self.store.session() as session:
            kind = session.scalar(
                select(OutboxMail.kind).where(OutboxMail.message_id == message_id)
            )
        assert kind is not None
        return kind

    def case(self, key: str) -> Case:
        with self.store.session() as session:
            case = session.scalar(select(Case).where(Case.key == key))
            assert case is not None
            return case

    def last_text(self, kind: str) -> str:
        texts = [
            m.text
            for m in self.sink.mails
            if self._kind_of(str(m.message["Message-ID"]).strip().strip("<>")) == kind
        ]
        return texts[-1]

    def root_message_id(self, key: str) -> str:
        with self.store.session() as session:
            value = session.scalar(select(Case.root_message_id).where(Case.key == key))
            assert value
            return value

    def message_id_of(self, kind: str, nth: int = -1) -> str:
        ids = [m.message_id for m in self.outbox() if m.kind == kind]
        return ids[nth]
