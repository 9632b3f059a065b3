"""Outbox, SLA clocks, and a test's submission time and recorded result.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 06:58:14.457553
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tower.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending", "sent", "failed", name="messagestatus", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", tower.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", tower.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", tower.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_messages_dedupe_key")),
    )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_messages_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_outbox_messages_status"), ["status"], unique=False)

    op.create_table(
        "sla_clocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_key", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("collision_id", sa.Integer(), nullable=True),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "running", "paused", "stopped", name="clockstate", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("started_at", tower.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("due_at", tower.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("target_hours", sa.Double(), nullable=False),
        sa.Column("paused_at", tower.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", tower.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("warned", sa.Integer(), nullable=False),
        sa.Column("breached_at", tower.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collision_id"],
            ["collisions.id"],
            name=op.f("fk_sla_clocks_collision_id_collisions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_sla_clocks_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_clocks")),
        sa.UniqueConstraint("policy_key", "subject", "cycle", name="one_clock_per_cycle"),
    )
    with op.batch_alter_table("sla_clocks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sla_clocks_collision_id"), ["collision_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sla_clocks_due_at"), ["due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sla_clocks_experiment_id"), ["experiment_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sla_clocks_state"), ["state"], unique=False)

    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("submitted_at", tower.db.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "result",
                sa.Enum(
                    "winner",
                    "loser",
                    "inconclusive",
                    name="experimentresult",
                    native_enum=False,
                    length=32,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("observed_lift", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("result_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("result_note")
        batch_op.drop_column("observed_lift")
        batch_op.drop_column("result")
        batch_op.drop_column("submitted_at")

    with op.batch_alter_table("sla_clocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sla_clocks_state"))
        batch_op.drop_index(batch_op.f("ix_sla_clocks_experiment_id"))
        batch_op.drop_index(batch_op.f("ix_sla_clocks_due_at"))
        batch_op.drop_index(batch_op.f("ix_sla_clocks_collision_id"))

    op.drop_table("sla_clocks")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_messages_status"))
        batch_op.drop_index(batch_op.f("ix_outbox_messages_next_attempt_at"))

    op.drop_table("outbox_messages")
