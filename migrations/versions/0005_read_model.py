"""The read model: the registry's version, each active test's score, the last plan; and
when a collision was first acknowledged.

Reads show these instead of re-checking the portfolio; writes and the worker keep them current.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 16:47:15.544748
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tower.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stamp", sa.String(length=32), nullable=False),
        sa.Column("checked_policy", sa.String(length=64), nullable=True),
        sa.Column("checked_at", tower.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("scored_on", sa.Date(), nullable=True),
        sa.Column("planned_version", sa.Integer(), nullable=True),
        sa.Column("planned_at", tower.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("planned_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_state")),
    )
    op.create_table(
        "pipeline_scores",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column(
            "detail",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_pipeline_scores_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", name=op.f("pk_pipeline_scores")),
    )
    op.create_table(
        "plan_entries",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("planned_start", sa.Date(), nullable=True),
        sa.Column("planned_end", sa.Date(), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_plan_entries_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", name=op.f("pk_plan_entries")),
    )
    with op.batch_alter_table("collision_experiments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collision_experiments_experiment_id"), ["experiment_id"], unique=False
        )
    with op.batch_alter_table("collisions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("acknowledged_at", tower.db.UtcDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("change_stamp", sa.String(length=32), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("change_stamp")
    with op.batch_alter_table("collisions", schema=None) as batch_op:
        batch_op.drop_column("acknowledged_at")
    with op.batch_alter_table("collision_experiments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collision_experiments_experiment_id"))

    op.drop_table("plan_entries")
    op.drop_table("pipeline_scores")
    op.drop_table("registry_state")
