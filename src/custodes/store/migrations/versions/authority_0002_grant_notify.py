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

from custodes.store import create_notify_trigger, drop_notify_trigger

revision: str = "authority_0002"
down_revision: str | None = "authority_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_notify_trigger(
        function="custodes_grant_changed",
        channel="custodes_grants",
        payload="NEW.id",
        trigger="authority_grants_notify",
        table="authority_grants",
        events="INSERT OR UPDATE",
    )


def downgrade() -> None:
    drop_notify_trigger(
        function="custodes_grant_changed",
        trigger="authority_grants_notify",
        table="authority_grants",
    )
