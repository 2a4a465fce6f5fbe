"""A running gateway (listener, worker, sender) over a real store and SMTP sink."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from gateway.clock import FakeClock
from gateway.config import GatewayConfig
from gateway.daemon import Daemon
from store.db import Store
from store.models import Case, CaseEvent, InboundItem, OutboxMail
from tests.support.mails import send
from tests.support.smtp_sink import ReceivedMail, SmtpSink
from tests.support.waiting import wait_until


class Gateway:
    def __init__(self, config: GatewayConfig, store: Store, sink: SmtpSink, clock: FakeClock):
        self.config, self.store, self.sink, self.clock = config, store, sink, clock
        self.daemon = Daemon(config, store, clock)

    @property
    def port(self) -> int:
        return self.config.smtp.port

    def send(self, raw: bytes, **kwargs: Any) -> None:
        send(self.port, raw, **kwargs)

    def settle(self) -> None:
        """Wait until every stored item is processed and every mail left the outbox."""

        def idle() -> bool:
            with self.store.session() as session:
                pending = session.scalar(select(func.count()).where(InboundItem.state == "pending"))
                unsent = session.scalar(select(func.count()).where(OutboxMail.state == "pending"))
            return pending == 0 and unsent == 0

        wait_until(idle, what="gateway to settle")

    def cases(self) -> list[Case]:
        with self.store.session() as session:
            return list(session.scalars(select(Case).order_by(Case.id)))

    def events(self, case: Case) -> list[CaseEvent]:
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
                )
            )


def only(mails: list[ReceivedMail]) -> ReceivedMail:
    assert len(mails) == 1, [m.subject for m in mails]
    return mails[0]
