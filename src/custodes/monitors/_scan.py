"""``custodes scan``: stream transcript files through detectors into the review queue,
resumably (progress per file lives in ``monitors_scan_files``)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, delete, insert, select, update

from custodes.clock import Clock
from custodes.errors import InputError
from custodes.monitors._detector import Detection, Detector
from custodes.monitors._review import ReviewQueue, TextDetections
from custodes.monitors._tables import monitors_detections, monitors_scan_files
from custodes.monitors._transcripts import Format, Record, detect_format, read_records
from custodes.store import writer

if TYPE_CHECKING:
    from custodes.monitors._judge import JudgeSettings

__all__ = ["ScanProblem", "ScanSummary", "TranscriptScanner", "expand_paths"]

_SUFFIXES = {".jsonl", ".json", ".eval", ".txt", ".log", ".md", ".out"}
_CHECKPOINT_BYTES = 8 * 1024 * 1024  # progress is saved at least this often
_BATCH = 200  # texts with detections per log append
_DEDUPE_CHUNK = 500  # text digests per dedupe query
_POOL_BATCH = 512  # records scored per round trip to the worker pool
_POOL_BATCH_CHARS = 16 * 1024 * 1024

# One set per worker process, built by the pool's initializer (_pool_init): detectors are not
# pickled to the workers with every batch, each worker builds its own from the registry once.
_worker_detectors: list[Detector] = []
_worker_min_score = 0.5


def _pool_init(
    names: Sequence[str],
    min_score: float,
    judge: JudgeSettings | None = None,
    judge_key: str = "",
) -> None:
    """Build the detectors once per worker process (from the default registry, and the
    judged detector from ``judge`` with its own gateway client: a client's connections do
    not cross a process boundary). ``judge`` is already this worker's share of the cap."""
    from custodes.monitors._registry import default_registry

    global _worker_min_score
    registry = default_registry()
    if judge is not None:
        judge.register(registry, key=judge_key)
    _worker_detectors[:] = [registry.get(n) for n in names]
    _worker_min_score = min_score


def _pool_detect(text: str) -> list[Detection]:
    """In a worker process: the detections of ``text`` at or above the scan's minimum score
    (the worker's copy of :meth:`TranscriptScanner.detect`)."""
    out: list[Detection] = []
    for d in _worker_detectors:
        out.extend(x for x in d.detect(text) if x.score >= _worker_min_score)
    return out


@dataclass(frozen=True)
class ScanProblem:
    """A malformed file or record, skipped: ``where`` is ``file:line``."""

    where: str
    message: str


@dataclass
class ScanSummary:
    """What one scan read and found.

    Attributes:
        files: files read.
        skipped_files: files left out because a completed earlier scan already read them
            unchanged.
        records: transcript records scored.
        bytes: bytes read.
        detections: detections at or above the scanner's minimum score.
        problems: malformed files or records, skipped (never a stopped scan).
    """

    files: int = 0
    skipped_files: int = 0
    records: int = 0
    bytes: int = 0
    detections: int = 0
    problems: list[ScanProblem] = field(default_factory=list)


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named, and transcript-looking files under folders named (sorted, recursive)."""
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    f = Path(root) / name
                    if f.suffix.lower() in _SUFFIXES:
                        yield f
        else:
            yield p


def _prefix_hasher(path: Path, length: int) -> hashlib._Hash:
    """SHA-256 over the first ``length`` bytes of ``path``, ready to be extended."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        remaining = length
        while remaining > 0:
            chunk = fh.read(min(remaining, 1 << 20))
            if not chunk:
                break
            h.update(chunk)
            remaining -= len(chunk)
    return h


def _prefix_sha256(path: Path, length: int) -> str:
    """The hex SHA-256 of the first ``length`` bytes of ``path``."""
    return _prefix_hasher(path, length).hexdigest()


class TranscriptScanner:
    """Runs ``detectors`` over transcript files and records what they flag.

    Args:
        detectors: the detectors to run (thread-safe, side-effect free).
        queue: where detections go (log first, then database).
        actor: whose transcripts these are (the principal reviewers must not share an
            organisation with).
        actor_organisation: overrides the directory's organisation for ``actor``.
        min_score: detections below this score are not recorded.
        workers: processes that run the detectors (1: in this process). Above 1, the
            detectors are rebuilt in each worker from ``detector_names`` (registry names),
            and records are scored in batches while this process reads, hashes and logs.
        detector_names: the registry names of ``detectors`` (needed when ``workers > 1``).
        judge: with ``workers > 1`` and ``judged`` among ``detector_names``, what each worker
            builds its judged detector from: its own gateway client, and an equal share of
            the hourly cap (so the cap holds for the whole scan). The key is read here, once,
            from the variable the settings name. With one worker the judged detector is
            among ``detectors`` already.

    Raises:
        InputError: ``workers > 1`` without ``detector_names``; ``judged`` run by workers
            without ``judge``; the judge's key variable unset or empty.
    """

    def __init__(
        self,
        detectors: Sequence[Detector],
        queue: ReviewQueue,
        *,
        actor: str,
        actor_organisation: str | None = None,
        min_score: float = 0.5,
        workers: int = 1,
        detector_names: Sequence[str] | None = None,
        judge: JudgeSettings | None = None,
    ) -> None:
        if workers > 1 and not detector_names:
            raise InputError(
                "a scan with worker processes needs the detectors' registry names",
                where="TranscriptScanner",
                expected="detector_names=[...] with workers > 1",
                actual=f"workers={workers}",
            )
        self.workers = max(1, workers)
        self.detector_names = list(detector_names or ())
        if self.workers > 1 and "judged" in self.detector_names and judge is None:
            raise InputError(
                "the judged detector's workers need the judge's settings",
                where="TranscriptScanner",
                expected="judge=JudgeSettings(...) with 'judged' among detector_names",
                actual=f"workers={workers}",
            )
        self.judge = judge if "judged" in self.detector_names else None
        # Read now, so a missing key is an error before anything is read (not in a worker).
        self._judge_key = self.judge.key() if self.judge is not None else ""
        self._pool: ProcessPoolExecutor | None = None
        self.detectors = list(detectors)
        self.queue = queue
        self.engine: Engine = queue.engine
        self.clock: Clock = queue.clock
        self.actor = actor
        self.actor_organisation = actor_organisation
        self.min_score = min_score

    def pending_bytes(self, files: Sequence[Path]) -> int:
        """Bytes left to scan (for a progress bar's total)."""
        total = 0
        for f in files:
            try:
                size = f.stat().st_size
            except OSError:
                continue
            state = self._state(f)
            total += size - (state[0] if state and not state[3] else size if state else 0)
        return max(total, 0)

    @staticmethod
    def _key(path: Path | str) -> str:
        """Where progress is kept: a local file by its resolved path, a URL as it is."""
        return str(path.resolve()) if isinstance(path, Path) else path

    def _state(self, path: Path | str) -> tuple[int, int, str, bool] | None:
        """The saved progress of ``path``: the offset and line after the last durable record,
        the SHA-256 of the bytes before that offset, and whether the file was read to its end;
        None if it was never scanned."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(monitors_scan_files).where(monitors_scan_files.c.path == self._key(path))
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return int(row["offset"]), int(row["line"]), str(row["checksum"]), bool(row["complete"])

    def _save(
        self, path: Path | str, offset: int, line: int, checksum: str, complete: bool
    ) -> None:
        """Save the progress of ``path`` (an update, or the first insert).

        Called only once the detections read before ``offset`` are logged and stored, so a
        resumed scan never starts after a detection that was not recorded.
        """
        key = self._key(path)
        values = {
            "offset": offset,
            "line": line,
            "checksum": checksum,
            "complete": complete,
            "updated_at": self.clock.now(),
        }
        with writer(self.engine).begin() as conn:
            done = conn.execute(
                update(monitors_scan_files)
                .where(monitors_scan_files.c.path == key)
                .values(**values)
            )
            if done.rowcount == 0:
                conn.execute(insert(monitors_scan_files).values(path=key, **values))

    def forget(self, path: Path | str) -> None:
        """Drop the saved progress of ``path`` (a file, or a URL: the next scan reads it from
        the start)."""
        with writer(self.engine).begin() as conn:
            conn.execute(
                delete(monitors_scan_files).where(monitors_scan_files.c.path == self._key(path))
            )

    def detect(self, text: str) -> list[Detection]:
        """Every detector's detections in ``text`` scoring at least ``min_score``."""
        out: list[Detection] = []
        for d in self.detectors:
            out.extend(x for x in d.detect(text) if x.score >= self.min_score)
        return out

    def _with_detections(
        self, records: Iterable[Record]
    ) -> Iterator[tuple[Record, list[Detection]]]:
        """Each record with its detections, scored here or in batches by the pool."""
        if self._pool is None:
            for rec in records:
                yield rec, (self.detect(rec.text) if rec.problem is None else [])
            return
        batch: list[Record] = []
        size = 0
        for rec in records:
            batch.append(rec)
            size += len(rec.text)
            if len(batch) >= _POOL_BATCH or size >= _POOL_BATCH_CHARS:
                yield from self._pool_batch(batch)
                batch, size = [], 0
        if batch:
            yield from self._pool_batch(batch)

    def _pool_batch(self, batch: list[Record]) -> Iterator[tuple[Record, list[Detection]]]:
        """Score one batch in the worker pool, each record with its detections, in order (a
        malformed record is sent as the empty text, so the order holds)."""
        assert self._pool is not None
        texts = [r.text if r.problem is None else "" for r in batch]
        # About four chunks per worker: large enough to pay for the pickling round trip,
        # small enough that one slow chunk of long texts does not leave the others idle.
        chunk = max(1, len(texts) // (self.workers * 4))
        yield from zip(batch, self._pool.map(_pool_detect, texts, chunksize=chunk), strict=True)

    def _fresh(self, found: Sequence[TextDetections]) -> list[TextDetections]:
        """``found`` without the detections already recorded for the same text at the same
        location (the content fingerprint that keeps a rescan from recording twice); one
        query per :data:`_DEDUPE_CHUNK` texts."""
        digests = [
            hashlib.sha256(f.text.encode("utf-8", "surrogatepass")).hexdigest() for f in found
        ]
        seen: dict[tuple[str, str], set[tuple[str, str]]] = {}
        unique = sorted(set(digests))
        t = monitors_detections.c
        with self.engine.connect() as conn:
            for i in range(0, len(unique), _DEDUPE_CHUNK):
                rows = conn.execute(
                    select(t.location, t.text_sha256, t.detector, t.category).where(
                        t.text_sha256.in_(unique[i : i + _DEDUPE_CHUNK])
                    )
                ).all()
                for r in rows:
                    seen.setdefault((r[0], r[1]), set()).add((r[2], r[3]))
        out: list[TextDetections] = []
        for f, digest in zip(found, digests, strict=True):
            known = seen.get((f.location, digest), set())
            fresh = tuple(d for d in f.detections if (d.detector, d.category) not in known)
            if fresh:
                out.append(TextDetections(fresh, f.text, f.source, f.location))
        return out

    def scan(
        self,
        paths: Sequence[Path],
        *,
        on_bytes: Callable[[int], None] | None = None,
        on_problem: Callable[[ScanProblem], None] | None = None,
        restart: bool = False,
    ) -> ScanSummary:
        """Scan ``paths`` (files and folders), resuming each file where it stopped.

        Malformed files and records are reported through ``on_problem`` and skipped.

        Raises:
            LogWriteError: a detection could not be logged (the scan stops; progress up to
                the last recorded detection is kept, so rerunning resumes there).
        """
        summary = ScanSummary()
        if self.workers > 1 and self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_pool_init,
                initargs=(
                    self.detector_names,
                    self.min_score,
                    self.judge.for_workers(self.workers) if self.judge is not None else None,
                    self._judge_key,
                ),
            )
        try:
            return self._scan(paths, summary, on_bytes, on_problem, restart)
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None

    def _scan(
        self,
        paths: Sequence[Path],
        summary: ScanSummary,
        on_bytes: Callable[[int], None] | None,
        on_problem: Callable[[ScanProblem], None] | None,
        restart: bool,
    ) -> ScanSummary:
        """The body of :meth:`scan`, once the pool (if any) is up: each file in turn; one that
        cannot be opened or sniffed is a problem reported, never a stopped scan."""

        def problem(where: str, message: str) -> None:
            p = ScanProblem(where, message)
            summary.problems.append(p)
            if on_problem is not None:
                on_problem(p)

        for path in expand_paths(paths):
            if restart:
                self.forget(path)
            try:
                size = path.stat().st_size
                fmt = detect_format(path)
            except OSError as exc:
                problem(f"{path}:0", f"cannot read: {exc.strerror or exc}")
                continue
            self._scan_file(path, size, fmt, summary, problem, on_bytes)
        return summary

    def _scan_file(
        self,
        path: Path,
        size: int,
        fmt: Format,
        summary: ScanSummary,
        problem: Callable[[str, str], None],
        on_bytes: Callable[[int], None] | None,
    ) -> None:
        """Scan one file, resuming where the saved progress says, and save progress as it goes.

        A saved checksum covers the bytes before the saved offset: if the file still starts
        with those bytes it was only appended to, and the scan resumes there; otherwise it was
        rewritten and is read again from the start (the dedupe of :meth:`_fresh` keeps what was
        recorded before from being recorded twice).
        """
        state = self._state(path)
        offset, line = 0, 0
        hasher = hashlib.sha256()
        if state is not None:
            s_offset, s_line, s_sum, complete = state
            # An Inspect log (.eval zip, .json) is one document: there is no record boundary to
            # resume at, so it is skipped when unchanged and complete, else read whole again.
            whole = fmt in ("inspect-eval", "inspect-json")
            prefix = _prefix_hasher(path, s_offset) if s_offset <= size else None
            if prefix is not None and prefix.hexdigest() == s_sum:
                if complete and (whole or s_offset == size):
                    summary.skipped_files += 1
                    return
                if not whole:
                    # Only appended: resume after the last durable record, and go on
                    # extending the checksum of everything read.
                    offset, line, hasher = s_offset, s_line, prefix
        summary.files += 1
        last_saved = offset
        pending: list[TextDetections] = []

        def flush() -> None:
            fresh = self._fresh(pending) if pending else []
            pending.clear()
            if fresh:
                self.queue.record_many(
                    fresh, actor=self.actor, actor_organisation=self.actor_organisation
                )
                summary.detections += sum(len(p.detections) for p in fresh)

        try:
            with path.open("rb") as raw:
                raw.seek(offset)
                records = read_records(path, fmt, start_offset=offset, start_line=line)
                for rec, found in self._with_detections(records):
                    if rec.end_offset is not None:
                        # The same bytes the reader parsed are read again for the checksum, so it
                        # covers exactly what lies before the offset saved with it.
                        raw_len = rec.end_offset - offset
                        hasher.update(raw.read(raw_len))
                        if on_bytes is not None:
                            on_bytes(raw_len)
                        summary.bytes += raw_len
                        offset, line = rec.end_offset, rec.line
                    where = f"{path}:{rec.line}"
                    if rec.problem is not None:
                        problem(where, rec.problem)
                        continue
                    summary.records += 1
                    if found:  # deduplicated in bulk when the batch is flushed
                        pending.append(TextDetections(tuple(found), rec.text, str(path), where))
                    # Detections are logged in batches (one group commit each); progress is
                    # saved only after the batch before it is durable.
                    if len(pending) >= _BATCH or (
                        rec.end_offset is not None and offset - last_saved >= _CHECKPOINT_BYTES
                    ):
                        flush()
                        if rec.end_offset is not None:
                            self._save(path, offset, line, hasher.hexdigest(), False)
                            last_saved = offset
                flush()
        except OSError as exc:
            problem(f"{path}:{line}", f"read failed: {exc.strerror or exc}")
            return
        if fmt in ("inspect-eval", "inspect-json"):
            # The records of a whole document carry no offsets: the file counts as read at once.
            summary.bytes += size
            if on_bytes is not None:
                on_bytes(size)
            self._save(path, size, 0, _prefix_sha256(path, size), True)
        else:
            self._save(path, offset, line, hasher.hexdigest(), True)
