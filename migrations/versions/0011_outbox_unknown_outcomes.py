"""An outbox message remembers when it was first tried, and whether an attempt's outcome
is unknown.

A post dropped after it was sent, unanswered in time, or claimed by a process that died
may have landed: the next attempt looks for it in the channel's history since the first
attempt before sending it again, and a message that cannot be proven absent is held for a
person (`failed`, `outcome unknown: ...`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tower.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_attempt_at", tower.db.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("outcome_unknown", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("outcome_unknown")
        batch_op.drop_column("first_attempt_at")
