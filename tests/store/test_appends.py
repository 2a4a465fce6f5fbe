"""Held append rows: written before anything in the transaction could read them, once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from gateway.clock import FakeClock
from gateway.ingest.inbound import store_inbound
from gateway.work.worker import Worker
from store.appends import add_auto_reply, add_event, insert_as_persistent
from store.db import Store
from store.models import AutoReplyLog, Case, CaseEvent
from tests.act.test_open_path_rows import statements
from tests.conftest import make_config
from tests.support.mails import build_mail

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def _case() -> Case:
    return Case(
        state="open",
        level=2,
        owner_name="Lee",
        owner_email="lee@example.com",
        customer_email="alice@acme.example",
        subject="Export broken",
        opened_at=NOW,
        updated_at=NOW,
    )


def test_held_rows_are_read_back_in_order_by_the_next_query(store: Store) -> None:
    with store.transaction() as session:
        case = _case()
        insert_as_persistent(session, case)
        for kind in ("opened", "acknowledged", "note"):
            add_event(session, case_id=case.id, at=NOW, kind=kind, detail=kind)
        kinds = session.scalars(
            select(CaseEvent.kind).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        ).all()
        assert kinds == ["opened", "acknowledged", "note"]
        # A persistent case is tracked as if loaded: a change is a plain UPDATE.
        case.level = 3
    with store.session() as session:
        stored = session.get(Case, case.id)
        assert stored is not None and stored.level == 3 and stored.paused_seconds == 0


def test_a_rolled_back_transaction_leaves_no_held_row_behind(store: Store) -> None:
    with store.transaction() as session:
        case = _case()
        insert_as_persistent(session, case)
        case_id = case.id
    with pytest.raises(RuntimeError), store.transaction() as session:
        add_auto_reply(session, address="alice@acme.example", at=NOW)
        add_event(session, case_id=case_id, at=NOW, kind="lost", detail="")
        raise RuntimeError("the mail failed")
    with store.transaction() as session:
        add_event(session, case_id=case_id, at=NOW, kind="kept", detail="")
    with store.session() as session:
        assert session.scalars(select(CaseEvent.kind)).all() == ["kept"]
        assert session.scalar(select(func.count()).select_from(AutoReplyLog)) == 0


def test_a_batch_of_opened_cases_writes_each_table_in_one_statement(
    store: Store, clock: FakeClock
) -> None:
    worker = Worker(make_config(store), store, clock)
    # The first mail reads the stored reply-token secret once, a query that writes
    # what is held; from then on nothing in an opening reads through the ORM.
    store_inbound(store, build_mail(subject="URGENT: first"), source="test", clock=clock)
    worker.process_batch()
    for n in range(4):
        raw = build_mail(subject=f"URGENT: export broken {n}", message_id=f"<b{n}@acme.example>")
        store_inbound(store, raw, source="test", clock=clock)
    with statements(store) as seen:
        outcomes = worker.process_batch()
    assert [o.decision for o in outcomes] == ["open"] * 4
    # Events, links and the cap's log rows are held and go out together at commit.
    for table in ("case_events", "message_links", "auto_reply_log"):
        assert sum(s.startswith(f"INSERT INTO {table}") for s in seen) == 1, table
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(CaseEvent)) == 5
        assert session.scalar(select(func.count()).select_from(AutoReplyLog)) == 5
