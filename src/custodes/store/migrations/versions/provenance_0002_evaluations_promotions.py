"""provenance: capability evaluations and promotions to serve

Revision ID: provenance_0002
Revises: provenance_0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "provenance_0002"
down_revision: str | None = "provenance_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provenance_evaluations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("weights", sa.String(71), nullable=False),
        sa.Column("evaluation", sa.String(128), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evaluator", sa.String(256), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("envelope_sha256", sa.String(64), nullable=False),
        sa.Column("registered_by", sa.String(256), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_provenance_evaluations"),
        sa.UniqueConstraint("envelope_sha256", name="uq_provenance_evaluations_envelope_sha256"),
    )
    op.create_index(
        "ix_provenance_evaluations_weights", "provenance_evaluations", ["weights"], unique=False
    )
    op.create_table(
        "provenance_promotions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("weights", sa.String(71), nullable=False),
        sa.Column("capability", sa.String(128), nullable=False),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(256), nullable=False),
        sa.Column("registered_by", sa.String(256), nullable=False),
        sa.Column("evaluations", sa.Text(), nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_provenance_promotions"),
        sa.UniqueConstraint("grant_id", name="uq_provenance_promotions_grant_id"),
    )
    op.create_index(
        "ix_provenance_promotions_weights", "provenance_promotions", ["weights"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_provenance_promotions_weights", table_name="provenance_promotions")
    op.drop_table("provenance_promotions")
    op.drop_index("ix_provenance_evaluations_weights", table_name="provenance_evaluations")
    op.drop_table("provenance_evaluations")
