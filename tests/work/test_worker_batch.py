"""The worker's batches: one commit for many mails, and one bad mail spoils nothing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from gateway.clock import FakeClock
from gateway.ingest.inbound import store_inbound
from gateway.work.worker import Worker
from store.db import Store
from store.models import Case, InboundItem
from tests.conftest import make_config
from tests.support.mails import build_mail
from tests.support.templates import acknowledgement_failing_on


def test_a_failing_mail_is_quarantined_alone(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    # An admin's template that breaks for one subject only.
    template_dir = acknowledgement_failing_on("boom", tmp_path)
    worker = Worker(make_config(store, template_dir=template_dir), store, clock)
    for subject in ("URGENT: one", "URGENT: boom", "URGENT: three", "just a question"):
        store_inbound(store, build_mail(subject=subject), source="test", clock=clock)

    outcomes = worker.process_batch()

    assert [(o.state, o.decision) for o in outcomes] == [
        ("done", "open"),
        ("quarantined", None),
        ("done", "open"),
        ("done", "ignore"),
    ]
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 2
        bad = session.scalars(select(InboundItem).where(InboundItem.state == "quarantined")).one()
    assert "no_such_value" in (bad.error or "")
    assert worker.process_batch() == []


def test_batches_are_bounded(store: Store, clock: FakeClock) -> None:
    worker = Worker(make_config(store), store, clock)
    for n in range(25):
        store_inbound(store, build_mail(subject=f"URGENT: {n}"), source="test", clock=clock)
    assert len(worker.process_batch(limit=20)) == 20
    assert len(worker.process_batch(limit=20)) == 5


def test_a_mail_stored_twice_in_one_batch_is_processed_once(store: Store, clock: FakeClock) -> None:
    worker = Worker(make_config(store), store, clock)
    raw = build_mail(subject="URGENT: twice", message_id="<twice@acme.example>")
    # A resend with the same Message-ID but other bytes is a new mail, not a copy.
    edited = build_mail(subject="URGENT: twice, edited", message_id="<twice@acme.example>")
    for mail in (raw, raw, edited):
        store_inbound(store, mail, source="test", clock=clock)

    outcomes = worker.process_batch()
    store_inbound(store, raw, source="test", clock=clock)
    later = worker.process_batch()

    assert [o.state for o in outcomes] == ["done", "duplicate", "done"]
    assert [o.state for o in later] == ["duplicate"]
    with store.session() as session:
        items = session.scalars(select(InboundItem).order_by(InboundItem.id)).all()
        assert [i.state for i in items] == ["done", "duplicate", "done", "duplicate"]
        assert items[1].case_id == items[3].case_id == items[0].case_id is not None
        assert [i.attempts for i in items] == [1, 1, 1, 1]
