"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 16:18:33.335847
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tables in dependency order: cases before the rows that point at them.
    _create_auto_reply_log()
    _create_cases()
    _create_imap_folder_state()
    _create_owner_rotation()
    _create_settings()
    _create_inbound_items()
    _create_outbox()
    _create_case_events()
    _create_message_links()


def _create_auto_reply_log() -> None:
    op.create_table(
        "auto_reply_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("at", store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("auto_reply_log", schema=None) as batch_op:
        batch_op.create_index("ix_auto_reply_log_address_at", ["address", "at"], unique=False)


def _create_cases() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=True),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("owner_name", sa.String(length=200), nullable=False),
        sa.Column("owner_email", sa.String(length=320), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=True),
        sa.Column("customer_name", sa.String(length=200), nullable=False),
        sa.Column("customer_email", sa.String(length=320), nullable=False),
        sa.Column("customer_cc", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("ticket", sa.String(length=100), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("opened_at", store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("first_response_due", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("first_responded_at", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("next_status_due", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("resolution_due", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("eta", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("root_message_id", sa.String(length=500), nullable=True),
        sa.Column("reminder_due", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "first_response_breached_at", store.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("breach_repeat_due", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("resolution_breached_at", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("paused_at", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("paused_seconds", sa.Integer(), nullable=False),
        sa.Column("monitoring_until", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_status_at", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_human_update_at", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("next_timer_at", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("timer_failures", sa.Integer(), nullable=False),
        sa.Column("timer_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_first_response_due", ["first_response_due"], unique=False)
        batch_op.create_index("ix_cases_next_status_due", ["next_status_due"], unique=False)
        batch_op.create_index("ix_cases_next_timer_at", ["next_timer_at"], unique=False)
        batch_op.create_index("ix_cases_state", ["state"], unique=False)
        batch_op.create_index("ix_cases_ticket_state", ["ticket", "state"], unique=False)


def _create_imap_folder_state() -> None:
    op.create_table(
        "imap_folder_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=200), nullable=False),
        sa.Column("folder", sa.String(length=500), nullable=False),
        sa.Column("uidvalidity", sa.Integer(), nullable=False),
        sa.Column("last_uid", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mailbox", "folder", name="uq_imap_folder"),
    )


def _create_owner_rotation() -> None:
    op.create_table(
        "owner_rotation",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("level"),
    )


def _create_settings() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def _create_inbound_items() -> None:
    op.create_table(
        "inbound_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("mail_from", sa.String(length=500), nullable=True),
        sa.Column("rcpt_tos", sa.JSON(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=500), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("processed_at", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("explanation", sa.JSON(), nullable=True),
        sa.Column("config_version", sa.String(length=64), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("inbound_items", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_message_id", ["message_id"], unique=False)
        batch_op.create_index("ix_inbound_sha256", ["sha256"], unique=False)
        batch_op.create_index("ix_inbound_state_id", ["state", "id"], unique=False)


def _create_outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("created_at", store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("envelope_from", sa.String(length=320), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=500), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", store.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_outbox_state_next", ["state", "next_attempt_at"], unique=False)


def _create_case_events() -> None:
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("inbound_item_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["inbound_item_id"],
            ["inbound_items.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_events_case_id"), ["case_id"], unique=False)


def _create_message_links() -> None:
    op.create_table(
        "message_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=500), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("inbound_item_id", sa.Integer(), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("at", store.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["inbound_item_id"],
            ["inbound_items.id"],
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("message_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_links_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_message_links_message_id", ["message_id"], unique=False)


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("message_links", schema=None) as batch_op:
        batch_op.drop_index("ix_message_links_message_id")
        batch_op.drop_index(batch_op.f("ix_message_links_case_id"))

    op.drop_table("message_links")
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_events_case_id"))

    op.drop_table("case_events")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_state_next")
        batch_op.drop_index(batch_op.f("ix_outbox_case_id"))

    op.drop_table("outbox")
    with op.batch_alter_table("inbound_items", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_state_id")
        batch_op.drop_index("ix_inbound_sha256")
        batch_op.drop_index("ix_inbound_message_id")

    op.drop_table("inbound_items")
    op.drop_table("settings")
    op.drop_table("owner_rotation")
    op.drop_table("imap_folder_state")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_ticket_state")
        batch_op.drop_index("ix_cases_state")
        batch_op.drop_index("ix_cases_next_timer_at")
        batch_op.drop_index("ix_cases_next_status_due")
        batch_op.drop_index("ix_cases_first_response_due")

    op.drop_table("cases")
    with op.batch_alter_table("auto_reply_log", schema=None) as batch_op:
        batch_op.drop_index("ix_auto_reply_log_address_at")

    op.drop_table("auto_reply_log")
    # ### end Alembic commands ###
