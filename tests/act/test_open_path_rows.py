"""Opening cases in one worker batch: every row a new case writes, in order, or none.

The open path writes its audit event straight to the session's connection and sets
the case key with its own UPDATE, while the rest goes through the ORM's flush. These
tests hold the result to what the ORM alone used to write.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from gateway.clock import FakeClock
from gateway.ingest.inbound import store_inbound
from gateway.work.worker import Worker
from store.db import Store
from store.models import AutoReplyLog, Case, CaseEvent, InboundItem, MessageLink, OutboxMail
from tests.conftest import TWO_OWNERS, make_config
from tests.support.mails import build_mail
from tests.support.templates import acknowledgement_failing_on


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(" ".join(str(args[2]).split()))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def test_cases_opened_in_one_batch_have_every_row(store: Store, clock: FakeClock) -> None:
    worker = Worker(make_config(store, levels=TWO_OWNERS), store, clock)
    ids = [f"<first-{n}@acme.example>" for n in range(3)]
    for n, message_id in enumerate(ids):
        raw = build_mail(subject=f"URGENT: export broken {n}", message_id=message_id)
        store_inbound(store, raw, source="test", clock=clock)

    with statements(store) as seen:
        outcomes = worker.process_batch()

    assert [(o.state, o.decision) for o in outcomes] == [("done", "open")] * 3
    # Owner and deadlines go out with the INSERT; only the key needs the new id.
    case_updates = [s for s in seen if s.startswith("UPDATE cases")]
    assert len(case_updates) == 3
    assert all(
        re.fullmatch(r'UPDATE cases SET "?key"?=\S+ WHERE cases\.id = \S+', s) for s in case_updates
    )
    with store.session() as session:
        cases = list(session.scalars(select(Case).order_by(Case.id)))
        assert [o.case_key for o in outcomes] == [c.key for c in cases]
        assert [c.key for c in cases] == [f"ESC-{c.id:06d}" for c in cases]
        # The rotation advances within one transaction too.
        assert [c.owner_email for c in cases] == [
            "ada4@example.com",
            "bo4@example.com",
            "ada4@example.com",
        ]
        for case, message_id in zip(cases, ids, strict=True):
            assert case.first_response_due == clock.now() + timedelta(hours=1)
            assert case.next_timer_at is not None
            events = session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
            ).all()
            assert [e.kind for e in events] == ["opened"]
            assert events[0].data["owner"] == case.owner_email
            assert events[0].data["first_response_due"] == case.first_response_due.isoformat()
            item = session.scalars(
                select(InboundItem).where(InboundItem.id == events[0].inbound_item_id)
            ).one()
            assert item.case_id == case.id
            mails = session.scalars(
                select(OutboxMail).where(OutboxMail.case_id == case.id).order_by(OutboxMail.id)
            ).all()
            assert [m.kind for m in mails] == ["owner_notification", "acknowledgement"]
            assert all(f"[{case.key}]" in m.subject for m in mails)
            links = session.scalars(
                select(MessageLink).where(MessageLink.case_id == case.id).order_by(MessageLink.id)
            ).all()
            assert [(link.direction, link.message_id) for link in links] == [
                ("in", message_id.strip("<>")),
                *(("out", m.message_id) for m in mails),
            ]
            assert links[0].inbound_item_id == item.id
            assert [link.outbox_id for link in links] == [None, *(m.id for m in mails)]


def test_a_reply_later_in_the_batch_joins_the_case_opened_before_it(
    store: Store, clock: FakeClock
) -> None:
    worker = Worker(make_config(store), store, clock)
    first = "<first@acme.example>"
    mails = [
        build_mail(subject="URGENT: checkout down", message_id=first),
        build_mail(subject="Re: URGENT: checkout down", in_reply_to=first, references=first),
        build_mail(subject="Still down", references=first),
    ]
    for raw in mails:
        store_inbound(store, raw, source="test", clock=clock)

    outcomes = worker.process_batch()

    assert [o.decision for o in outcomes] == ["open", "attach", "attach"]
    assert len({o.case_key for o in outcomes}) == 1
    with store.session() as session:
        case = session.scalars(select(Case)).one()
        kinds = session.scalars(
            select(CaseEvent.kind).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        ).all()
        assert kinds[:1] == ["opened"]
        assert kinds.count("mail_attached") == 2
        directions = session.scalars(
            select(MessageLink.direction)
            .where(MessageLink.case_id == case.id)
            .order_by(MessageLink.id)
        ).all()
        assert directions[:3] == ["in", "out", "out"]
        assert directions.count("in") == 3


def test_a_failed_batch_keeps_none_of_the_rows_written_for_it(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    # Fails after the case, its event and its inbound link are written, at the
    # acknowledgement: the rollback must take all of them.
    template_dir = acknowledgement_failing_on("boom", tmp_path)
    worker = Worker(make_config(store, template_dir=template_dir), store, clock)
    for subject in ("URGENT: one", "URGENT: boom", "URGENT: three"):
        raw = build_mail(subject=subject, message_id=f"<{subject.split()[-1]}@acme.example>")
        store_inbound(store, raw, source="test", clock=clock)

    outcomes = worker.process_batch()

    assert [o.state for o in outcomes] == ["done", "quarantined", "done"]
    with store.session() as session:
        case_ids = set(session.scalars(select(Case.id)))
        assert len(case_ids) == 2
        events = session.execute(select(CaseEvent.case_id, CaseEvent.kind)).all()
        assert sorted(events) == sorted((case_id, "opened") for case_id in case_ids)
        inbound = session.scalars(
            select(MessageLink.message_id).where(MessageLink.direction == "in")
        ).all()
        assert sorted(inbound) == ["one@acme.example", "three@acme.example"]
        assert set(session.scalars(select(MessageLink.case_id))) == case_ids


def test_the_per_address_cap_counts_this_batch_and_the_last_hour(
    store: Store, clock: FakeClock
) -> None:
    worker = Worker(make_config(store, auto_reply={"max_per_address_per_hour": 2}), store, clock)
    with store.transaction() as session:
        # One within the hour counts; one just outside it does not.
        session.add(
            AutoReplyLog(address="alice@acme.example", at=clock.now() - timedelta(minutes=59))
        )
        session.add(
            AutoReplyLog(address="alice@acme.example", at=clock.now() - timedelta(minutes=61))
        )
    for n in range(3):
        store_inbound(store, build_mail(subject=f"URGENT: problem {n}"), source="test", clock=clock)

    assert [o.decision for o in worker.process_batch()] == ["open"] * 3

    with store.session() as session:
        acknowledged = session.scalars(
            select(OutboxMail.case_id)
            .where(OutboxMail.kind == "acknowledgement")
            .order_by(OutboxMail.case_id)
        ).all()
        suppressed = session.scalars(
            select(CaseEvent.case_id)
            .where(CaseEvent.kind == "reply_suppressed")
            .order_by(CaseEvent.case_id)
        ).all()
        cases = list(session.scalars(select(Case.id).order_by(Case.id)))
        logged = session.scalar(select(func.count()).select_from(AutoReplyLog))
        kinds = session.scalars(
            select(CaseEvent.kind).where(CaseEvent.case_id == cases[2]).order_by(CaseEvent.id)
        ).all()
    assert acknowledged == cases[:1]
    assert suppressed == cases[1:]
    assert logged == 3
    assert kinds == ["opened", "reply_suppressed"]
