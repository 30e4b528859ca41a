"""witness: server state and evidence, publisher checkpoints, cosignatures and peers

Revision ID: witness_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "witness_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("witness",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "witness_state",
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("origin", name="pk_witness_state"),
    )
    op.create_table(
        "witness_evidence",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("held_note", sa.Text(), nullable=False),
        sa.Column("offered_note", sa.Text(), nullable=False),
        sa.Column("old_size", sa.BigInteger(), nullable=False),
        sa.Column("proof", sa.LargeBinary(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_witness_evidence"),
    )
    op.create_index("ix_witness_evidence_origin", "witness_evidence", ["origin"])
    op.create_table(
        "witness_published",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("quorum_met", sa.Boolean(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quorum_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("size", name="pk_witness_published"),
    )
    op.create_table(
        "witness_cosignatures",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("witness", sa.Text(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", "witness", name="pk_witness_cosignatures"),
    )
    op.create_table(
        "witness_peers",
        sa.Column("witness", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("witness", name="pk_witness_peers"),
    )


def downgrade() -> None:
    op.drop_table("witness_peers")
    op.drop_table("witness_cosignatures")
    op.drop_table("witness_published")
    op.drop_index("ix_witness_evidence_origin", table_name="witness_evidence")
    op.drop_table("witness_evidence")
    op.drop_table("witness_state")
