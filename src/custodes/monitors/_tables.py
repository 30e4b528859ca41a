"""The monitors' tables: detections, their reviewer assignments, and transcript-scan progress.

A detection row is inserted only after its ``monitors.detection/v1`` entry is durable; a
resolution is applied only after its ``monitors.review/v1`` entry is.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
)

from custodes.store import UtcDateTime, metadata

__all__ = ["monitors_assignments", "monitors_detections", "monitors_scan_files"]

monitors_detections = Table(
    "monitors_detections",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("detector", String(64), nullable=False),
    Column("category", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("spans", JSON, nullable=False),
    Column("fingerprint", String(128), nullable=True),
    Column("details", JSON, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("actor_organisation", String(256), nullable=False),
    Column("source", Text, nullable=False),
    Column("location", Text, nullable=False),
    Column("text_sha256", String(64), nullable=False),
    Column("excerpt", Text, nullable=False),
    Column("detected_at", UtcDateTime(), nullable=False),
    Column("log_index", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("resolution_reason", Text, nullable=True),
    Column("finding_id", String(64), nullable=True),
    Column("resolved_by", String(256), nullable=True),
    Column("resolved_at", UtcDateTime(), nullable=True),
)
Index("ix_monitors_detections_status", monitors_detections.c.status)
Index("ix_monitors_detections_fingerprint", monitors_detections.c.fingerprint)
Index("ix_monitors_detections_detected_at", monitors_detections.c.detected_at)
Index("ix_monitors_detections_text_sha256", monitors_detections.c.text_sha256)

monitors_assignments = Table(
    "monitors_assignments",
    metadata,
    Column("detection_id", String(64), ForeignKey("monitors_detections.id"), primary_key=True),
    Column("reviewer", String(256), primary_key=True),
    Column("organisation", String(256), nullable=False),
)
Index("ix_monitors_assignments_reviewer", monitors_assignments.c.reviewer)

# Resumable scans: one row per file, keyed by its absolute path. ``offset`` is the byte just
# after the last fully processed record; ``checksum`` is SHA-256 of the file's bytes up to it,
# so a file that was rewritten (not appended to) is scanned again from the start.
monitors_scan_files = Table(
    "monitors_scan_files",
    metadata,
    Column("path", String(1024), primary_key=True),
    Column("offset", BigInteger, nullable=False),
    Column("line", BigInteger, nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
