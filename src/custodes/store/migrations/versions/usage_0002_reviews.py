"""usage: review clocks (recorded renewals of a restricted tier) and review alarms' rule ids

Revision ID: usage_0002
Revises: usage_0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "usage_0002"
down_revision: str | None = "usage_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_reviews",
        sa.Column("log_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("capability", sa.String(128), nullable=False),
        sa.Column("due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("log_index", name="pk_usage_reviews"),
    )
    op.create_index("ix_usage_reviews_capability", "usage_reviews", ["capability", "decided_at"])
    # review:<tier> ids of overdue reviews are longer than a rule id may be.
    with op.batch_alter_table("usage_alarms") as batch:
        batch.alter_column(
            "rule", existing_type=sa.String(128), type_=sa.String(160), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_alarms") as batch:
        batch.alter_column(
            "rule", existing_type=sa.String(160), type_=sa.String(128), existing_nullable=False
        )
    op.drop_index("ix_usage_reviews_capability", "usage_reviews")
    op.drop_table("usage_reviews")
