"""authority: requests, approvals, grants

Revision ID: authority_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "authority_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("authority",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authority_requests",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("requester", sa.String(256), nullable=False),
        sa.Column("capability", sa.String(128), nullable=True),
        sa.Column("constitution_version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_authority_requests"),
        sa.UniqueConstraint("digest", name="uq_authority_requests_digest"),
    )
    op.create_index("ix_authority_requests_status", "authority_requests", ["status"])
    op.create_table(
        "authority_approvals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("approver", sa.String(256), nullable=False),
        sa.Column("organisation", sa.String(128), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("constitution_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_authority_approvals"),
        sa.UniqueConstraint("request_id", "approver", name="uq_authority_approvals_request_id"),
    )
    op.create_table(
        "authority_grants",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("principal", sa.String(256), nullable=False),
        sa.Column("capability", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("resource", sa.String(256), nullable=True),
        sa.Column("break_glass", sa.Boolean(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(256), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("constitution_version", sa.Integer(), nullable=False),
        sa.Column("approvals", sa.Text(), nullable=False),
        sa.Column("review_request_id", sa.String(64), nullable=True),
        sa.Column("review_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_status", sa.String(16), nullable=True),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_authority_grants"),
    )
    op.create_index("ix_authority_grants_principal", "authority_grants", ["principal"])


def downgrade() -> None:
    op.drop_table("authority_grants")
    op.drop_table("authority_approvals")
    op.drop_index("ix_authority_requests_status", "authority_requests")
    op.drop_table("authority_requests")
