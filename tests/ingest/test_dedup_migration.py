"""Upgrading a store keys the mail it already processed, so later copies stay copies."""

from __future__ import annotations

from alembic import command
from sqlalchemy import func, insert, select

from gateway.clock import FakeClock
from gateway.ingest.inbound import inbound_row, store_inbound
from gateway.work.worker import Worker
from store.content_key import content_key
from store.db import Store
from store.migrate import alembic_config
from store.models import Case, InboundDedup, InboundItem
from tests.conftest import make_config
from tests.support.mails import build_mail
from tests.work.dedup_mails import TRACE, without_message_id


def _processed(raw: bytes, clock: FakeClock) -> dict[str, object]:
    row = inbound_row(raw, source="imap:support", clock=clock)
    return {**row, "state": "done", "decision": "open", "processed_at": clock.now()}


def test_processed_mail_is_keyed_on_upgrade(old_store: Store, clock: FakeClock) -> None:
    seen_twice = without_message_id(build_mail(subject="URGENT: old and copied"))
    alone = build_mail(subject="URGENT: old")
    rows = [
        _processed(seen_twice, clock),
        # Before this release a copy with new trace fields was processed again.
        _processed(TRACE + seen_twice, clock),
        _processed(alone, clock),
        inbound_row(build_mail(subject="URGENT: still pending"), source="smtp", clock=clock),
    ]
    statement = insert(InboundItem).returning(InboundItem.id)
    with old_store.engine.begin() as connection:
        ids: list[int] = [connection.execute(statement, row).scalar_one() for row in rows]

    old_store.migrate()

    with old_store.session() as session:
        held = session.execute(select(InboundDedup.content_key, InboundDedup.inbound_item_id))
        keys = {key: item_id for key, item_id in held}
    # The oldest of the two processed copies holds the key; pending mail holds none yet.
    assert keys == {content_key(seen_twice): ids[0], content_key(alone): ids[2]}

    # After the upgrade, an IMAP rescan brings the mail without a Message-ID again.
    store_inbound(old_store, seen_twice, source="imap:support", clock=clock)
    worker = Worker(make_config(old_store), old_store, clock)
    outcomes = worker.process_batch()
    assert [(o.item_id, o.state) for o in outcomes] == [(ids[3], "done"), (ids[3] + 1, "duplicate")]
    with old_store.session() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 1  # the pending one


def test_the_upgrade_can_be_undone(old_store: Store) -> None:
    # This revision alone: other branches from 0001 are not this test's business.
    command.upgrade(alembic_config(old_store.engine), "0003")
    with old_store.engine.connect() as connection:
        assert old_store.engine.dialect.has_table(connection, "inbound_dedup")
    command.downgrade(alembic_config(old_store.engine), "0001")
    with old_store.engine.connect() as connection:
        assert not old_store.engine.dialect.has_table(connection, "inbound_dedup")
