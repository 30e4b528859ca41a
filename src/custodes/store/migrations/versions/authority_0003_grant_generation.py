"""authority: number every grant change (a generation), so other processes can poll for them

Revision ID: authority_0003
Revises: authority_0002
Create Date: 2026-12-07

One row, ``authority_generation``, counts grant changes. A trigger on ``authority_grants``
increments it in the same transaction as each inserted or updated grant row and stamps the row
with the new value. Other processes (server replicas, a second server on one SQLite file) poll
``generation > last seen`` and re-read just those grants: the second line behind the
``custodes_grants`` notification (authority_0002), and the only one on SQLite.

Commit order is generation order: the increment locks the counter row until the transaction
ends, so a transaction stamping N+1 waits for the one stamping N to commit (PostgreSQL), and
SQLite has one writer at a time. Whoever reads generation N therefore already sees every change
below N, and a poll misses none. (Every grant-writing transaction writes one grant row, so the
counter lock is always taken after at most that row's lock: no lock cycle.)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "authority_0003"
down_revision: str | None = "authority_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STAMP_SQLITE = """
    BEGIN
        UPDATE authority_generation SET value = value + 1 WHERE id = 1;
        UPDATE authority_grants
            SET generation = (SELECT value FROM authority_generation WHERE id = 1)
            WHERE id = NEW.id;
    END
"""


def upgrade() -> None:
    op.create_table(
        "authority_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO authority_generation (id, value) VALUES (1, 0)")
    op.add_column(
        "authority_grants",
        sa.Column("generation", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_index("ix_authority_grants_generation", "authority_grants", ["generation"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION custodes_grant_generation() RETURNS trigger AS $$
            BEGIN
                UPDATE authority_generation SET value = value + 1 WHERE id = 1
                    RETURNING value INTO NEW.generation;
                RETURN NEW;
            END
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER authority_grants_generation BEFORE INSERT OR UPDATE "
            "ON authority_grants FOR EACH ROW EXECUTE FUNCTION custodes_grant_generation()"
        )
    else:
        # SQLite cannot assign NEW in a trigger: stamp the row after it is written. The WHEN
        # keeps the stamping update from counting itself (were recursive triggers turned on).
        op.execute(
            "CREATE TRIGGER authority_grants_generation_insert AFTER INSERT "
            "ON authority_grants FOR EACH ROW" + _STAMP_SQLITE
        )
        op.execute(
            "CREATE TRIGGER authority_grants_generation_update AFTER UPDATE "
            "ON authority_grants FOR EACH ROW WHEN NEW.generation = OLD.generation" + _STAMP_SQLITE
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER authority_grants_generation ON authority_grants")
        op.execute("DROP FUNCTION custodes_grant_generation()")
    else:
        op.execute("DROP TRIGGER authority_grants_generation_insert")
        op.execute("DROP TRIGGER authority_grants_generation_update")
    op.drop_index("ix_authority_grants_generation", table_name="authority_grants")
    with op.batch_alter_table("authority_grants") as batch:
        batch.drop_column("generation")
    op.drop_table("authority_generation")
