"""An outbox message remembers until when a post of it, begun, may still land.

A holder confirms its lease right before it posts and stamps `may_land_until` (the wall
clock plus the longest its send may take). A dispatcher that takes the message over (the
lease ran out, or a sweep reasons at a later moment) sends nothing before then: so a slow
but living sender and its successor never both post.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tower.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("may_land_until", tower.db.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("may_land_until")
