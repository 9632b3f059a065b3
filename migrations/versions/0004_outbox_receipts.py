"""Outbox receipts: where a delivered message landed, so later ones can update or answer it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 07:13:25.305807
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tower.db  # noqa: F401 - autogenerate renders Tower's column types as tower.db.*

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "receipt",
                sa.JSON(none_as_null=True).with_variant(
                    postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
                ),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("receipt")
