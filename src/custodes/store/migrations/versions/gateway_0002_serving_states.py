"""gateway: the serving check's last alarmed verdict per weights and tier

Revision ID: gateway_0002
Revises: gateway_0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0002"
down_revision: str | None = "gateway_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_serving_states",
        sa.Column("weights", sa.String(71), nullable=False),
        sa.Column("capability", sa.String(128), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("reasons_sha256", sa.String(64), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("weights", "capability", name="pk_gateway_serving_states"),
    )


def downgrade() -> None:
    op.drop_table("gateway_serving_states")
