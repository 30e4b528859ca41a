"""usage: concentration alarms (one open breach per rule and subject) and gate overrides

Revision ID: usage_0001
Revises:
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "usage_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("usage",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_alarms",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("capability", sa.String(128), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("limit", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=True),
        sa.Column("open_slot", sa.String(8), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_log_index", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_usage_alarms"),
    )
    op.create_index(
        "uq_usage_alarms_open", "usage_alarms", ["rule", "subject", "open_slot"], unique=True
    )
    op.create_table(
        "usage_overrides",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("approver", sa.String(256), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage_overrides"),
    )
    op.create_index("ix_usage_overrides_rule_subject", "usage_overrides", ["rule", "subject"])


def downgrade() -> None:
    op.drop_index("ix_usage_overrides_rule_subject", "usage_overrides")
    op.drop_table("usage_overrides")
    op.drop_index("uq_usage_alarms_open", "usage_alarms")
    op.drop_table("usage_alarms")
