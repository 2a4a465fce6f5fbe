"""data protection log

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 13:00:00

The audit trail of `purge` and raw-mail retention: one row per run.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_protection_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("selector", sa.String(length=500), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("data_protection_log")
