"""Each plan entry says which version of its test it planned, and whether the test was live.

A registrant is told their test's next free slot at once: the windows the stored plan gave
the tests ranked above it are reused as long as those tests, and every live one, are as
they were when it was made.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 20:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plan_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_version", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("live", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("plan_entries", schema=None) as batch_op:
        batch_op.drop_column("live")
        batch_op.drop_column("row_version")
