"""provenance: artifacts, training runs and their inputs

Revision ID: provenance_0001
Revises:
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "provenance_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("provenance",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provenance_artifacts",
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=True),
        sa.Column("manifest_sha256", sa.String(64), nullable=True),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("registered_by", sa.String(256), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_provenance_artifacts"),
    )
    op.create_index(
        "ix_provenance_artifacts_run_id", "provenance_artifacts", ["run_id"], unique=False
    )
    op.create_table(
        "provenance_runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("envelope_sha256", sa.String(64), nullable=False),
        sa.Column("plan_digest", sa.String(71), nullable=False),
        sa.Column("builder", sa.String(256), nullable=False),
        sa.Column("invocation_id", sa.String(256), nullable=False),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(256), nullable=False),
        sa.Column("started_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_provenance_runs"),
        sa.UniqueConstraint("envelope_sha256", name="uq_provenance_runs_envelope_sha256"),
        sa.UniqueConstraint("grant_id", name="uq_provenance_runs_grant_id"),
    )
    op.create_table(
        "provenance_run_inputs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["provenance_runs.id"],
            name="fk_provenance_run_inputs_run_id_provenance_runs",
        ),
        sa.PrimaryKeyConstraint("run_id", "digest", name="pk_provenance_run_inputs"),
    )
    op.create_index(
        "ix_provenance_run_inputs_digest", "provenance_run_inputs", ["digest"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_provenance_run_inputs_digest", table_name="provenance_run_inputs")
    op.drop_table("provenance_run_inputs")
    op.drop_table("provenance_runs")
    op.drop_index("ix_provenance_artifacts_run_id", table_name="provenance_artifacts")
    op.drop_table("provenance_artifacts")
