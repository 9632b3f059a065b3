"""Requests answered once: a form submission Slack retries, or a person sends again, acts
once and gets the first answer, in every web process.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tower.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answered_requests",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("received_at", tower.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(length=128), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_answered_requests")),
    )
    with op.batch_alter_table("answered_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_answered_requests_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("answered_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_answered_requests_received_at"))
    op.drop_table("answered_requests")
