"""The custody registry's tables. Every row change follows a durable log entry."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from custodes.store import UtcDateTime, metadata

__all__ = [
    "custody_alarms",
    "custody_counters",
    "custody_fingerprints",
    "custody_escrow",
    "custody_events",
    "custody_findings",
]

# Finding numbers are reserved here, one at a time, before the registration entry is appended;
# a failed append gives its number back, so numbers have no gaps (unless a process dies between
# the two), and never a finding without its entry.
custody_counters = Table(
    "custody_counters",
    metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("last", Integer, nullable=False),
)

# One finding per fingerprint, claimed in the same transaction as the finding's number, before
# the registration is logged: a second registration of the same finding (from this process or
# another) is refused before anything is logged, and a failed one gives its claim back.
custody_fingerprints = Table(
    "custody_fingerprints",
    metadata,
    Column("fingerprint", String(256), primary_key=True),
    Column("finding_id", String(32), nullable=False),
)

custody_findings = Table(
    "custody_findings",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("vendor", String(512), nullable=False),
    Column("product", String(512), nullable=False),
    Column("versions", JSON, nullable=False),
    Column("cwe", String(16), nullable=False),
    Column("cvss_version", String(8), nullable=False),
    Column("cvss_vector", String(256), nullable=False),
    Column("cvss_score", Float, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("finder", String(256), nullable=False),
    Column("model", String(256), nullable=False),
    Column("session", String(256), nullable=False),
    Column("evidence", Text, nullable=False),
    Column("fingerprint", String(256), nullable=False),
    Column("policy", String(64), nullable=False),
    Column("detection_id", String(256), nullable=True),
    Column("references", JSON, nullable=False),
    Column("purl", String(1000), nullable=False, server_default=""),
    # register/v2: the log holds the commitment to the case record; its salt stays here.
    Column("record_commitment", String(64), nullable=False, server_default=""),
    Column("record_salt", String(64), nullable=False, server_default=""),
    Column("commitment", String(64), nullable=False),
    Column("rm_state", String(16), nullable=False),
    Column("em_state", String(16), nullable=False),
    Column("registered_at", UtcDateTime(), nullable=False),
    Column("registered_by", String(256), nullable=False),
    Column("log_index", BigInteger, nullable=False),
    Column("revealed_at", UtcDateTime(), nullable=True),
)
Index("ix_custody_findings_detection_id", custody_findings.c.detection_id)

custody_escrow = Table(
    "custody_escrow",
    metadata,
    Column("finding_id", String(32), ForeignKey("custody_findings.id"), primary_key=True),
    Column("kek_id", String(32), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    # AES-GCM over salt || details: the commitment's opening stays secret until reveal.
    Column("ciphertext", LargeBinary, nullable=False),
    Column("ciphertext_sha256", String(64), nullable=False),
    Column("details_bytes", BigInteger, nullable=False),
)

custody_events = Table(
    "custody_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("finding_id", String(32), ForeignKey("custody_findings.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("principal", String(256), nullable=False),
    Column("note", Text, nullable=False),
    Column("log_index", BigInteger, nullable=False),
)
Index("ix_custody_events_finding_id", custody_events.c.finding_id)

custody_alarms = Table(
    "custody_alarms",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("raised_at", UtcDateTime(), nullable=False),
    Column("message", Text, nullable=False),
    Column("log_index", BigInteger, nullable=False),
)
