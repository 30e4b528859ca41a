"""constitution: adopted versions

Revision ID: constitution_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "constitution_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("constitution",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "constitution_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_constitution_versions"),
    )


def downgrade() -> None:
    op.drop_table("constitution_versions")
