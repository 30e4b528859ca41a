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

from custodes.store import create_notify_trigger, drop_notify_trigger

revision: str = "constitution_0002"
down_revision: str | None = "constitution_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_notify_trigger(
        function="custodes_constitution_adopted",
        channel="custodes_constitution",
        payload="NEW.version::text",
        trigger="constitution_versions_notify",
        table="constitution_versions",
        events="INSERT",
    )


def downgrade() -> None:
    drop_notify_trigger(
        function="custodes_constitution_adopted",
        trigger="constitution_versions_notify",
        table="constitution_versions",
    )
