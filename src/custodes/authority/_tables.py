"""Requests, approvals and grants. Rows mirror log entries; the log is the record."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from custodes.store import UtcDateTime, metadata

__all__ = [
    "authority_approvals",
    "authority_generation",
    "authority_grants",
    "authority_requests",
]

authority_requests = Table(
    "authority_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("requester", String(256), nullable=False),
    Column("capability", String(128), nullable=True),
    Column("constitution_version", Integer, nullable=False),
    Column("body", Text, nullable=False),  # the canonical request object (RFC 8785)
    Column("signature", Text, nullable=True),
    Column("payload", Text, nullable=True),  # an amendment's proposed document
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("decided_at", UtcDateTime(), nullable=True),
    Column("log_index", BigInteger, nullable=False),
)
# The sweep and the pending-requests page filter by status.
Index("ix_authority_requests_status", authority_requests.c.status)

authority_approvals = Table(
    "authority_approvals",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("request_id", String(64), nullable=False),
    Column("approver", String(256), nullable=False),
    Column("organisation", String(128), nullable=False),
    Column("signature", Text, nullable=False),
    Column("constitution_version", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("log_index", BigInteger, nullable=False),
    # One approval row per approver: a second one is a renewal, an update of this row.
    UniqueConstraint("request_id", "approver"),
)

authority_grants = Table(
    "authority_grants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("request_id", String(64), nullable=True),
    Column("principal", String(256), nullable=False),
    Column("capability", String(128), nullable=False),
    Column("rule", String(128), nullable=False),
    Column("resource", String(256), nullable=True),
    Column("break_glass", Boolean, nullable=False),
    Column("granted_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("revoked_by", String(256), nullable=True),
    Column("revoke_reason", Text, nullable=True),
    Column("constitution_version", Integer, nullable=False),
    Column("approvals", Text, nullable=False),  # JSON [[principal, organisation], ...]
    Column("review_request_id", String(64), nullable=True),
    Column("review_deadline", UtcDateTime(), nullable=True),
    Column("review_status", String(16), nullable=True),
    Column("log_index", BigInteger, nullable=False),
    # Stamped by a trigger (migration authority_0003) with the change counter's value at each
    # insert and update: other processes poll for grants changed after the last they saw.
    Column("generation", BigInteger, nullable=False, server_default="0"),
)
# Grants are read by principal (the dashboard, the one-open-break-glass check).
Index("ix_authority_grants_principal", authority_grants.c.principal)
Index("ix_authority_grants_generation", authority_grants.c.generation)
# Active grants soonest to expire first (the dashboard's Now page, its count): a range from
# now in (break_glass, expires_at, id) order; revoked_at and granted_at make it covering for the
# count (migration authority_0004).
Index(
    "ix_authority_grants_active",
    authority_grants.c.break_glass,
    authority_grants.c.expires_at,
    authority_grants.c.id,
    authority_grants.c.revoked_at,
    authority_grants.c.granted_at,
)

# One row (id 1): how many grant changes were ever committed (see ``generation`` above).
authority_generation = Table(
    "authority_generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)
