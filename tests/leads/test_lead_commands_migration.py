"""Upgrading a store records the command mails it already applied, so copies stay refused."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from gateway.clock import FakeClock
from gateway.ingest.inbound import inbound_row
from gateway.leads import command_log
from store.db import Store
from store.migrate import alembic_config
from store.models import Case, InboundItem, LeadCommand
from tests.support.mails import build_mail

# The columns a case had at 0001, spelled out: later revisions may add more.
_CASE_COLUMNS = (
    "id",
    "key",
    "state",
    "level",
    "owner_name",
    "owner_email",
    "customer_name",
    "customer_email",
    "customer_cc",
    "subject",
    "summary",
    "fields",
    "opened_at",
    "updated_at",
    "paused_seconds",
    "timer_failures",
)
_CASES = sa.table("cases", *(sa.column(name) for name in _CASE_COLUMNS))


def _old_case(connection: sa.Connection, clock: FakeClock) -> int:
    now = clock.now()
    connection.execute(
        sa.insert(_CASES).values(
            id=1,
            key="ESC-000001",
            state="open",
            level=2,
            owner_name="Lee Lead",
            owner_email="lee.lead@example.com",
            customer_name="",
            customer_email="alice@acme.example",
            customer_cc=sa.literal("[]", sa.JSON),
            subject="Invoice export broken",
            summary="",
            fields=sa.literal("{}", sa.JSON),
            opened_at=now,
            updated_at=now,
            paused_seconds=0,
            timer_failures=0,
        )
    )
    return 1


def test_applied_command_mails_are_recorded_on_upgrade(old_store: Store, clock: FakeClock) -> None:
    command_mail = build_mail(
        sender="Lee Lead <lee.lead@example.com>", message_id="<cmd-1@example.com>"
    )
    customer_mail = build_mail(message_id="<customer-1@acme.example>")
    with old_store.engine.begin() as connection:
        case_id = _old_case(connection, clock)
        for raw, decision in ((command_mail, "command"), (command_mail, "command"),
                              (customer_mail, "attach")):  # fmt: skip
            row = inbound_row(raw, source="smtp", clock=clock, mail_from="lee.lead@example.com")
            connection.execute(
                sa.insert(InboundItem).values(
                    {**row, "state": "done", "decision": decision, "case_id": case_id}
                )
            )

    command.upgrade(alembic_config(old_store.engine), "0004")

    with old_store.session() as session:
        rows = list(session.scalars(sa.select(LeadCommand)))
        assert [(r.message_id, r.once_message_id, r.outcome) for r in rows] == [
            ("cmd-1@example.com", "cmd-1@example.com", "earlier")
        ]
        case = session.get(Case, case_id)
        assert case is not None
        assert command_log.applied_before(session, case, "cmd-1@example.com") is not None
        assert command_log.applied_before(session, case, "customer-1@acme.example") is None


def test_the_upgrade_can_be_undone(old_store: Store) -> None:
    config = alembic_config(old_store.engine)
    command.upgrade(config, "0004")
    with old_store.engine.connect() as connection:
        assert old_store.engine.dialect.has_table(connection, "lead_commands")
    command.downgrade(config, "0001")
    with old_store.engine.connect() as connection:
        assert not old_store.engine.dialect.has_table(connection, "lead_commands")
        assert not old_store.engine.dialect.has_table(connection, "retired_reply_tokens")
