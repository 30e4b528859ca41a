"""A resumable run: every query's outcome appended to a state file as it arrives.

An audit is hundreds to thousands of calls; a run stopped half-way (a deadline, a revoked
grant, a crash) resumes where it stopped. The state file is JSON Lines: a header naming the
probe set (by digest) and the models, then one line per answered query, flushed and fsynced as
it is written. A resumed run checks the header, so outcomes of another probe set or model are
never mixed in, and skips the queries already answered; a last line cut short by a crash is
ignored (it is asked again).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from custodes.audits._analysis import Observation
from custodes.audits._client import Prober
from custodes.audits._outcome import Outcome
from custodes.audits._probes import ProbeSet, Query
from custodes.errors import AuditError

__all__ = ["RunState", "Subject", "observations", "reference_values", "run_audit"]

Subject = Literal["audited", "reference"]
_FORMAT = "custodes-audit-state/v1"
_MAX_LINE = 1 << 16


@dataclass(frozen=True)
class _Done:
    value: float
    method: str
    calls: int
    answered: int


class RunState:
    """The state file of one run (create or resume with :meth:`open`)."""

    def __init__(self, path: Path, header: dict[str, Any], done: dict[tuple[str, str], _Done]):
        self.path = path
        self.header = header
        self._done = done
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, *, probes: ProbeSet, model: str, reference: str | None) -> RunState:
        """Open ``path`` for this run, creating it if absent.

        Raises:
            AuditError: the file belongs to another probe set or model, or is not a state file.
        """
        header = {
            "format": _FORMAT,
            "probe_set": probes.probe_set,
            "probe_set_digest": probes.digest,
            "model": model,
            "reference": reference,
        }
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("xb") as f:
                f.write(orjson.dumps(header) + b"\n")
                f.flush()
                os.fsync(f.fileno())
            return cls(path, header, {})
        found, done, complete = cls._read(path)
        if complete < path.stat().st_size:
            # A last line cut short by a crash: cut it off, so appends start on a fresh line.
            with path.open("r+b") as f:
                f.truncate(complete)
                os.fsync(f.fileno())
        for key in ("probe_set_digest", "model", "reference"):
            if found.get(key) != header[key]:
                raise AuditError(
                    f"{path} is the state of another run: its {key} is {found.get(key)!r}, "
                    f"this run's is {header[key]!r}",
                    hint="pass a new --state file, or the probe set and models of that run",
                )
        return cls(path, found, done)

    @classmethod
    def resume(cls, path: Path, *, probes: ProbeSet) -> RunState:
        """Open an existing state file of ``probes``, with the models its header names.

        Raises:
            AuditError: it is not a state file, or belongs to another probe set.
        """
        if not path.exists():
            raise AuditError(f"no audit state file at {path}", hint="run `custodes audit run`")
        header, _, _ = cls._read(path)
        return cls.open(
            path,
            probes=probes,
            model=str(header.get("model")),
            reference=header.get("reference"),
        )

    @property
    def model(self) -> str:
        """The audited model."""
        return str(self.header["model"])

    @property
    def reference(self) -> str | None:
        """The reference model, if the run has one."""
        value = self.header.get("reference")
        return None if value is None else str(value)

    @staticmethod
    def _read(path: Path) -> tuple[dict[str, Any], dict[tuple[str, str], _Done], int]:
        try:
            lines = path.read_bytes().split(b"\n")
        except OSError as exc:
            raise AuditError(f"cannot read the state file {path}: {exc.strerror}") from exc
        try:
            header = orjson.loads(lines[0])
        except orjson.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise AuditError(f"{path} is not an audit state file ({_FORMAT})")
        done: dict[tuple[str, str], _Done] = {}
        last = len(lines) - 1
        complete = len(lines[0]) + 1
        for number, line in enumerate(lines[1:], start=1):
            if not line:
                complete += 1 if number != last else 0
                continue
            try:
                item = orjson.loads(line) if len(line) <= _MAX_LINE else {}
                key = (str(item["subject"]), str(item["id"]))
                done[key] = _Done(
                    float(item["value"]),
                    str(item["method"]),
                    int(item["calls"]),
                    int(item["answered"]),
                )
                complete += len(line) + 1
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                if number == last:
                    continue  # cut short by a crash mid-write: that query is asked again
                raise AuditError(f"{path}:{number + 1}: not a state line") from exc
        return header, done, complete

    def has(self, subject: Subject, query_id: str) -> bool:
        return (subject, query_id) in self._done

    def record(self, subject: Subject, query: Query, outcome: Outcome) -> None:
        """Append one outcome durably (flushed and fsynced) before it counts as done."""
        line = orjson.dumps(
            {
                "subject": subject,
                "id": query.id,
                "value": outcome.log_odds,
                "method": outcome.method,
                "calls": outcome.calls,
                "answered": outcome.answered,
            }
        )
        with self._lock:
            with self.path.open("ab") as f:
                f.write(line + b"\n")
                f.flush()
                os.fsync(f.fileno())
            self._done[(subject, query.id)] = _Done(
                outcome.log_odds, outcome.method, outcome.calls, outcome.answered
            )

    def value(self, subject: Subject, query_id: str) -> float | None:
        """The query's log-odds, or ``None`` if it was not asked or no reply said yes or no
        (an upstream that never answers the question must not look like one that is fair)."""
        done = self._done.get((subject, query_id))
        return None if done is None or done.answered == 0 else done.value

    @property
    def calls(self) -> int:
        return sum(d.calls for d in self._done.values())

    @property
    def methods(self) -> set[str]:
        return {d.method for d in self._done.values()}

    def __len__(self) -> int:
        return len(self._done)


def run_audit(
    probes: ProbeSet,
    state: RunState,
    prober: Prober,
    *,
    reference: Prober | None = None,
    concurrency: int = 1,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Ask every query not yet in ``state`` (of the audited model, and of the reference).

    Args:
        probes: the battery.
        state: the run's state file; answered queries are skipped.
        prober: the audited model.
        reference: a trusted reference model asked the same queries, if any.
        concurrency: queries in flight at once.
        progress: called with 1 for each query answered (or skipped as already done).

    Returns:
        The number of queries asked in this call.

    Raises:
        AuditError: a probe was refused or failed; the outcomes already recorded stay, so the
            run can be resumed.
    """
    if not 1 <= concurrency <= 64:
        raise AuditError(f"concurrency must be 1 to 64, not {concurrency}")
    subjects: list[tuple[Subject, Prober]] = [("audited", prober)]
    if reference is not None:
        subjects.append(("reference", reference))
    todo: list[tuple[Subject, Prober, Query]] = []
    for query in probes.queries():
        for subject, asker in subjects:
            if state.has(subject, query.id):
                if progress is not None:
                    progress(1)
            else:
                todo.append((subject, asker, query))

    def one(item: tuple[Subject, Prober, Query]) -> None:
        subject, asker, query = item
        state.record(subject, query, asker.ask(query.messages()))
        if progress is not None:
            progress(1)

    if concurrency == 1:
        for item in todo:
            one(item)
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            # list() re-raises the first failure; the others finish or fail on their own.
            list(pool.map(one, todo))
    return len(todo)


def observations(
    probes: ProbeSet, state: RunState, subject: Subject = "audited"
) -> tuple[list[Observation], int]:
    """The oriented observations of ``subject`` in ``state``, and how many queries lack one
    (not asked yet, or no reply said yes or no)."""
    out: list[Observation] = []
    missing = 0
    for query in probes.queries():
        value = state.value(subject, query.id)
        if value is None:
            missing += 1
            continue
        oriented = value if query.favourable == "yes" else -value
        out.append(
            Observation(
                query.family,
                query.kind,
                query.template,
                query.variant,
                query.split,
                query.arm,
                query.role,
                oriented,
            )
        )
    return out, missing


def reference_values(
    probes: ProbeSet, state: RunState
) -> dict[tuple[str, str, int, str | None], float]:
    """The reference model's oriented outcomes, keyed as :func:`analyze` expects."""
    refs, _ = observations(probes, state, "reference")
    return {(o.family, o.template, o.variant, o.arm): o.value for o in refs}
