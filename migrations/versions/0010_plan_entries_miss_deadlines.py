"""A plan entry says whether its test misses its deadline.

A planned window never ends after the test's deadline; when none fits, the entry has no
window and `misses_deadline` is true (a live test running past it is flagged too).

Plans and records made before were made by other rules (drafts planned by rank, no
deadlines or send days, no days to the MDE): the registry forgets which policy they were
checked against, so readers say so and the next resync (the worker runs one at start)
makes them again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plan_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("misses_deadline", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute("UPDATE registry_state SET checked_policy = NULL")


def downgrade() -> None:
    with op.batch_alter_table("plan_entries", schema=None) as batch_op:
        batch_op.drop_column("misses_deadline")
