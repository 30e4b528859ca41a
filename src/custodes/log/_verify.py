"""Verify a stored log from scratch: entries, tiles, state and every checkpoint ever signed.

:func:`verify_store` reads the database directly and trusts nothing in it: it rehashes every
entry, rebuilds the RFC 9162 tree and every C2SP tile, checks every stored checkpoint's signature
and root against the rebuilt tree, and checks checkpoints a client kept from earlier (which is
how truncation, restored backups and rewritten histories are caught: a database edited
consistently everywhere still cannot produce the roots those checkpoints signed).

It reads entries in index order in chunks and keeps only the tree's right edge and the roots of
full level-0 tiles in memory (n/256 hashes), so memory stays small for large logs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Literal

from sqlalchemy import Connection, Engine, func, select

from custodes.errors import InputError, VerificationError
from custodes.log._chain import CheckpointLink
from custodes.log._checkpoint import SignedCheckpoint
from custodes.log._frontier import Frontier
from custodes.log._merkle import EMPTY_ROOT, HASH_SIZE, hash_text, node_hash, tree_hash
from custodes.log._note import NoteVerifier
from custodes.log._tables import log_alarms, log_checkpoints, log_entries, log_state, log_tiles
from custodes.log._tiles import TILE_HEIGHT, TILE_WIDTH, compute_interior, tile_path

__all__ = ["Problem", "VerifyReport", "verify_store"]

_CHUNK = TILE_WIDTH * 32  # entries read per query (aligned to tiles)

ProblemKind = Literal["entry", "tile", "checkpoint", "state", "trusted", "alarm"]
_ORDER = {"entry": 0, "tile": 1, "checkpoint": 2, "trusted": 3, "state": 4, "alarm": 5}


@dataclass(frozen=True)
class Problem:
    """One thing found wrong, located as precisely as the evidence allows.

    Attributes:
        kind: what is wrong: an entry, a tile, a stored checkpoint, the state row, a
            checkpoint the caller trusted, or an unresolved alarm.
        message: what was expected and what was found, for a human.
        index: the entry index, when one entry is to blame.
        checkpoint_id: the row id of the stored checkpoint, when one is to blame.
        size: the tree size the problem is about.
        tile: the C2SP tile path (``tile/0/x001/234``), when a tile is to blame.
    """

    kind: ProblemKind
    message: str
    index: int | None = None
    checkpoint_id: int | None = None
    size: int | None = None
    tile: str | None = None

    def __str__(self) -> str:
        """The message: what ``custodes log verify`` prints for it."""
        return self.message


@dataclass
class VerifyReport:
    """What :func:`verify_store` checked and found.

    Attributes:
        size: the size of the tree the stored entries rebuild (up to the first missing one).
        root: that tree's RFC 9162 root hash.
        entries: entries rehashed.
        checkpoints: stored checkpoints checked.
        tiles: tiles rebuilt and compared.
        trusted: checkpoints the caller kept from earlier, checked against the tree.
        problems: everything found wrong, most specific first (entries, then tiles, then
            checkpoints): an altered entry explains the tiles and checkpoints it breaks.
    """

    size: int = 0
    root: bytes = b""
    entries: int = 0
    checkpoints: int = 0
    tiles: int = 0
    trusted: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing was found wrong."""
        return not self.problems


# Called with (entries done, entries total) as the scan advances (the CLI's progress bar).
Progress = Callable[[int, int], None]


def verify_store(
    engine: Engine,
    log_key: NoteVerifier,
    *,
    trusted: Sequence[SignedCheckpoint] = (),
    progress: Progress | None = None,
    check_entries: Callable[[int, bytes], str | None] | None = None,
) -> VerifyReport:
    """Recompute the whole log in ``engine`` and check everything stored against it.

    Args:
        engine: the log's database.
        log_key: the log's verifier key; every stored checkpoint must carry its signature.
        trusted: checkpoints obtained earlier (already signature-checked) that the log must
            still contain.
        progress: called with (entries done, entries total) as the scan advances.
        check_entries: optional per-entry check returning a problem description or None.

    Returns:
        A report; ``report.ok`` is False when any problem was found. Problems are never raised.
    """
    report = VerifyReport()
    # One connection, one snapshot's worth of reads: the scan must not mix two states of a log
    # that is being appended to (a running server may share the database).
    with engine.connect() as conn:
        state = conn.execute(select(log_state).where(log_state.c.id == 1)).first()
        # The larger of the stored count and the state's size: rows deleted from either end
        # must still be reported as missing, not silently shrink the log.
        stored_count = (
            conn.execute(
                select(func.count()).select_from(log_entries).where(log_entries.c.idx >= 0)
            ).scalar()
            or 0
        )
        for idx in conn.execute(
            select(log_entries.c.idx).where(log_entries.c.idx < 0).order_by(log_entries.c.idx)
        ).scalars():
            report.problems.append(
                Problem(
                    "entry",
                    f"a stored entry row has the negative index {idx}: indices start at 0 "
                    "(the row was added by hand)",
                    index=int(idx),
                )
            )
        checkpoints = _load_checkpoints(conn, log_key, report)
        total = max(stored_count, state.size if state is not None else 0)
        # Roots are needed at every checkpoint size (stored and trusted).
        wanted: dict[int, list[tuple[str, int | None, bytes]]] = defaultdict(list)
        for cp_id, size, root in checkpoints:
            wanted[size].append(("checkpoint", cp_id, root))
        for t in trusted:
            wanted[t.checkpoint.size].append(("trusted", None, t.checkpoint.root_hash))
        report.trusted = len(trusted)
        frontier, tile_roots = _scan_entries(conn, report, total, wanted, progress, check_entries)
        report.size = frontier.size
        report.root = frontier.root()
        if 0 in wanted:
            _check_root(report, 0, Frontier.empty().root(), wanted[0])
        for size, claims in sorted(wanted.items()):
            if size > frontier.size:
                for kind, claim_id, _ in claims:
                    who = (
                        f"checkpoint #{claim_id}"
                        if kind == "checkpoint"
                        else "a trusted checkpoint"
                    )
                    report.problems.append(
                        Problem(
                            "checkpoint" if kind == "checkpoint" else "trusted",
                            f"{who} signed size {size}, but the log holds only {frontier.size} "
                            "entries: entries were removed (truncation or a restored backup)",
                            checkpoint_id=claim_id,
                            size=size,
                        )
                    )
        _check_upper_tiles(conn, report, frontier.size, tile_roots)
        _check_state(report, state, frontier)
        # A rolled-back store can be consistent with itself: what the log learnt from its
        # witnesses (a stored alarm) still says it holds less than it once did.
        for alarm in conn.execute(
            select(log_alarms.c.id, log_alarms.c.kind, log_alarms.c.detail)
            .where(log_alarms.c.resolved_at.is_(None))
            .order_by(log_alarms.c.id)
        ):
            report.problems.append(
                Problem("alarm", f"unresolved {alarm.kind} alarm #{alarm.id}: {alarm.detail}")
            )
    # Most specific first: an altered entry explains the tiles and checkpoints it breaks.
    report.problems.sort(key=lambda p: _ORDER[p.kind])
    return report


def _load_checkpoints(
    conn: Connection, log_key: NoteVerifier, report: VerifyReport
) -> list[tuple[int, int, bytes]]:
    """Every stored checkpoint whose note verifies, as (row id, size, signed root).

    Checks each note's signature, that the stored size and root columns agree with the note,
    that sizes never go backwards, and the signed chain of links between rows (:class:`_Chain`).
    Rows whose note does not verify are reported and left out.
    """
    rows = conn.execute(
        select(
            log_checkpoints.c.id,
            log_checkpoints.c.size,
            log_checkpoints.c.root_hash,
            log_checkpoints.c.note,
            log_checkpoints.c.seq,
            log_checkpoints.c.link,
        ).order_by(log_checkpoints.c.id)
    ).all()
    out: list[tuple[int, int, bytes]] = []
    last_size = -1
    chain = _Chain(report, log_key)
    for cp_id, size, root, note, seq, link in rows:
        report.checkpoints += 1
        root = _as_bytes(root)
        try:
            signed = SignedCheckpoint.from_text(note, log_key)
        except (InputError, VerificationError) as exc:
            report.problems.append(
                Problem(
                    "checkpoint",
                    f"checkpoint #{cp_id} (size {size}): its note does not verify "
                    f"with the log's key: {exc.message}",
                    checkpoint_id=cp_id,
                    size=size,
                )
            )
            chain.broken(int(cp_id), seq)
            continue
        cp = signed.checkpoint
        chain.row(int(cp_id), seq, link, cp.size, cp.root_hash)
        if cp.size != size or cp.root_hash != root:
            report.problems.append(
                Problem(
                    "checkpoint",
                    f"checkpoint #{cp_id}: stored size/root ({size}, "
                    f"{hash_text(root)}) differ from its signed note ({cp.size}, "
                    f"{hash_text(cp.root_hash)})",
                    checkpoint_id=cp_id,
                    size=cp.size,
                )
            )
        if cp.size < last_size:
            report.problems.append(
                Problem(
                    "checkpoint",
                    f"checkpoint #{cp_id} has size {cp.size}, smaller than an earlier "
                    f"checkpoint's {last_size}: the log went backwards",
                    checkpoint_id=cp_id,
                    size=cp.size,
                )
            )
        last_size = max(last_size, cp.size)
        # The signed note is what clients saw, so its root is what the tree must match.
        out.append((int(cp_id), cp.size, cp.root_hash))
    return out


class _Chain:
    """Walks checkpoint rows in id order: sequence numbers without gaps, each link signed and
    naming the row before it (custodes.log._chain).

    A deleted checkpoint row leaves a gap in the sequence numbers; a reordered or re-inserted
    one, a number out of order; an altered one, a link that no longer names it. Rows from
    before links existed have none, but once one row is linked every later row must be.
    """

    def __init__(self, report: VerifyReport, log_key: NoteVerifier) -> None:
        self.report, self.key = report, log_key
        self.expected_seq = 0
        self.prev: tuple[int, bytes] | None = None
        self.prev_id: int | None = None
        self.linked = False  # a linked row was seen: every later row must be linked too

    def _problem(self, cp_id: int, size: int | None, message: str) -> None:
        """Report a checkpoint problem of row ``cp_id``."""
        self.report.problems.append(Problem("checkpoint", message, checkpoint_id=cp_id, size=size))

    def broken(self, cp_id: int, seq: object) -> None:
        """A row whose note does not verify: keep counting past it."""
        self.expected_seq = (seq if isinstance(seq, int) else self.expected_seq) + 1
        self.prev, self.prev_id = None, cp_id

    def row(self, cp_id: int, seq: object, link: object, size: int, root: bytes) -> None:
        """Check the next row (its note verified): its sequence number, then its link."""
        after = f"checkpoint #{self.prev_id}" if self.prev_id is not None else "the start"
        if not isinstance(seq, int):
            self._problem(cp_id, size, f"checkpoint #{cp_id} has no sequence number {seq!r}")
        elif seq > self.expected_seq:
            missing = seq - self.expected_seq
            self._problem(
                cp_id,
                size,
                f"checkpoint #{cp_id} has sequence number {seq}, but {self.expected_seq} "
                f"was expected after {after}: {missing} checkpoint row(s) were deleted",
            )
        elif seq < self.expected_seq:
            self._problem(
                cp_id,
                size,
                f"checkpoint #{cp_id} has sequence number {seq}, but {self.expected_seq} "
                f"was expected after {after}: checkpoint rows were reordered or re-inserted",
            )
        if link is None:
            if self.linked:
                self._problem(
                    cp_id,
                    size,
                    f"checkpoint #{cp_id} has no chain link, though earlier ones have: the row "
                    "was inserted or altered by hand",
                )
        else:
            self.linked = True
            self._link(cp_id, seq, str(link), size, root)
        self.expected_seq = (seq if isinstance(seq, int) else self.expected_seq) + 1
        self.prev, self.prev_id = (size, root), cp_id

    def _link(self, cp_id: int, seq: object, text: str, size: int, root: bytes) -> None:
        """Check a row's signed link: for this row, and naming the row before it."""
        try:
            link = CheckpointLink.open(text, self.key)
        except (InputError, VerificationError) as exc:
            self._problem(
                cp_id, size, f"checkpoint #{cp_id}: its chain link does not verify: {exc.message}"
            )
            return
        if (link.seq, link.size, link.root) != (seq, size, root):
            self._problem(
                cp_id,
                size,
                f"checkpoint #{cp_id}: its chain link is for checkpoint {link.seq} of size "
                f"{link.size}, not this row (sequence number {seq}, size {size}): the row was "
                "altered",
            )
        # Only when the sequence number was right: a gap was reported above, and the link of
        # the row after a gap names a row that is gone, which says nothing new.
        elif link.prev != self.prev and isinstance(seq, int) and seq == self.expected_seq:
            self._problem(
                cp_id,
                size,
                f"checkpoint #{cp_id} links to a previous checkpoint {_point(link.prev)}, but "
                f"the row before it is {_point(self.prev)}: checkpoint rows were deleted, "
                "altered or reordered",
            )


def _point(point: tuple[int, bytes] | None) -> str:
    """A checkpoint's (size, root) for a message."""
    return "(none)" if point is None else f"of size {point[0]} (root {hash_text(point[1])})"


def _scan_entries(
    conn: Connection,
    report: VerifyReport,
    total: int,
    wanted: dict[int, list[tuple[str, int | None, bytes]]],
    progress: Progress | None,
    check_entries: Callable[[int, bytes], str | None] | None,
) -> tuple[Frontier, list[bytes]]:
    """Rehash every entry in index order, checking level-0 tiles and roots at ``wanted`` sizes.

    Returns:
        The frontier of the tree the entries rebuild (up to the first missing entry) and the
        roots of its full level-0 tiles (the level-1 hashes, for :func:`_check_upper_tiles`).
    """
    # The tree is rebuilt a tile at a time: each tile's root extends a frontier over tiles, and a
    # root at any size is that frontier plus the perfect subtrees of the partial tile after it.
    tiles = Frontier.empty()  # over roots of full level-0 tiles (the level-1 hashes)
    tile_roots: list[bytes] = []
    partial: list[bytes] = []
    expected = 0
    stop = False
    boundaries = sorted(s for s in wanted if s > 0)
    b = 0
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    query = (
        f"SELECT idx, leaf_hash, data FROM {log_entries.name} "  # noqa: S608 - constants
        f"WHERE idx >= {mark} ORDER BY idx LIMIT {_CHUNK}"
    )
    cursor = conn.connection.cursor()  # the driver's own cursor: a million rows, no row objects
    try:
        while not stop:
            cursor.execute(query, (expected,))
            rows = cursor.fetchall()
            if not rows:
                break
            hashes: list[bytes] = []
            for idx, stored_hash, data in rows:
                # A hole ends the scan: every tree size beyond it depends on the missing entry,
                # so nothing after it can be verified (and reporting each would bury the cause).
                if idx != expected:
                    report.problems.append(
                        Problem(
                            "entry",
                            f"entry {expected} is missing (the next stored entry is {idx}); "
                            "every later tree size is unverifiable",
                            index=expected,
                        )
                    )
                    stop = True
                    break
                if type(data) is not bytes:
                    data = _as_bytes(data)
                h = sha256(b"\x00" + data).digest()  # RFC 9162 §2.1.1 leaf hash
                if h != stored_hash:
                    report.problems.append(
                        Problem(
                            "entry",
                            f"entry {idx}: its data does not hash to its stored leaf hash "
                            "(the entry or its leaf hash was altered)",
                            index=idx,
                        )
                    )
                if check_entries is not None and (why := check_entries(idx, data)):
                    report.problems.append(Problem("entry", f"entry {idx}: {why}", index=idx))
                hashes.append(h)
                expected += 1
            start = expected - len(hashes)
            # The chunk is tile-aligned, so its level-0 tiles are read in one query.
            stored = _stored_level0(conn, start, len(hashes))
            for offset in range(0, len(hashes), TILE_WIDTH):
                tile_start = start + offset
                partial = hashes[offset : offset + TILE_WIDTH]
                # Roots at checkpoint sizes inside this tile: the full tiles' frontier plus the
                # perfect subtrees of the tile's first entries.
                while b < len(boundaries) and boundaries[b] <= tile_start + len(partial):
                    root = _fold([*tiles.hashes, *_perfect(partial[: boundaries[b] - tile_start])])
                    _check_root(report, boundaries[b], root, wanted[boundaries[b]])
                    b += 1
                index = tile_start // TILE_WIDTH
                _compare_tile(report, 0, index, b"".join(partial), stored.get(index), tile_roots)
                if len(partial) == TILE_WIDTH:
                    tiles = tiles.extend([tile_roots[-1]])
                    partial = []
            report.entries = expected
            if progress is not None:
                progress(expected, total)
    finally:
        cursor.close()
    if not stop and expected < total:
        report.problems.append(
            Problem(
                "entry",
                f"entry {expected} is missing: the log state says {total} entries",
                index=expected,
            )
        )
    edge = (*tiles.hashes, *_perfect(partial))
    return Frontier(
        expected if not stop else tiles.size * TILE_WIDTH + len(partial), edge
    ), tile_roots


def _perfect(hashes: list[bytes]) -> list[bytes]:
    """Roots of the perfect subtrees that make up ``hashes`` (largest first; RFC 9162 §2.1.1)."""
    out, pos = [], 0
    for bit in reversed(range(len(hashes).bit_length())):
        if len(hashes) & (1 << bit):
            out.append(tree_hash(hashes[pos : pos + (1 << bit)]))
            pos += 1 << bit
    return out


def _fold(edge: Sequence[bytes]) -> bytes:
    """The root of a tree from its frontier (its perfect subtrees, largest first)."""
    if not edge:
        return EMPTY_ROOT
    root = edge[-1]
    for h in reversed(edge[:-1]):
        root = node_hash(h, root)
    return root


def _stored_level0(conn: Connection, start: int, count: int) -> dict[int, tuple[bytes, bytes]]:
    """The stored level-0 tiles covering entries ``start`` to ``start + count``, by index."""
    if not count:
        return {}
    first, last = start // TILE_WIDTH, (start + count - 1) // TILE_WIDTH
    return {
        int(i): (_as_bytes(h), _as_bytes(n))
        for i, h, n in conn.execute(
            select(log_tiles.c.idx, log_tiles.c.hashes, log_tiles.c.interior).where(
                log_tiles.c.level == 0, log_tiles.c.idx >= first, log_tiles.c.idx <= last
            )
        ).all()
    }


def _as_bytes(value: object) -> bytes:
    """A stored BLOB as bytes, whatever the driver (or a tamperer) returned."""
    # A tampered row may hold another SQL type (SQLite is dynamically typed); it still must not
    # crash the verifier, and its hash will not match.
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


def _check_root(
    report: VerifyReport, size: int, root: bytes, claims: list[tuple[str, int | None, bytes]]
) -> None:
    """Report every claim (a stored or trusted checkpoint) of a root at ``size`` that differs."""
    for kind, cp_id, claimed in claims:
        if claimed == root:
            continue
        if kind == "checkpoint":
            report.problems.append(
                Problem(
                    "checkpoint",
                    f"checkpoint #{cp_id} signed root {hash_text(claimed)} for size {size}, "
                    f"but the stored entries give {hash_text(root)}: an entry below index "
                    f"{size} was changed, or the checkpoint was forged",
                    checkpoint_id=cp_id,
                    size=size,
                )
            )
        else:
            report.problems.append(
                Problem(
                    "trusted",
                    f"a trusted checkpoint signed root {hash_text(claimed)} for size {size}, "
                    f"but the stored entries give {hash_text(root)}: the history was rewritten",
                    size=size,
                )
            )


def _compare_tile(
    report: VerifyReport,
    level: int,
    index: int,
    hashes: bytes,
    stored: tuple[bytes, bytes] | None,
    parents: list[bytes],
) -> None:
    """Compare a rebuilt tile with the stored one; append its root (if full) to ``parents``."""
    width = len(hashes) // HASH_SIZE
    interior, root = compute_interior(hashes)
    if root is not None:
        parents.append(root)
    report.tiles += 1
    if stored is not None and stored[0] == hashes and stored[1] == interior:
        return
    path = tile_path(level, index, width)
    if stored is None:
        report.problems.append(Problem("tile", f"tile {path} is missing", tile=path))
        return
    if stored[0] != hashes:
        # Name the first hash that differs: at level 0 that is an entry an operator can look at.
        where = next(
            (
                i
                for i in range(width)
                if stored[0][i * HASH_SIZE : (i + 1) * HASH_SIZE]
                != hashes[i * HASH_SIZE : (i + 1) * HASH_SIZE]
            ),
            width,
        )
        what = (
            f"hash {where} (entry {(index << (TILE_HEIGHT * level)) * TILE_WIDTH + where})"
            if level == 0
            else f"hash {where}"
        )
        report.problems.append(
            Problem(
                "tile",
                f"tile {path}: stored hashes differ from the entries at {what}"
                if len(stored[0]) == len(hashes)
                else f"tile {path}: stored width {len(stored[0]) // HASH_SIZE}, expected {width}",
                tile=path,
                index=(index * TILE_WIDTH + where) if level == 0 else None,
            )
        )
    elif stored[1] != interior:
        report.problems.append(
            Problem("tile", f"tile {path}: stored interior nodes differ from its hashes", tile=path)
        )


def _check_upper_tiles(
    conn: Connection, report: VerifyReport, size: int, level1: list[bytes]
) -> None:
    """Rebuild and compare the tiles of levels 1 and up; report stored tiles that should not be.

    A stored tile beyond the tree is not harmless: it could answer a proof for a size the log
    never reached.
    """
    level, hashes = 1, level1
    while True:
        count = size >> (TILE_HEIGHT * level)
        stored = {
            int(i): (_as_bytes(h), _as_bytes(n))
            for i, h, n in conn.execute(
                select(log_tiles.c.idx, log_tiles.c.hashes, log_tiles.c.interior).where(
                    log_tiles.c.level == level
                )
            ).all()
        }
        parents: list[bytes] = []
        for n in range(0, count, TILE_WIDTH):
            chunk = b"".join(hashes[n : n + TILE_WIDTH])
            _compare_tile(
                report, level, n // TILE_WIDTH, chunk, stored.pop(n // TILE_WIDTH, None), parents
            )
        for n in sorted(stored):
            path = tile_path(level, n, TILE_WIDTH)
            report.problems.append(
                Problem(
                    "tile", f"tile {path} should not exist in a log of {size} entries", tile=path
                )
            )
        if count == 0 and not stored:
            break
        level, hashes = level + 1, parents
    # Level-0 tiles past the end.
    extra = (
        conn.execute(
            select(log_tiles.c.idx).where(
                log_tiles.c.level == 0, log_tiles.c.idx >= (size + TILE_WIDTH - 1) // TILE_WIDTH
            )
        )
        .scalars()
        .all()
    )
    for n in extra:
        path = tile_path(0, int(n))
        report.problems.append(
            Problem("tile", f"tile {path} should not exist in a log of {size} entries", tile=path)
        )


def _check_state(report: VerifyReport, state: object, frontier: Frontier) -> None:
    """The state row (size, root, right edge) must be the rebuilt tree's: appends extend it."""
    if state is None:
        if frontier.size:
            report.problems.append(Problem("state", "the log state row is missing"))
        return
    size = state.size  # type: ignore[attr-defined]
    root, edge = _as_bytes(state.root_hash), _as_bytes(state.frontier)  # type: ignore[attr-defined]
    if size != frontier.size:
        report.problems.append(
            Problem(
                "state",
                f"the log state says {size} entries, the entries table holds {frontier.size}",
                size=size,
            )
        )
    elif root != frontier.root() or edge != frontier.to_bytes():
        report.problems.append(
            Problem(
                "state", "the log state's root or right edge does not match the entries", size=size
            )
        )
