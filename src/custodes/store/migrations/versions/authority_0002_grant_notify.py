"""authority: announce every grant change with NOTIFY (PostgreSQL), for the other replicas

Revision ID: authority_0002
Revises: authority_0001
Create Date: 2026-12-07

Every insert or update of a grant row sends ``NOTIFY custodes_grants, '<grant id>'`` when its
transaction commits (PostgreSQL delivers notifications at commit, never for a rolled-back
change). Each server replica LISTENs and re-reads that grant, so a revocation made on one
replica, or by the CLI, is refused by the others within the notification's delivery time.
SQLite has one writer machine and no notifications: nothing is created there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "authority_0002"
down_revision: str | None = "authority_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION custodes_grant_changed() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('custodes_grants', NEW.id);
            RETURN NEW;
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER authority_grants_notify AFTER INSERT OR UPDATE ON authority_grants "
        "FOR EACH ROW EXECUTE FUNCTION custodes_grant_changed()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER authority_grants_notify ON authority_grants")
    op.execute("DROP FUNCTION custodes_grant_changed()")
