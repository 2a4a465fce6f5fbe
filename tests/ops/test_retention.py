"""Retention: raw mail of cases closed N days ago goes; the case and its trail stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from gateway.clock import FakeClock
from gateway.config.sections import RetentionConfig
from gateway.daemon import Daemon
from gateway.ingest.inbound import store_inbound
from gateway.ops.retention import RetentionJob, remove_raw_mail
from gateway.work.worker import Worker
from store.db import Store
from store.models import Case, CaseEvent, DataProtectionLog, InboundItem, OutboxMail
from tests.conftest import make_config
from tests.support.mails import build_mail
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import wait_until


def two_cases(store: Store, clock: FakeClock) -> tuple[int, int]:
    """An old closed case and one closed yesterday, each with mail in and out (sent)."""
    for subject in ("URGENT: old trouble", "URGENT: new trouble"):
        store_inbound(store, build_mail(subject=subject), source="smtp", clock=clock)
    Worker(make_config(store), store, clock).process_batch()
    with store.transaction() as session:
        old, new = session.scalars(select(Case.id).order_by(Case.id)).all()
        for case_id, age in ((old, 40), (new, 1)):
            session.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(state="closed", closed_at=clock.now() - timedelta(days=age))
            )
        session.execute(update(OutboxMail).values(state="sent"))
    return old, new


def raw_sizes(store: Store, case_id: int) -> list[int]:
    with store.session() as session:
        inbound = session.scalars(select(InboundItem.raw).where(InboundItem.case_id == case_id))
        outbound = session.scalars(select(OutboxMail.raw).where(OutboxMail.case_id == case_id))
        return [len(raw) for raw in [*inbound, *outbound]]


def test_raw_mail_of_long_closed_cases_is_removed_once(store: Store, clock: FakeClock) -> None:
    old, new = two_cases(store, clock)
    assert all(raw_sizes(store, old)) and all(raw_sizes(store, new))
    with store.transaction() as session:
        counts = remove_raw_mail(session, 30, clock.now())
    assert counts == {"cases": 1, "inbound_items": 1, "outbox": 2}
    assert set(raw_sizes(store, old)) == {0}
    assert all(raw_sizes(store, new))
    with store.session() as session:
        event = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == old, CaseEvent.kind == "raw_mail_removed")
        ).one()
        assert event.data == {"inbound": 1, "outbox": 2, "days": 30}
        # The decision that opened the case survives the mail.
        explanation = session.scalar(
            select(InboundItem.explanation).where(InboundItem.case_id == old)
        )
        assert explanation is not None
        [entry] = session.scalars(select(DataProtectionLog)).all()
        assert (entry.action, entry.counts["cases"]) == ("retention", 1)
    with store.transaction() as session:
        assert remove_raw_mail(session, 30, clock.now())["cases"] == 0
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(DataProtectionLog)) == 1


def test_the_job_is_off_by_default_and_runs_once_per_interval(
    store: Store, clock: FakeClock
) -> None:
    old, new = two_cases(store, clock)
    job = RetentionJob(store, clock)
    assert job.step(RetentionConfig()) is False
    assert all(raw_sizes(store, old))
    config = RetentionConfig(closed_case_raw_mail_days=30, check_interval=timedelta(hours=1))
    job.step(config)
    assert set(raw_sizes(store, old)) == {0}
    # A case that expires a little later waits for the next check.
    with store.transaction() as session:
        session.execute(
            update(Case).where(Case.id == new).values(closed_at=clock.now() - timedelta(days=31))
        )
    job.step(config)
    assert all(raw_sizes(store, new))
    clock.advance(timedelta(hours=1))
    job.step(config)
    assert set(raw_sizes(store, new)) == {0}


def test_run_removes_expired_raw_mail_when_retention_is_on(
    store: Store, clock: FakeClock, smtp_sink: SmtpSink
) -> None:
    old, new = two_cases(store, clock)
    assert "retention" not in Daemon(make_config(store, smtp_sink), store, clock).probes()
    config = make_config(store, smtp_sink, retention={"closed_case_raw_mail_days": 30})
    daemon = Daemon(config, store, clock)
    daemon.start()
    try:
        wait_until(lambda: set(raw_sizes(store, old)) == {0}, what="retention to run")
        assert daemon.probes()["retention"]()
    finally:
        daemon.stop()
    assert all(raw_sizes(store, new))
