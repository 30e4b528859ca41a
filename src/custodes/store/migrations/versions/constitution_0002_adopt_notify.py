"""constitution: announce every adopted version with NOTIFY (PostgreSQL), for the other replicas

Revision ID: constitution_0002
Revises: constitution_0001
Create Date: 2026-12-07

Each inserted version sends ``NOTIFY custodes_constitution, '<version>'`` when its transaction
commits. Each server replica LISTENs and activates the newest stored version, so an amendment
adopted on one replica is the constitution of all of them within the notification's delivery.
Every server also polls the newest version number (the second line of defence, and the only
one on SQLite): nothing is created on SQLite.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "constitution_0002"
down_revision: str | None = "constitution_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION custodes_constitution_adopted() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('custodes_constitution', NEW.version::text);
            RETURN NEW;
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER constitution_versions_notify AFTER INSERT ON constitution_versions "
        "FOR EACH ROW EXECUTE FUNCTION custodes_constitution_adopted()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER constitution_versions_notify ON constitution_versions")
    op.execute("DROP FUNCTION custodes_constitution_adopted()")
