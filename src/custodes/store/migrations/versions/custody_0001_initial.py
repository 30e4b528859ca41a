"""custody: findings, escrow, events, alarms, counters

Revision ID: custody_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "custody_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("custody",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "custody_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name="pk_custody_counters"),
    )
    op.create_table(
        "custody_findings",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("vendor", sa.String(512), nullable=False),
        sa.Column("product", sa.String(512), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("cwe", sa.String(16), nullable=False),
        sa.Column("cvss_version", sa.String(8), nullable=False),
        sa.Column("cvss_vector", sa.String(256), nullable=False),
        sa.Column("cvss_score", sa.Float(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("finder", sa.String(256), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("session", sa.String(256), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(256), nullable=False),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("detection_id", sa.String(256), nullable=True),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("commitment", sa.String(64), nullable=False),
        sa.Column("rm_state", sa.String(16), nullable=False),
        sa.Column("em_state", sa.String(16), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_by", sa.String(256), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("revealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_custody_findings"),
    )
    op.create_index("ix_custody_findings_detection_id", "custody_findings", ["detection_id"])
    op.create_table(
        "custody_escrow",
        sa.Column("finding_id", sa.String(32), nullable=False),
        sa.Column("kek_id", sa.String(32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext_sha256", sa.String(64), nullable=False),
        sa.Column("details_bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["custody_findings.id"],
            name="fk_custody_escrow_finding_id_custody_findings",
        ),
        sa.PrimaryKeyConstraint("finding_id", name="pk_custody_escrow"),
    )
    op.create_table(
        "custody_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("finding_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal", sa.String(256), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["custody_findings.id"],
            name="fk_custody_events_finding_id_custody_findings",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_custody_events"),
    )
    op.create_index("ix_custody_events_finding_id", "custody_events", ["finding_id"])
    op.create_table(
        "custody_alarms",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_custody_alarms"),
    )


def downgrade() -> None:
    op.drop_table("custody_alarms")
    op.drop_index("ix_custody_events_finding_id", table_name="custody_events")
    op.drop_table("custody_events")
    op.drop_table("custody_escrow")
    op.drop_index("ix_custody_findings_detection_id", table_name="custody_findings")
    op.drop_table("custody_findings")
    op.drop_table("custody_counters")
