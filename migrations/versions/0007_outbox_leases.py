"""Outbox leases: a dispatcher claims a message in a short transaction before sending it,
so nothing holds a transaction open while Slack is called.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 20:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tower.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claimed_until", tower.db.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("claimed_until")
