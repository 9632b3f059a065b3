"""Registry changes: the tests each recent registry version wrote, so a process whose warm
index lags reloads just those instead of comparing every test's version.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_changes",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("stamp", sa.String(length=32), nullable=False),
        sa.Column(
            "numbers",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_registry_changes")),
    )


def downgrade() -> None:
    op.drop_table("registry_changes")
