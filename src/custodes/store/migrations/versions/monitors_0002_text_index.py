"""monitors: index detections by the SHA-256 of their text (the scan's dedupe looks them up)

Revision ID: monitors_0002
Revises: monitors_0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "monitors_0002"
down_revision: str | None = "monitors_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Without it every record with a detection scanned the whole table (quadratic in a scan).
    op.create_index("ix_monitors_detections_text_sha256", "monitors_detections", ["text_sha256"])


def downgrade() -> None:
    op.drop_index("ix_monitors_detections_text_sha256", table_name="monitors_detections")
