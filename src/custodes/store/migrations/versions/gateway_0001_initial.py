"""gateway: API keys (hashes only) and the key change counter

Revision ID: gateway_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("gateway",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("principal", sa.String(256), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_gateway_keys"),
        sa.UniqueConstraint("key_hash", name="uq_gateway_keys_key_hash"),
    )
    op.create_index("ix_gateway_keys_principal", "gateway_keys", ["principal"])
    op.create_table(
        "gateway_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_state"),
    )


def downgrade() -> None:
    op.drop_table("gateway_state")
    op.drop_index("ix_gateway_keys_principal", "gateway_keys")
    op.drop_table("gateway_keys")
