"""One standing approval per manager and test.

Two clicks of one manager's Approve arriving at once could both be counted. Each change to
a test now locks its row first, and a unique partial index keeps at most one approval that
still stands per manager and test (earlier duplicates are voided: they never counted twice
toward a decision, as approvals are counted by manager).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STANDING = "kind = 'approve' AND NOT voided"


def upgrade() -> None:
    op.execute(
        "UPDATE decisions SET voided = true WHERE kind = 'approve' AND NOT voided AND id NOT IN "
        "(SELECT MIN(id) FROM decisions WHERE kind = 'approve' AND NOT voided "
        "GROUP BY experiment_id, actor)"
    )
    op.create_index(
        "uq_decisions_standing_approval",
        "decisions",
        ["experiment_id", "actor"],
        unique=True,
        postgresql_where=sa.text(STANDING),
        sqlite_where=sa.text(STANDING),
    )


def downgrade() -> None:
    op.drop_index("uq_decisions_standing_approval", table_name="decisions")
