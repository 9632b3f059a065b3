"""Indexes for one person's lists: SLA clocks by team, tests by owner.

App Home reads a person's tests (by owner or team) and the clocks of their tests or
teams. Without these, each opening scanned every running clock (about 90,000 at 10,000
tests) and every test.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 02:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_sla_clocks_team"), "sla_clocks", ["team"])
    op.create_index(op.f("ix_experiments_owner"), "experiments", ["owner"])


def downgrade() -> None:
    op.drop_index(op.f("ix_experiments_owner"), table_name="experiments")
    op.drop_index(op.f("ix_sla_clocks_team"), table_name="sla_clocks")
