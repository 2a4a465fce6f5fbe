"""A mail stored twice is acted on once: decided by the content key the store holds.

The race that matters: two workers (two daemons on one PostgreSQL store) each hold a
copy of one mail at the same time. The second must wait for the first's transaction
and then see its copy as a duplicate, or act on it if the first rolled back.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.clock import FakeClock
from gateway.ingest.inbound import store_inbound
from gateway.work.worker import Outcome, Worker
from store.db import Store
from store.models import Case, InboundDedup, InboundItem, OutboxMail
from tests.conftest import make_config
from tests.support.mails import build_mail
from tests.work.dedup_mails import TRACE, without_message_id


def _count(store: Store, model: Any, *where: Any) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _items(store: Store) -> list[InboundItem]:
    with store.session() as session:
        return list(session.scalars(select(InboundItem).order_by(InboundItem.id)))


def test_a_mail_without_message_id_is_acted_on_once(store: Store, clock: FakeClock) -> None:
    worker = Worker(make_config(store), store, clock)
    raw = without_message_id(build_mail(subject="URGENT: no id on this one"))
    store_inbound(store, raw, source="imap:support", clock=clock)
    [first] = worker.process_batch()
    # The same mail again, as a second delivery by the MX: new trace fields on top.
    store_inbound(store, TRACE + raw, source="smtp", clock=clock)
    [second] = worker.process_batch()

    assert (first.state, first.decision, second.state) == ("done", "open", "duplicate")
    items = _items(store)
    assert items[1].raw == TRACE + raw  # the copy is stored as it came
    assert items[1].case_id == items[0].case_id is not None
    assert _count(store, Case) == 1
    assert _count(store, OutboxMail, OutboxMail.kind == "acknowledgement") == 1


def test_a_copy_that_differs_in_content_is_a_mail_of_its_own(
    store: Store, clock: FakeClock
) -> None:
    worker = Worker(make_config(store), store, clock)
    raw = without_message_id(build_mail(subject="URGENT: disk full"))
    store_inbound(store, raw, source="smtp", clock=clock)
    store_inbound(store, raw.replace(b"this morning", b"this evening"), source="smtp", clock=clock)
    assert [o.state for o in worker.process_batch()] == ["done", "done"]
    assert _count(store, Case) == 2


def _process_in_thread(worker: Worker) -> tuple[threading.Thread, list[Outcome]]:
    outcomes: list[Outcome] = []
    thread = threading.Thread(target=lambda: outcomes.extend(worker.process_batch()))
    thread.start()
    return thread, outcomes


@pytest.mark.parametrize("first_commits", [True, False], ids=["commits", "rolls-back"])
def test_a_copy_in_flight_elsewhere_waits_for_that_transaction(
    store: Store, clock: FakeClock, first_commits: bool
) -> None:
    config = make_config(store)
    first, second = Worker(config, store, clock), Worker(config, store, clock)
    raw = build_mail(subject="URGENT: checkout down", message_id="<twice@acme.example>")
    original = store_inbound(store, raw, source="smtp", clock=clock)
    store_inbound(store, TRACE + raw, source="smtp", clock=clock)

    class RolledBack(Exception):
        pass

    try:
        with store.transaction() as session:
            claimed = first._claim(session, 1)
            assert [item.id for item in claimed] == [original]
            [outcome] = first._process_all(session, claimed, {})
            assert outcome.decision == "open"
            # The other worker takes the copy while this transaction is still open.
            thread, outcomes = _process_in_thread(second)
            thread.join(1.0)
            assert thread.is_alive(), f"decided before the first copy committed: {outcomes}"
            if not first_commits:
                raise RolledBack
    except RolledBack:
        pass
    thread.join(30)
    assert not thread.is_alive()

    if first_commits:
        [copy] = outcomes
        assert copy.state == "duplicate"
        assert copy.detail == f"same content as item {original}"
    else:
        # The first copy's work went with its transaction: the other worker acts on
        # the mail instead (on PostgreSQL on its copy, the first one being locked; on
        # SQLite, whose claim waited for the lock, on both in order).
        assert "done" in [o.state for o in outcomes]
        first.process_batch()
        assert sorted(item.state for item in _items(store)) == ["done", "duplicate"]
    assert _count(store, Case) == 1
    assert _count(store, OutboxMail, OutboxMail.kind == "acknowledgement") == 1
    assert _count(store, InboundDedup) == 1


def test_a_quarantined_copy_holds_no_key(store: Store, clock: FakeClock) -> None:
    worker = Worker(make_config(store), store, clock)
    broken = b"\r\nno header block at all, so the worker quarantines it\r\n"
    store_inbound(store, broken, source="smtp", clock=clock)
    [outcome] = worker.process_batch()
    assert outcome.state == "quarantined"
    assert _count(store, InboundDedup) == 0
