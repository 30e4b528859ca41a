"""dashboard: the log page's search index (entries by type, principal, time; ids named)

Revision ID: dashboard_0002
Revises: dashboard_0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dashboard_0002"
down_revision: str | None = "dashboard_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dashboard_log_entries",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(128), nullable=True),
        sa.Column("principal", sa.String(256), nullable=True),
        sa.Column("organisation", sa.String(256), nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("idx", name="pk_dashboard_log_entries"),
    )
    op.create_index("ix_dashboard_log_entries_type", "dashboard_log_entries", ["type", "idx"])
    op.create_index(
        "ix_dashboard_log_entries_principal", "dashboard_log_entries", ["principal", "idx"]
    )
    op.create_index("ix_dashboard_log_entries_time", "dashboard_log_entries", ["time"])
    op.create_table(
        "dashboard_log_mentions",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("name", "idx", name="pk_dashboard_log_mentions"),
    )


def downgrade() -> None:
    op.drop_table("dashboard_log_mentions")
    op.drop_index("ix_dashboard_log_entries_time", "dashboard_log_entries")
    op.drop_index("ix_dashboard_log_entries_principal", "dashboard_log_entries")
    op.drop_index("ix_dashboard_log_entries_type", "dashboard_log_entries")
    op.drop_table("dashboard_log_entries")
