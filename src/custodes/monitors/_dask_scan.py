"""``custodes scan --dask``: the same scan on a Dask cluster (``dask.distributed``).

Files are cut into shards (byte ranges of line-oriented files, aligned to line ends; Inspect
``.json`` / ``.eval`` logs stay whole) and every worker runs the same detectors on its shards.
Only detections travel back. The client takes the shards' results in file order and records
them exactly as a local scan does (:meth:`TranscriptScanner` dedupe by location and content
fingerprint, then ``ReviewQueue.record_many``: log first, then the queue), so the queue and
the log get the same detections in the same order as a local scan of the same files.

A worker that dies loses nothing: a shard is a pure task, and the scheduler recomputes the
shards whose results were on it. A client that dies resumes from each file's saved progress
(written when a file is finished); a shard recorded before the crash is recorded again as
nothing, because the dedupe finds its detections already in the queue.

Files are opened with ``fsspec``, so a source may be a local path (which every worker must
see at the same path: a shared file system) or a URL (``file://``, ``s3://``, ``gs://``, with
the matching fsspec backend installed).
"""

from __future__ import annotations

import hashlib
import io
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from custodes.errors import InputError
from custodes.monitors._detector import Detection, Detector
from custodes.monitors._review import TextDetections
from custodes.monitors._scan import (
    _BATCH,
    _SUFFIXES,
    ScanProblem,
    ScanSummary,
    TranscriptScanner,
    expand_paths,
)
from custodes.monitors._transcripts import (
    TEXT_BLOCK_BYTES,
    Format,
    Record,
    _inspect_eval,
    _inspect_json,
    _jsonl,
    _text,
    detect_format,
    jsonl_format,
)

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = ["DaskScan", "ScanSource", "ShardResult", "is_url", "scan_sources"]

SHARD_BYTES = 64 * 1024 * 1024
_WHOLE: frozenset[Format] = frozenset({"inspect-eval", "inspect-json"})
_HASH_CHUNK = 1 << 20

_worker_detectors: dict[tuple[str, ...], list[Detector]] = {}


def is_url(source: str) -> bool:
    """Whether ``source`` names a file by URL (``scheme://...``) rather than by local path."""
    head, sep, _ = source.partition("://")
    return bool(sep) and head.isascii() and head.replace("+", "").replace("-", "").isalnum()


@dataclass(frozen=True)
class ScanSource:
    """One file to scan.

    Attributes:
        name: how detections name it (``name:line`` locations), as a local scan does.
        url: what the workers open with ``fsspec`` (a local path or a URL).
        key: where its progress is kept (a resolved local path, or the URL).
        size: its size in bytes when the scan was planned.
        fmt: its transcript format.
    """

    name: str
    url: str
    key: str
    size: int
    fmt: Format


@dataclass(frozen=True)
class ShardResult:
    """What a worker found in one shard.

    Attributes:
        start: the byte offset where the shard's first record starts.
        end: the byte offset just after its last record.
        lines: lines that start in ``[start, end)`` (to number the next shard's lines).
        records: well-formed records scored.
        flagged: ``(line, text, detections)`` of each record with detections, ``line``
            counted from the shard's start (1 is its first line).
        problems: ``(line, message)`` of each malformed record, lines as in ``flagged``.
        error: why the file could not be read (the rest of the file is left for a rerun,
            as a local scan leaves it).
    """

    start: int
    end: int
    lines: int
    records: int
    flagged: tuple[tuple[int, str, tuple[Detection, ...]], ...]
    problems: tuple[tuple[int, str], ...]
    error: str | None = None


def _detectors(names: tuple[str, ...]) -> list[Detector]:
    """The detectors named, built once per worker process (from the default registry)."""
    found = _worker_detectors.get(names)
    if found is None:
        from custodes.monitors._registry import default_registry

        registry = default_registry()
        found = _worker_detectors[names] = [registry.get(n) for n in names]
    return found


def _line_end_at_or_after(fh: Any, offset: int) -> int:
    """The first record boundary at or after ``offset``: 0, or just after a line end."""
    if offset <= 0:
        return 0
    fh.seek(offset - 1)
    fh.readline()
    return int(fh.tell())


def scan_shard(
    url: str,
    fmt: Format,
    start: int,
    end: int,
    align_start: bool,
    align_end: bool,
    names: tuple[str, ...],
    min_score: float,
) -> ShardResult:
    """Run the detectors ``names`` over one shard of ``url`` (a Dask task; pure).

    The shard is ``[start, end)`` moved forward to record boundaries where ``align_start`` /
    ``align_end`` say so (a shard's end is the next one's start, so the shards of a file
    cover it exactly once, each record in the shard where it starts). A whole-file format
    ignores the range.

    A file that cannot be read comes back as a result with an ``error``, not an exception
    (Dask would retry a failing task on other workers, to no use).
    """
    import fsspec

    detectors = _detectors(names)
    flagged: list[tuple[int, str, tuple[Detection, ...]]] = []
    problems: list[tuple[int, str]] = []
    count = 0
    lines = 0
    try:
        opened = fsspec.open(url, "rb").open()
    except OSError as exc:
        return ShardResult(start, start, 0, 0, (), (), f"cannot read: {exc.strerror or exc}")
    with opened as fh:
        records: Iterator[Record]
        if fmt in _WHOLE:
            records = _inspect_eval(fh) if fmt == "inspect-eval" else _inspect_json(fh)
        else:
            first = _line_end_at_or_after(fh, start) if align_start else start
            last = _line_end_at_or_after(fh, end) if align_end else end
            start, end = first, max(first, last)
            try:
                fh.seek(start)
                data = fh.read(end - start)
            except OSError as exc:
                return ShardResult(
                    start, start, 0, 0, (), (), f"read failed: {exc.strerror or exc}"
                )
            if len(data) != end - start:
                return ShardResult(start, start, 0, 0, (), (), "read failed: the file shrank")
            lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
            buffer = io.BytesIO(data)
            records = _text(buffer, start, 0) if fmt == "text" else _jsonl(buffer, start, 0, fmt)
        for rec in records:
            if rec.problem is not None:
                problems.append((rec.line, rec.problem))
                continue
            count += 1
            found = tuple(x for d in detectors for x in d.detect(rec.text) if x.score >= min_score)
            if found:
                flagged.append((rec.line, rec.text, found))
    return ShardResult(start, end, lines, count, tuple(flagged), tuple(problems))


def sha256_prefix(url: str, length: int) -> str | None:
    """SHA-256 of the first ``length`` bytes of ``url`` (a Dask task): the checksum a local
    scan saves, so local and distributed scans resume each other's progress. ``None``: the
    file cannot be read."""
    import fsspec

    h = hashlib.sha256()
    try:
        with fsspec.open(url, "rb") as fh:
            remaining = length
            while remaining > 0:
                chunk = fh.read(min(remaining, _HASH_CHUNK))
                if not chunk:
                    break
                h.update(chunk)
                remaining -= len(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _url_files(url: str) -> Iterator[tuple[str, int]]:
    """The transcript-looking files at or under ``url`` (sorted), with their sizes.

    Raises:
        InputError: nothing exists at ``url``, or its scheme has no fsspec backend installed.
    """
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise InputError(
            f"cannot open {url}: {exc}",
            where=url,
            expected="a URL whose fsspec backend is installed (s3fs for s3://, gcsfs for gs://)",
        ) from exc
    if not fs.exists(path):
        raise InputError(f"{url} does not exist", where=url, expected="an existing file or folder")
    if fs.isdir(path):
        found = fs.find(path, detail=True)
        for name in sorted(found):
            if PurePosixPath(name).suffix.lower() in _SUFFIXES:
                yield fs.unstrip_protocol(name), int(found[name]["size"])
    else:
        yield url, int(fs.size(path))


def _url_format(url: str) -> Format:
    """The transcript format of a remote file, by its suffix (a ``.jsonl`` file's dialect is
    sniffed from its first line, like a local one's); anything else is read as plain text."""
    import fsspec

    suffix = PurePosixPath(url).suffix.lower()
    if suffix == ".eval":
        return "inspect-eval"
    if suffix == ".json":
        return "inspect-json"
    if suffix == ".jsonl":
        with fsspec.open(url, "rb") as fh:
            return jsonl_format(fh)
    return "text"


def scan_sources(sources: Sequence[str | Path]) -> list[ScanSource]:
    """Expand paths, folders and URLs into the files a scan reads, in the order a local scan
    reads them.

    Raises:
        InputError: a URL names nothing, or a file cannot be read.
    """
    out: list[ScanSource] = []
    for source in sources:
        if isinstance(source, str) and is_url(source):
            for url, size in _url_files(source):
                out.append(ScanSource(url, url, url, size, _url_format(url)))
            continue
        for path in expand_paths([Path(source)]):
            try:
                size, fmt = path.stat().st_size, detect_format(path)
            except OSError as exc:
                raise InputError(
                    f"cannot read {path}: {exc.strerror or exc}",
                    where=str(path),
                    expected="a readable file",
                ) from exc
            resolved = str(path.resolve())
            out.append(ScanSource(str(path), resolved, resolved, size, fmt))
    return out


@dataclass
class _Job:
    """One task in flight: a shard of ``source`` (``index``), or the checksum of the whole
    file that is saved with its progress once its last shard is recorded."""

    source: ScanSource
    kind: str  # "shard" | "checksum"
    future: Future[Any]
    first_line: int = 0


class DaskScan:
    """A :class:`TranscriptScanner`'s scan, with the detectors run on a Dask cluster.

    Args:
        scanner: records what is found (its queue, dedupe and saved progress); its
            ``detector_names`` are what the workers build from the default registry.
        client: a connected ``distributed.Client``.
        shard_bytes: the nominal size of a shard of a line-oriented file. Plain text is cut
            in multiples of the text block size, so shards cut the same blocks as one read.
        window: shards in flight at once (default: four per worker thread), which bounds the
            memory results take on the workers and here.

    Raises:
        InputError: the scanner has no detector registry names, runs the judged detector,
            or ``shard_bytes`` < 1.
    """

    def __init__(
        self,
        scanner: TranscriptScanner,
        client: Client,
        *,
        shard_bytes: int = SHARD_BYTES,
        window: int | None = None,
    ) -> None:
        if not scanner.detector_names:
            raise InputError(
                "a distributed scan needs the detectors' registry names",
                where="DaskScan",
                expected="a TranscriptScanner built with detector_names=[...]",
            )
        if "judged" in scanner.detector_names:
            # Its workers rebuild the registry's built-in detectors; the judge needs a gateway
            # client, a key and a share of the hourly cap in each, which a cluster does not get.
            raise InputError(
                "a Dask scan does not run the judged detector",
                where="DaskScan",
                expected="the rules, learned or combined detectors (run the judge with a "
                "local scan: custodes scan --detector judged --workers N)",
                actual="judged",
            )
        if shard_bytes < 1:
            raise InputError(
                "a shard must hold at least one byte",
                where="DaskScan",
                expected="shard_bytes >= 1",
                actual=str(shard_bytes),
            )
        self.scanner = scanner
        self.client = client
        self.shard_bytes = shard_bytes
        threads = sum(client.nthreads().values()) or 1
        self.window = window or 4 * threads
        self._checked: tuple[tuple[str, ...], dict[str, tuple[int, int] | None]] | None = None

    def _resume_points(
        self, sources: Sequence[ScanSource], restart: bool
    ) -> dict[str, tuple[int, int] | None]:
        """Per file: ``(offset, line)`` to start from, or ``None`` if a completed scan already
        read it unchanged; the saved checksums are checked on the workers, in parallel (once:
        :meth:`pending_bytes` keeps what it found for the :meth:`scan` that follows)."""
        keys = tuple(s.key for s in sources)
        if not restart and self._checked is not None and self._checked[0] == keys:
            found = self._checked[1]
            self._checked = None
            return found
        points: dict[str, tuple[int, int] | None] = {}
        checks: list[tuple[ScanSource, tuple[int, int, str, bool], Future[Any]]] = []
        for src in sources:
            if restart:
                self.scanner.forget(src.key)
                points[src.key] = (0, 0)
                continue
            state = self.scanner._state(src.key)
            points[src.key] = (0, 0)
            if state is not None and state[0] <= src.size:
                checks.append(
                    (src, state, self.client.submit(sha256_prefix, src.url, state[0], pure=False))
                )
        for src, (offset, line, checksum, complete), future in checks:
            if future.result() != checksum:
                continue  # rewritten: read it again (the dedupe keeps old detections single)
            if complete and (src.fmt in _WHOLE or offset == src.size):
                points[src.key] = None
            elif src.fmt not in _WHOLE:
                points[src.key] = (offset, line)  # only appended: go on after what was read
        return points

    def pending_bytes(self, sources: Sequence[ScanSource], restart: bool = False) -> int:
        """Bytes left to scan (for a progress bar's total); checks saved progress as
        :meth:`scan` does (but forgets nothing)."""
        if restart:
            return sum(s.size for s in sources)
        points = self._resume_points(sources, False)
        self._checked = (tuple(s.key for s in sources), points)
        total = 0
        for s in sources:
            p = points[s.key]
            if p is not None:
                total += s.size - p[0]
        return total

    def _shard_step(self, fmt: Format) -> int:
        """The distance between shard cuts: ``shard_bytes``, rounded up to whole text blocks
        for plain text, so the shards cut the same blocks one sequential read would."""
        if fmt != "text":
            return self.shard_bytes
        blocks = -(-self.shard_bytes // TEXT_BLOCK_BYTES)
        return blocks * TEXT_BLOCK_BYTES

    def _jobs(
        self, sources: Sequence[ScanSource], points: dict[str, tuple[int, int] | None]
    ) -> Generator[_Job | ScanSource, None, None]:
        """Each file's shards then its checksum, as tasks submitted in file order (a skipped
        file comes out as its source, to be counted)."""
        names = tuple(self.scanner.detector_names)
        submit = self.client.submit
        for src in sources:
            point = points[src.key]
            if point is None:
                yield src
                continue
            offset, line = point
            if src.fmt in _WHOLE:
                ranges = [(0, src.size, False, False)]
            else:
                step = self._shard_step(src.fmt)
                cuts = list(range((offset // step + 1) * step, src.size, step))
                starts = [offset, *cuts]
                ends = [*cuts, src.size]
                ranges = [
                    (a, b, i > 0, i < len(cuts))
                    for i, (a, b) in enumerate(zip(starts, ends, strict=True))
                ]
            for i, (a, b, align_a, align_b) in enumerate(ranges):
                # pure=False: Dask would otherwise name the task by its arguments and hand
                # back the result of an identical task the cluster still holds, though the
                # file may have changed since it ran.
                future = submit(
                    scan_shard,
                    src.url,
                    src.fmt,
                    a,
                    b,
                    align_a,
                    align_b,
                    names,
                    self.scanner.min_score,
                    pure=False,
                )
                yield _Job(src, "shard", future, first_line=line if i == 0 else -1)
            checksum = submit(sha256_prefix, src.url, src.size, pure=False)
            yield _Job(src, "checksum", checksum)

    def scan(
        self,
        sources: Sequence[ScanSource],
        *,
        on_bytes: Callable[[int], None] | None = None,
        on_problem: Callable[[ScanProblem], None] | None = None,
        restart: bool = False,
    ) -> ScanSummary:
        """Scan ``sources`` (from :func:`scan_sources`) on the cluster, resuming each file where
        it stopped; returns what a local scan of them returns.

        Raises:
            LogWriteError: a detection could not be logged (the scan stops; files finished
                before it are saved as done, so rerunning resumes after them).
            OSError: a worker could not read a file (after Dask's retries).
        """
        scanner = self.scanner
        summary = ScanSummary()
        points = self._resume_points(sources, restart)
        jobs = self._jobs(sources, points)
        inflight: deque[_Job] = deque()
        pending: list[TextDetections] = []

        def flush() -> None:
            fresh = scanner._fresh(pending) if pending else []
            pending.clear()
            if fresh:
                scanner.queue.record_many(
                    fresh, actor=scanner.actor, actor_organisation=scanner.actor_organisation
                )
                summary.detections += sum(len(p.detections) for p in fresh)

        def fill() -> None:
            # At most ``window`` tasks in flight: the results wait in workers' memory until
            # they are recorded here, in file order.
            while len(inflight) < self.window:
                job = next(jobs, None)
                if job is None:
                    return
                if isinstance(job, ScanSource):
                    summary.skipped_files += 1
                    continue
                inflight.append(job)

        def problem(where: str, message: str) -> None:
            p = ScanProblem(where, message)
            summary.problems.append(p)
            if on_problem is not None:
                on_problem(p)

        line = 0
        failed: set[str] = set()  # files a worker could not read: not saved, left for a rerun
        fill()
        try:
            while inflight:
                job = inflight.popleft()
                result = job.future.result()
                fill()
                src = job.source
                if job.kind == "checksum":
                    flush()
                    if src.key in failed or result is None:
                        continue
                    if src.fmt in _WHOLE:
                        summary.bytes += src.size
                        if on_bytes is not None:
                            on_bytes(src.size)
                    scanner._save(src.key, src.size, line, str(result), True)
                    continue
                assert isinstance(result, ShardResult)
                if job.first_line >= 0:
                    line = job.first_line
                    summary.files += 1
                if src.key in failed:
                    continue
                if result.error is not None:
                    failed.add(src.key)
                    problem(f"{src.name}:{line}", result.error)
                    continue
                self._take(src, result, line, summary, pending, problem)
                if len(pending) >= _BATCH:
                    flush()
                line += result.lines
                if src.fmt not in _WHOLE:
                    summary.bytes += result.end - result.start
                    if on_bytes is not None:
                        on_bytes(result.end - result.start)
            flush()
        finally:
            for job in inflight:
                job.future.cancel()
            jobs.close()
        return summary

    def _take(
        self,
        src: ScanSource,
        result: ShardResult,
        base_line: int,
        summary: ScanSummary,
        pending: list[TextDetections],
        problem: Callable[[str, str], None],
    ) -> None:
        """Queue a shard's fresh detections and report its problems, lines made absolute."""
        whole = src.fmt in _WHOLE
        problems = iter(result.problems)
        flagged = iter(result.flagged)
        # Problems and detections are reported in line order, as the local scan meets them.
        events: list[tuple[int, int, Any]] = [(ln, 0, msg) for ln, msg in problems]
        events += [(ln, 1, (text, dets)) for ln, text, dets in flagged]
        events.sort(key=lambda e: (e[0], e[1]))
        summary.records += result.records
        for ln, kind, payload in events:
            where = f"{src.name}:{ln if whole else base_line + ln}"
            if kind == 0:
                problem(where, str(payload))
                continue
            text, dets = payload
            pending.append(TextDetections(dets, text, src.name, where))  # deduped at flush
