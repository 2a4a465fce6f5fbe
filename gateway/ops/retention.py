"""Retention: raw mail of cases closed long enough ago is removed, the rest is kept.

With `[retention] closed_case_raw_mail_days = N` (0, the default, keeps everything)
`run` empties the raw bytes of inbound and outgoing mail on every case closed more
than N days ago. The case, its events, the stored decisions (which rule fired, with
its evidence) and the mail's headers-level facts (Message-ID, hash, sender) stay, so
reports and the audit trail still answer; the mail itself is gone. Each case gets a
`raw_mail_removed` event, and each run that removed anything one row in
`data_protection_log`. A reopened case is not closed, so its mail is kept.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, Result, select, update
from sqlalchemy.orm import Session

from gateway.clock import Clock
from gateway.config.sections import RetentionConfig
from store.db import Store
from store.models import Case, CaseEvent, DataProtectionLog, InboundItem, OutboxMail

log = logging.getLogger("gateway.retention")

ACTOR = "retention"
# Cases handled per transaction, so the store's write lock is never held for long.
BATCH = 100


def _expired_cases(session: Session, cutoff: datetime, limit: int) -> list[int]:
    has_raw_in = select(InboundItem.id).where(
        InboundItem.case_id == Case.id, InboundItem.raw != b""
    )
    has_raw_out = select(OutboxMail.id).where(
        OutboxMail.case_id == Case.id, OutboxMail.raw != b"", OutboxMail.state != "pending"
    )
    query = (
        select(Case.id)
        .where(Case.state == "closed", Case.closed_at < cutoff)
        .where(has_raw_in.exists() | has_raw_out.exists())
        .order_by(Case.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def _changed(result: Result[Any]) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def remove_raw_mail(
    session: Session, days: int, now: datetime, limit: int = BATCH
) -> dict[str, int]:
    """One batch: empty raw mail of up to `limit` expired cases; counts removed."""
    cutoff = now - timedelta(days=days)
    case_ids = _expired_cases(session, cutoff, limit)
    counts = {"cases": len(case_ids), "inbound_items": 0, "outbox": 0}
    if not case_ids:
        return counts
    for case_id in case_ids:
        inbound = _changed(
            session.execute(
                update(InboundItem)
                .where(InboundItem.case_id == case_id, InboundItem.raw != b"")
                .values(raw=b"")
            )
        )
        outbound = _changed(
            session.execute(
                update(OutboxMail)
                .where(
                    OutboxMail.case_id == case_id,
                    OutboxMail.raw != b"",
                    OutboxMail.state != "pending",
                )
                .values(raw=b"")
            )
        )
        counts["inbound_items"] += inbound
        counts["outbox"] += outbound
        session.add(
            CaseEvent(
                case_id=case_id,
                at=now,
                kind="raw_mail_removed",
                actor=ACTOR,
                detail=f"raw mail removed {days} days after closing:"
                f" {inbound} received, {outbound} sent",
                data={"inbound": inbound, "outbox": outbound, "days": days},
            )
        )
    session.add(
        DataProtectionLog(
            at=now,
            action="retention",
            selector=f"closed-before:{cutoff.isoformat()}",
            actor=ACTOR,
            counts=counts,
        )
    )
    return counts


class RetentionJob:
    """Run by `run` in its own thread: removes what expired, once per check interval."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._next_check: datetime | None = None

    def step(self, config: RetentionConfig) -> bool:
        """True while a batch was full (more may wait); False when idle or off."""
        if config.closed_case_raw_mail_days == 0:
            return False
        now = self.clock.now()
        if self._next_check is not None and now < self._next_check:
            return False
        with self.store.transaction() as session:
            counts = remove_raw_mail(session, config.closed_case_raw_mail_days, now)
        if counts["cases"]:
            log.info(
                "retention: raw mail removed from %s closed cases (%s received, %s sent)",
                counts["cases"],
                counts["inbound_items"],
                counts["outbox"],
            )
        if counts["cases"] == BATCH:
            return True
        self._next_check = now + config.check_interval
        return False
