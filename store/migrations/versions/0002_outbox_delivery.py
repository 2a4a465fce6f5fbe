"""outbox lease holder and cause of death

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 14:00:00

A claimed mail names the process that holds its lease, so a restarted daemon can
take back at once the leases of a sender that died on its own host. A dead mail
says whether the smarthost refused it outright or its attempts ran out.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_holder", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("dead_cause", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("dead_cause")
        batch_op.drop_column("lease_holder")
