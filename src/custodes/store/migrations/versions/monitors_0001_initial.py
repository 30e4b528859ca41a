"""monitors: detections, reviewer assignments, scan progress

Revision ID: monitors_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "monitors_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("monitors",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "monitors_detections",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("spans", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("actor_organisation", sa.String(256), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution_reason", sa.Text(), nullable=True),
        sa.Column("finding_id", sa.String(64), nullable=True),
        sa.Column("resolved_by", sa.String(256), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitors_detections"),
    )
    op.create_index("ix_monitors_detections_status", "monitors_detections", ["status"])
    op.create_index("ix_monitors_detections_fingerprint", "monitors_detections", ["fingerprint"])
    op.create_index("ix_monitors_detections_detected_at", "monitors_detections", ["detected_at"])
    op.create_table(
        "monitors_assignments",
        sa.Column("detection_id", sa.String(64), nullable=False),
        sa.Column("reviewer", sa.String(256), nullable=False),
        sa.Column("organisation", sa.String(256), nullable=False),
        sa.ForeignKeyConstraint(
            ["detection_id"],
            ["monitors_detections.id"],
            name="fk_monitors_assignments_detection_id_monitors_detections",
        ),
        sa.PrimaryKeyConstraint("detection_id", "reviewer", name="pk_monitors_assignments"),
    )
    op.create_index("ix_monitors_assignments_reviewer", "monitors_assignments", ["reviewer"])
    op.create_table(
        "monitors_scan_files",
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("path", name="pk_monitors_scan_files"),
    )


def downgrade() -> None:
    op.drop_table("monitors_scan_files")
    op.drop_table("monitors_assignments")
    op.drop_table("monitors_detections")
