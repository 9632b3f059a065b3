"""An outbox message keeps its parts: Tower's words, the people it names, typed text.

The core composes messages as data (`tower/messages.py`) and never writes a channel's
markup; each channel renders the parts (Slack: mentions, and typed text made inert). The
`text` column keeps the plain rendering a console shows. A message queued before this
revision has no parts (NULL): its `text` is already in Slack's form, and the Slack
notifier reads it as it always did.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-09 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tower.db  # noqa: F401 - autogenerate renders Tower's column types as tower.db.*

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "parts",
                sa.JSON(none_as_null=True).with_variant(
                    postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
                ),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("parts")
