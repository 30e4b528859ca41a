"""custody: one finding per fingerprint, claimed before the registration is logged

Revision ID: custody_0004
Revises: custody_0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "custody_0004"
down_revision: str | None = "custody_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "custody_fingerprints",
        sa.Column("fingerprint", sa.String(256), nullable=False),
        sa.Column("finding_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_custody_fingerprints"),
    )
    # Findings registered before: the first of each fingerprint keeps it.
    op.execute(
        "INSERT INTO custody_fingerprints (fingerprint, finding_id) "
        "SELECT fingerprint, MIN(id) FROM custody_findings WHERE fingerprint <> '' "
        "GROUP BY fingerprint"
    )


def downgrade() -> None:
    op.drop_table("custody_fingerprints")
