"""``custodes witness watch``: an overseer's monitor of a log.

Each poll fetches the log's checkpoint (or its cosigned checkpoint, when a witness policy is
given, and checks the quorum), verifies the log's signature, then reads every entry added since
the last poll through the C2SP tlog-tiles entry bundles. Each entry must parse as a registered
custodes entry type, and the watcher recomputes the Merkle root itself from the state it keeps
(the right edge of the tree, O(log n) hashes), so a checkpoint that does not extend what it saw
before (a rollback, a fork, a rewritten entry) is caught without trusting any proof the log
sends. When the entries do not give the checkpoint's root, the log's consistency proof tells
what is wrong: if it verifies, the two checkpoints are consistent and the entries served are
not the signed tree's (stored data changed: ``entry-mismatch``); if it proves another root at
the verified size, the log forked (``equivocation``, with an evidence file); otherwise nothing
is proven (``inconsistent``, no evidence). Problems are :class:`Alarm` s.

The tile path encoding and the tree arithmetic are written here again on purpose: a monitor
should not share code with the log it checks.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from custodes.clock import Clock, SystemClock
from custodes.errors import Error, InputError, VerificationError
from custodes.log import (
    EMPTY_ROOT,
    Entry,
    EntryType,
    Frontier,
    NoteVerifier,
    SignedCheckpoint,
    hash_text,
    implied_old_root,
    leaf_hash,
    verify_consistency,
)
from custodes.witness._evidence import Evidence, EvidenceKind
from custodes.witness._policy import WitnessPolicy

__all__ = ["Alarm", "LogWatcher", "WatchState"]

_log = logging.getLogger(__name__)
_TILE_WIDTH = 256  # C2SP tlog-tiles: entry bundles hold up to 256 entries
AlarmKind = Literal[
    "unreachable",
    "bad-checkpoint",
    "quorum",
    "rollback",
    "equivocation",
    "inconsistent",
    "entry-mismatch",
    "malformed-entry",
    "bad-bundle",
]


@dataclass(frozen=True)
class Alarm:
    """A problem the watcher found."""

    kind: AlarmKind
    message: str
    index: int | None = None


@dataclass
class WatchState:
    """What the watcher holds: the last verified checkpoint and the right edge of its tree."""

    origin: str
    size: int = 0
    root_hash: bytes = EMPTY_ROOT
    edge: list[bytes] = field(default_factory=list)  # complete subtree roots, largest first
    note: str = ""

    @classmethod
    def load(cls, path: Path, origin: str) -> WatchState:
        """Read the state file, or start empty.

        Raises:
            InputError: the file is not a watch state for ``origin``.
        """
        if not path.exists():
            return cls(origin=origin)
        try:
            doc = json.loads(path.read_text())
            state = cls(
                origin=doc["origin"],
                size=int(doc["size"]),
                root_hash=base64.b64decode(doc["root_hash"]),
                edge=[base64.b64decode(h) for h in doc["edge"]],
                note=doc["note"],
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"watch state {path} is unreadable: {exc}") from exc
        if state.origin != origin:
            raise InputError(f"watch state {path} is for log {state.origin!r}, not {origin!r}")
        # The right edge of a tree of size n has one complete subtree per set bit of n: any
        # other count means the file was edited or torn, and every later root would be wrong.
        if len(state.edge) != state.size.bit_count():
            raise InputError(f"watch state {path} is corrupt: edge does not match size")
        return state

    def save(self, path: Path) -> None:
        """Write the state to ``path`` durably (fsync, then an atomic rename).

        Raises:
            OSError: the file cannot be written (the old state stays).
        """
        doc = {
            "origin": self.origin,
            "size": self.size,
            "root_hash": base64.b64encode(self.root_hash).decode(),
            "edge": [base64.b64encode(h).decode() for h in self.edge],
            "note": self.note,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: a crash leaves the old state or the new, never half

    def extended(self, leaves: list[bytes]) -> Frontier:
        """The tree frontier after appending ``leaves`` (leaf hashes) to the watched size."""
        return Frontier(self.size, tuple(self.edge)).extend(leaves)


def entries_path(index: int, width: int) -> str:
    """C2SP tlog-tiles entry bundle path, e.g. ``tile/entries/x001/x234/067.p/8``."""
    parts = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        parts.append(f"x{index % 1000:03d}")
        index //= 1000
    path = "tile/entries/" + "/".join(reversed(parts))
    return path if width == _TILE_WIDTH else f"{path}.p/{width}"


def split_bundle(data: bytes) -> Iterator[bytes]:
    """The entries of a bundle: each a 2-byte big-endian length and its bytes.

    Raises:
        InputError: the bundle is truncated.
    """
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise InputError("entry bundle ends inside a length prefix")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if pos + 2 + length > len(data):
            raise InputError("entry bundle ends inside an entry")
        yield data[pos + 2 : pos + 2 + length]
        pos += 2 + length


class LogWatcher:
    """Polls one log and checks it from its own stored state.

    Args:
        url: the log server's base URL.
        log_key: the log's verifier key (its name is the origin).
        state_file: where the watcher keeps what it verified.
        policy: if given, the cosigned checkpoint is fetched and must meet this quorum.
        evidence_dir: where evidence files are written (default: beside the state file).
        client: the HTTP client (default: one with a 30 s timeout).
        clock: the time source of evidence files.
        entry_types: the entry types an entry may have, by name (every one custodes defines:
            :func:`custodes.wiring.all_entry_types`); an entry of another type raises a
            ``malformed-entry`` alarm.
    """

    def __init__(
        self,
        url: str,
        log_key: NoteVerifier,
        state_file: Path,
        *,
        policy: WitnessPolicy | None = None,
        evidence_dir: Path | None = None,
        client: httpx.Client | None = None,
        clock: Clock | None = None,
        entry_types: Mapping[str, EntryType],
    ) -> None:
        self.url = url.rstrip("/")
        self.log_key = log_key
        self.state_file = state_file
        self.policy = policy
        self.evidence_dir = evidence_dir or state_file.parent / "evidence"
        self.client = client or httpx.Client(timeout=30)
        self.clock = clock or SystemClock()
        self.entry_types = entry_types

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def poll(self) -> list[Alarm]:
        """Check the log once; the state advances only when no alarm was raised."""
        state = WatchState.load(self.state_file, self.log_key.name)
        try:
            signed = self._fetch_checkpoint()
        except httpx.HTTPError as exc:
            return [Alarm("unreachable", f"cannot fetch the checkpoint: {exc}")]
        except Error as exc:
            return [Alarm("bad-checkpoint", exc.message)]
        alarms: list[Alarm] = []
        # A missing quorum is an alarm, not a stop: the entries are still checked, so one
        # poll reports both a quorum and a fork if both are there.
        if self.policy is not None:
            try:
                self.policy.check(signed)
            except VerificationError as exc:
                alarms.append(Alarm("quorum", exc.message))
        cp = signed.checkpoint
        if cp.size < state.size:
            return [
                *alarms,
                Alarm(
                    "rollback",
                    f"the log shows size {cp.size}, smaller than the "
                    f"size {state.size} already verified",
                ),
            ]
        if cp.size == state.size:
            if cp.root_hash != state.root_hash:
                self._evidence("same-size", state, signed)
                alarms.append(
                    Alarm(
                        "equivocation",
                        f"two roots for size {cp.size}: "
                        f"{hash_text(state.root_hash)} and {hash_text(cp.root_hash)}",
                    )
                )
            return alarms
        leaves: list[bytes] = []
        try:
            for index, data in self._entries(state.size, cp.size):
                # Hashed whatever it holds: a malformed entry is still a leaf of the tree, and
                # the root must be recomputed over exactly what the log serves.
                leaves.append(leaf_hash(data))
                try:
                    entry = Entry.from_json(data, where=f"entry {index}")
                except Error as exc:
                    alarms.append(Alarm("malformed-entry", exc.message, index=index))
                    continue
                if entry.type not in self.entry_types:
                    alarms.append(
                        Alarm(
                            "malformed-entry",
                            f"entry type {entry.type!r} is not one this watcher knows",
                            index=index,
                        )
                    )
        except httpx.HTTPError as exc:
            return [*alarms, Alarm("unreachable", f"cannot fetch entries: {exc}")]
        except InputError as exc:
            return [*alarms, Alarm("bad-bundle", exc.message)]
        frontier = state.extended(leaves)
        size, edge, root = frontier.size, list(frontier.hashes), frontier.root()
        if size != cp.size or root != cp.root_hash:
            alarms.append(self._mismatch(state, signed, root))
            return alarms
        # Only a clean poll moves the state on: after an alarm the next poll checks the same
        # stretch again rather than accept what raised it.
        if not alarms:
            WatchState(
                origin=state.origin, size=size, root_hash=root, edge=edge, note=signed.to_text()
            ).save(self.state_file)
        return alarms

    def _mismatch(self, state: WatchState, signed: SignedCheckpoint, computed: bytes) -> Alarm:
        """The entries served do not give the checkpoint's root: find out which is wrong."""
        cp = signed.checkpoint
        what = (
            f"checkpoint {cp.size} ({hash_text(cp.root_hash)}) does not match the entries the log "
            f"serves on top of verified size {state.size} (they give {hash_text(computed)})"
        )
        if state.size == 0:
            return Alarm(
                "entry-mismatch",
                f"{what}: every tree extends the empty one, so the entries served are not "
                "the signed tree's (the log's stored data changed)",
            )
        try:
            resp = self.client.get(
                f"{self.url}/log/proof/consistency",
                params={"size1": state.size, "size2": cp.size},
            )
            resp.raise_for_status()
            proof = [base64.b64decode(h, validate=True) for h in resp.json()["proof"]]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            return Alarm(
                "inconsistent",
                f"{what}, and the log gave no consistency proof ({exc}): nothing is proven "
                "yet; the next poll asks again",
            )
        try:
            verify_consistency(state.size, cp.size, proof, state.root_hash, cp.root_hash)
        except VerificationError as exc:
            implied = implied_old_root(state.size, cp.size, proof, cp.root_hash)
            if implied is not None and implied != state.root_hash:
                self._evidence("inconsistent", state, signed, tuple(proof))
                return Alarm(
                    "equivocation",
                    f"{what}; the log's consistency proof shows its size-{cp.size} tree has "
                    f"root {hash_text(implied)} at size {state.size}, not the verified "
                    f"{hash_text(state.root_hash)}: the log forked (evidence written)",
                )
            return Alarm(
                "inconsistent",
                f"{what}, and its consistency proof does not verify ({exc.message}) but proves "
                "no fork either: nothing is proven yet",
            )
        return Alarm(
            "entry-mismatch",
            f"{what}; the checkpoints are consistent (the log's consistency proof from "
            f"{state.size} verifies), so the entries it serves are not the signed tree's: "
            "the log's stored data changed",
        )

    def _fetch_checkpoint(self) -> SignedCheckpoint:
        """The log's checkpoint (its cosigned one under a policy), its signature verified.

        Raises:
            httpx.HTTPError: the log could not be reached or did not answer 2xx.
            InputError: the answer is not a signed checkpoint.
            VerificationError: not signed by the log's key, or another origin.
        """
        path = "/checkpoint/cosigned" if self.policy is not None else "/checkpoint"
        resp = self.client.get(self.url + path)
        resp.raise_for_status()
        return SignedCheckpoint.from_text(resp.text, self.log_key)

    def _entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Entries ``start`` to ``end - 1`` with their indices, read through the C2SP
        tlog-tiles entry bundles (a full bundle holds 256; the last one is partial).

        Raises:
            httpx.HTTPError: a bundle could not be fetched.
            InputError: a bundle holds another number of entries than its width.
        """
        # The first bundle is read whole from its start: entries before ``start`` are skipped,
        # not asked for (bundles are addressed by tile index, not by entry).
        tile = start // _TILE_WIDTH
        while tile * _TILE_WIDTH < end:
            width = min(_TILE_WIDTH, end - tile * _TILE_WIDTH)
            resp = self.client.get(f"{self.url}/{entries_path(tile, width)}")
            resp.raise_for_status()
            items = list(split_bundle(resp.content))
            if len(items) != width:
                raise InputError(
                    f"entry bundle {tile} holds {len(items)} entries, expected {width}"
                )
            for offset, data in enumerate(items):
                index = tile * _TILE_WIDTH + offset
                if index >= start:
                    yield index, data
            tile += 1

    def _evidence(
        self,
        kind: EvidenceKind,
        state: WatchState,
        offered: SignedCheckpoint,
        proof: tuple[bytes, ...] = (),
    ) -> None:
        """Write an evidence file of a fork: the checkpoint held, the one offered, and the
        proof that shows they disagree, for anyone to check without trusting this watcher."""
        evidence = Evidence(
            origin=state.origin,
            kind=kind,
            held_note=state.note,
            offered_note=offered.to_text(),
            old_size=state.size,
            proof=proof,
            detected_at=self.clock.now(),
            witness="watch",
        )
        self.evidence_dir.mkdir(parents=True, exist_ok=True)
        cp = offered.checkpoint
        name = f"{kind}-{state.size}-{cp.size}-{cp.root_hash.hex()[:16]}.json"
        (self.evidence_dir / name).write_text(evidence.to_json())
        _log.error("evidence of equivocation written to %s", self.evidence_dir / name)
