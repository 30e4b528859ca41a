"""log: checkpoint rows are chained (seq, signed link) and rollback alarms are stored

Revision ID: log_0003
Revises: log_0002
Create Date: 2026-12-07

Existing checkpoint rows are numbered in id order; they carry no link (it needs the log key,
which a migration does not hold). Every checkpoint signed from now on links to the one before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "log_0003"
down_revision: str | None = "log_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("log_checkpoints") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("link", sa.Text(), nullable=True))
    conn = op.get_bind()
    ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM log_checkpoints ORDER BY id"))]
    if ids:
        conn.execute(
            sa.text("UPDATE log_checkpoints SET seq = :seq WHERE id = :id"),
            [{"seq": n, "id": i} for n, i in enumerate(ids)],
        )
    with op.batch_alter_table("log_checkpoints") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch.create_index("ix_log_checkpoints_seq", ["seq"], unique=True)
    op.create_table(
        "log_alarms",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("log_size", sa.BigInteger(), nullable=False),
        sa.Column("witness", sa.Text(), nullable=True),
        sa.Column("witness_size", sa.BigInteger(), nullable=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_log_alarms"),
    )


def downgrade() -> None:
    op.drop_table("log_alarms")
    with op.batch_alter_table("log_checkpoints") as batch:
        batch.drop_index("ix_log_checkpoints_seq")
        batch.drop_column("link")
        batch.drop_column("seq")
