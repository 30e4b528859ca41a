"""The model registry's tables. Every row follows a durable log entry that records it."""

from sqlalchemy import (
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
    "provenance_artifacts",
    "provenance_evaluations",
    "provenance_promotions",
    "provenance_run_inputs",
    "provenance_runs",
]

provenance_artifacts = Table(
    "provenance_artifacts",
    metadata,
    Column("digest", String(71), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(256), nullable=False),
    # The model-signing manifest document (JSON); its SHA-256 is in the registration entry.
    Column("manifest", Text, nullable=True),
    Column("manifest_sha256", String(64), nullable=True),
    Column("files", Integer, nullable=False),
    Column("git_commit", String(64), nullable=True),
    # Which run produced it (weights), or none: a root registered by digest.
    Column("run_id", String(32), nullable=True),
    Column("registered_by", String(256), nullable=False),
    Column("registered_at", UtcDateTime(), nullable=False),
    Column("log_index", BigInteger, nullable=False),
)
Index("ix_provenance_artifacts_run_id", provenance_artifacts.c.run_id)

provenance_runs = Table(
    "provenance_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    # The DSSE envelope exactly as the pipeline sent it; its SHA-256 is in the run's entry.
    Column("envelope", LargeBinary, nullable=False),
    Column("envelope_sha256", String(64), nullable=False, unique=True),
    Column("plan_digest", String(71), nullable=False),
    Column("builder", String(256), nullable=False),
    Column("invocation_id", String(256), nullable=False),
    # One run per approval: the grant is spent by the run it approved.
    Column("grant_id", String(64), nullable=False, unique=True),
    Column("requester", String(256), nullable=False),
    Column("started_on", UtcDateTime(), nullable=False),
    Column("finished_on", UtcDateTime(), nullable=False),
    Column("registered_at", UtcDateTime(), nullable=False),
    Column("log_index", BigInteger, nullable=False),
)

provenance_run_inputs = Table(
    "provenance_run_inputs",
    metadata,
    Column("run_id", String(32), ForeignKey("provenance_runs.id"), primary_key=True),
    Column("digest", String(71), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("position", Integer, nullable=False),
)
Index("ix_provenance_run_inputs_digest", provenance_run_inputs.c.digest)

provenance_evaluations = Table(
    "provenance_evaluations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("weights", String(71), nullable=False),
    Column("evaluation", String(128), nullable=False),
    Column("score", Float, nullable=False),
    Column("evaluator", String(256), nullable=False),
    # The DSSE envelope exactly as the evaluator signed it; its SHA-256 is in the entry.
    Column("envelope", LargeBinary, nullable=False),
    Column("envelope_sha256", String(64), nullable=False, unique=True),
    Column("registered_by", String(256), nullable=False),
    Column("registered_at", UtcDateTime(), nullable=False),
    Column("log_index", BigInteger, nullable=False),
)
Index("ix_provenance_evaluations_weights", provenance_evaluations.c.weights)

provenance_promotions = Table(
    "provenance_promotions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("weights", String(71), nullable=False),
    Column("capability", String(128), nullable=False),
    # One promotion per approval: the grant is spent by the promotion it approved.
    Column("grant_id", String(64), nullable=False, unique=True),
    Column("requester", String(256), nullable=False),
    Column("registered_by", String(256), nullable=False),
    # The evaluation ids counted (JSON list), as in the entry.
    Column("evaluations", Text, nullable=False),
    Column("checkpoint_size", BigInteger, nullable=False),
    Column("registered_at", UtcDateTime(), nullable=False),
    Column("log_index", BigInteger, nullable=False),
)
Index("ix_provenance_promotions_weights", provenance_promotions.c.weights)
