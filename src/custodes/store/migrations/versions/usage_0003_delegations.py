"""usage: directors' signed delegations of workloads they may direct

Revision ID: usage_0003
Revises: usage_0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "usage_0003"
down_revision: str | None = "usage_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_delegations",
        sa.Column("log_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("workload", sa.String(256), nullable=False),
        sa.Column("director", sa.String(256), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signature", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("log_index", name="pk_usage_delegations"),
    )
    op.create_index("ix_usage_delegations_until", "usage_delegations", ["until"])


def downgrade() -> None:
    op.drop_index("ix_usage_delegations_until", "usage_delegations")
    op.drop_table("usage_delegations")
