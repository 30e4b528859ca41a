"""custody: the affected package of a finding (a Package URL), for OSV and CVE exports

Revision ID: custody_0002
Revises: custody_0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "custody_0002"
down_revision: str | None = "custody_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("custody_findings") as batch:
        batch.add_column(sa.Column("purl", sa.String(1000), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("custody_findings") as batch:
        batch.drop_column("purl")
