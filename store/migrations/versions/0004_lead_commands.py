"""lead commands: one row per command mail per case; retired reply tokens

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 12:00:00

Command mails processed before this release get their row too (outcome "earlier",
from the inbound items decided as "command"), so re-sending one of them after the
upgrade is still recognised as a replay.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    commands = op.create_table(
        "lead_commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("message_id", sa.String(length=500), nullable=True),
        sa.Column("once_message_id", sa.String(length=500), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("refusal", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "once_message_id", name="uq_lead_commands_once"),
    )
    with op.batch_alter_table("lead_commands", schema=None) as batch_op:
        batch_op.create_index("ix_lead_commands_case_id", ["case_id"], unique=False)
        batch_op.create_index("ix_lead_commands_refusal", ["refusal"], unique=False)
    op.create_table(
        "retired_reply_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("nonce", sa.String(length=16), nullable=False),
        sa.Column("retired_at", store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "address", "nonce", name="uq_retired_reply_tokens"),
    )
    with op.batch_alter_table("retired_reply_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_retired_reply_tokens_case_id", ["case_id"], unique=False)
    assert commands is not None
    _backfill(commands)


def _backfill(commands: sa.Table) -> None:
    items = sa.table(
        "inbound_items",
        sa.column("case_id", sa.Integer),
        sa.column("message_id", sa.String),
        sa.column("mail_from", sa.String),
        sa.column("received_at", store.models.UtcDateTime(timezone=True)),
        sa.column("decision", sa.String),
    )
    # The oldest item per (case, Message-ID) stands for them all.
    earliest = (
        sa.select(
            items.c.case_id,
            items.c.message_id,
            sa.func.min(items.c.received_at).label("at"),
            sa.func.min(items.c.mail_from).label("sender"),
        )
        .where(
            items.c.decision == "command",
            items.c.case_id.is_not(None),
            items.c.message_id.is_not(None),
        )
        .group_by(items.c.case_id, items.c.message_id)
    ).subquery()
    op.get_bind().execute(
        commands.insert().from_select(
            ["case_id", "message_id", "once_message_id", "at", "sender", "outcome", "detail"],
            sa.select(
                earliest.c.case_id,
                earliest.c.message_id,
                earliest.c.message_id,
                earliest.c.at,
                sa.func.coalesce(earliest.c.sender, ""),
                sa.literal("earlier"),
                sa.literal("processed before lead_commands existed"),
            ),
        )
    )


def downgrade() -> None:
    op.drop_table("retired_reply_tokens")
    op.drop_table("lead_commands")
