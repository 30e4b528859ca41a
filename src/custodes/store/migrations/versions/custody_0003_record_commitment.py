"""custody: the commitment to each finding's case record and its salt (register/v2 entries)

Revision ID: custody_0003
Revises: custody_0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "custody_0003"
down_revision: str | None = "custody_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("custody_findings") as batch:
        batch.add_column(
            sa.Column("record_commitment", sa.String(64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("record_salt", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("custody_findings") as batch:
        batch.drop_column("record_salt")
        batch.drop_column("record_commitment")
