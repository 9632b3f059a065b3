"""Business lever and deadline on tests: manager-set inputs of the score.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:53:09.310957
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lever", sa.Double(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("deadline", sa.Date(), nullable=True))
        batch_op.create_check_constraint(op.f("ck_experiments_lever_positive"), "lever > 0")


def downgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_experiments_lever_positive"), type_="check")
        batch_op.drop_column("deadline")
        batch_op.drop_column("lever")
