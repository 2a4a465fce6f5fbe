"""inbound de-duplication keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 12:00:00

Mail already processed gets its key here, so a copy arriving after the upgrade (an
SMTP retry, an IMAP rescan after a UIDVALIDITY change) is still recognised. Where
several processed items share a key (copies processed twice before this release),
the oldest holds it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

import store.models
from store.content_key import content_key

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_CHUNK = 500


def upgrade() -> None:
    dedup = op.create_table(
        "inbound_dedup",
        sa.Column("content_key", sa.String(length=64), nullable=False),
        sa.Column("inbound_item_id", sa.Integer(), nullable=False),
        sa.Column("claimed_at", store.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["inbound_item_id"], ["inbound_items.id"]),
        sa.PrimaryKeyConstraint("content_key"),
    )
    assert dedup is not None
    _backfill(dedup)


def _backfill(dedup: sa.Table) -> None:
    bind = op.get_bind()
    items = sa.table(
        "inbound_items",
        sa.column("id", sa.Integer),
        sa.column("raw", sa.LargeBinary),
        sa.column("state", sa.String),
        sa.column("processed_at", store.models.UtcDateTime(timezone=True)),
    )
    dialect_insert = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
    claim = dialect_insert(dedup).on_conflict_do_nothing(index_elements=["content_key"])
    after = 0
    while True:
        # Keyset pages, in id order, so the oldest copy claims first and memory stays flat.
        rows = bind.execute(
            sa.select(items.c.id, items.c.raw, items.c.processed_at)
            .where(items.c.state == "done", items.c.id > after)
            .order_by(items.c.id)
            .limit(_CHUNK)
        ).all()
        if not rows:
            return
        bind.execute(
            claim,
            [
                {
                    "content_key": content_key(raw),
                    "inbound_item_id": item_id,
                    "claimed_at": processed_at or datetime.now(UTC),
                }
                for item_id, raw, processed_at in rows
            ],
        )
        after = rows[-1].id


def downgrade() -> None:
    op.drop_table("inbound_dedup")
