"""Client witness policy: which logs and witnesses to trust and how many must cosign.

The file format is C2SP tlog-policy::

    log <vkey> [<url>]
    witness <name> <vkey> [<url>]
    group <name> all|any|<k> <name>...
    quorum <name>|none

Witness URLs are their tlog-witness submission prefixes; the log server's publisher uses them.
A checkpoint is trusted when one listed log signed it and the quorum (a witness, or a group of
k-of-n witnesses and groups) cosigned it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from custodes.errors import InputError, VerificationError
from custodes.log import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Note,
    NoteVerifier,
    SignedCheckpoint,
    cosignature_verifier,
)

if TYPE_CHECKING:
    from custodes.constitution import WitnessConfig

__all__ = ["PolicyGroup", "PolicyWitness", "WitnessPolicy", "cosignature_verifier"]

_log = logging.getLogger(__name__)
_NONE = "none"  # C2SP tlog-policy: the predefined name for "no cosignatures required"
_MAX_ITEMS = 256  # C2SP tlog-policy recommends supporting at least 32 of each; we allow more
_SKEW = 300  # seconds a cosignature's timestamp may be ahead of this machine's clock


def _age(seconds: float) -> str:
    s = int(seconds)
    if s >= 2 * 86400:
        return f"{s // 86400} d"
    if s >= 2 * 3600:
        return f"{s // 3600} h"
    if s >= 120:
        return f"{s // 60} min"
    return f"{s} s"


@dataclass(frozen=True)
class PolicyWitness:
    """A witness named in a policy: its policy-local name, cosignature key and URL."""

    name: str
    verifier: NoteVerifier
    url: str | None = None


@dataclass(frozen=True)
class PolicyGroup:
    """A group that witnesses a checkpoint when ``threshold`` of its members do."""

    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class WitnessPolicy:
    """Trust a checkpoint only with cosignatures meeting a quorum (C2SP tlog-policy).

    Build with :meth:`from_text`, :meth:`from_file` or :meth:`threshold`; the constructor
    checks that every name used is defined and thresholds are in range.
    """

    quorum: str
    witnesses: tuple[PolicyWitness, ...] = ()
    groups: tuple[PolicyGroup, ...] = ()
    logs: tuple[tuple[NoteVerifier, str | None], ...] = ()
    _by_name: dict[str, PolicyWitness] = field(default_factory=dict, repr=False, compare=False)
    # Freshness (custodes; the policy file format has no field for it): a cosignature counts
    # only if its C2SP tlog-cosignature timestamp is at most this many seconds old.
    max_age: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        """Check the policy as C2SP tlog-policy defines it: witness keys are
        cosignature/v1 (0x04) keys, log keys Ed25519 (0x01); names are unique and a group
        names only witnesses and groups defined before it (so there are no cycles), with
        ``1 <= k <= n``; the quorum names something defined (or ``none``). One key twice
        would let one witness count twice.

        Raises:
            InputError: the first rule broken.
        """
        defined: set[str] = set()
        keys: set[bytes] = set()
        for w in self.witnesses:
            if w.verifier.alg != ALG_COSIGNATURE_V1:
                raise InputError(
                    f"witness {w.name} key is not a cosignature/v1 key",
                    expected="vkey of signature type 0x04",
                )
            if w.name in defined or w.name == _NONE:
                raise InputError(f"witness name {w.name!r} is defined twice or reserved")
            if w.verifier.public_key in keys:
                raise InputError(f"witness {w.name} repeats another witness's public key")
            defined.add(w.name)
            keys.add(w.verifier.public_key)
            self._by_name[w.name] = w
        for g in self.groups:
            if g.name in defined or g.name == _NONE:
                raise InputError(f"group name {g.name!r} is defined twice or reserved")
            if not g.members:
                raise InputError(f"group {g.name} has no members")
            # A member listed twice would count twice towards the group's threshold.
            if len(set(g.members)) != len(g.members):
                raise InputError(f"group {g.name} lists a member twice")
            unknown = [m for m in g.members if m not in defined]
            if unknown:
                raise InputError(
                    f"group {g.name} names undefined members {unknown}",
                    hint="define witnesses and groups before using them",
                )
            if not 1 <= g.threshold <= len(g.members):
                raise InputError(
                    f"group {g.name} threshold {g.threshold} out of range",
                    expected=f"1 <= k <= {len(g.members)}",
                )
            defined.add(g.name)
        if self.quorum != _NONE and self.quorum not in defined:
            raise InputError(f"quorum names undefined witness or group {self.quorum!r}")
        log_keys: set[bytes] = set()
        for verifier, _url in self.logs:
            if verifier.alg != ALG_ED25519:
                raise InputError(f"log key {verifier.name} is not an Ed25519 (0x01) key")
            if verifier.public_key in log_keys:
                raise InputError(f"log key {verifier.name} is listed twice")
            log_keys.add(verifier.public_key)

    # --- construction --------------------------------------------------------

    @classmethod
    def threshold(
        cls,
        k: int,
        witnesses: Sequence[NoteVerifier | PolicyWitness],
        *,
        logs: Sequence[NoteVerifier] = (),
    ) -> WitnessPolicy:
        """ "At least ``k`` of these witnesses"; ``k == 0`` means no cosignature is required.

        Raises:
            InputError: ``k`` is out of range or a key is not a cosignature key.
        """
        members = tuple(
            w if isinstance(w, PolicyWitness) else PolicyWitness(name=w.name, verifier=w)
            for w in witnesses
        )
        # "none" is the policy's own word for no requirement (C2SP tlog-policy); a group of
        # threshold 0 would be out of range.
        if k == 0:
            return cls(quorum=_NONE, witnesses=members, logs=tuple((v, None) for v in logs))
        group = PolicyGroup("quorum", k, tuple(w.name for w in members))
        return cls(
            quorum="quorum", witnesses=members, groups=(group,), logs=tuple((v, None) for v in logs)
        )

    @classmethod
    def from_constitution(cls, config: WitnessConfig) -> WitnessPolicy:
        """The policy a constitution's ``witnesses`` section states: ``quorum`` of its list.

        Raises:
            InputError: a witness key is malformed.
        """
        members = [
            PolicyWitness(name=w.name, verifier=cosignature_verifier(w.key), url=w.url or None)
            for w in config.witnesses
        ]
        return cls.threshold(config.quorum, members)

    @classmethod
    def from_file(cls, path: Path) -> WitnessPolicy:
        """Read a tlog-policy file.

        Raises:
            InputError: the file cannot be read or is malformed (with its line number).
        """
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read witness policy {path}: {exc.strerror}") from exc
        try:
            return cls.from_text(data)
        except InputError as exc:
            exc.where = f"{path}:{exc.where}" if exc.where else str(path)
            raise

    @classmethod
    def from_text(cls, text: str | bytes) -> WitnessPolicy:
        """Parse a C2SP tlog-policy document.

        Raises:
            InputError: a line is malformed, a name is undefined or the quorum line is missing.
        """
        if isinstance(text, bytes):
            # C2SP tlog-policy: only tab and newline among control characters; high-bit octets
            # are opaque, so UTF-8 decoding with surrogate escapes keeps names byte-exact.
            text = text.decode("utf-8", errors="surrogateescape")
        witnesses: list[PolicyWitness] = []
        groups: list[PolicyGroup] = []
        logs: list[tuple[NoteVerifier, str | None]] = []
        quorum: str | None = None
        for number, raw in enumerate(text.split("\n"), start=1):
            where = f"line {number}"
            if any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in raw):
                raise InputError("control character in policy", where=where)
            line = raw.strip(" \t")
            if not line or line.startswith("#"):
                continue
            words = line.replace("\t", " ").split()
            keyword, args = words[0], words[1:]
            try:
                if keyword == "log" and len(args) in (1, 2):
                    logs.append(
                        (NoteVerifier.from_key(args[0]), args[1] if len(args) == 2 else None)
                    )
                elif keyword == "witness" and len(args) in (2, 3):
                    witnesses.append(
                        PolicyWitness(
                            args[0],
                            cosignature_verifier(args[1]),
                            args[2] if len(args) == 3 else None,
                        )
                    )
                elif keyword == "group" and len(args) >= 3:
                    members = tuple(args[2:])
                    k = {"all": len(members), "any": 1}.get(args[1])
                    if k is None:
                        # ASCII decimal digits only, as C2SP tlog-policy and the log's own reader
                        # (custodes.log) take them: str.isdigit alone passes "²" (which int()
                        # then fails on) and other scripts' digits (which int() reads).
                        digits = args[1].isascii() and args[1].isdigit()
                        if not digits or args[1].startswith("0"):
                            raise InputError(
                                "group threshold must be all, any or a number", actual=repr(args[1])
                            )
                        k = int(args[1])
                    groups.append(PolicyGroup(args[0], k, members))
                elif keyword == "quorum" and len(args) == 1:
                    if quorum is not None:
                        raise InputError("a policy has exactly one quorum line")
                    quorum = args[0]
                else:
                    raise InputError(
                        f"unknown or malformed {keyword!r} line",
                        expected="log, witness, group or quorum line",
                    )
                if len(witnesses) + len(groups) + len(logs) > _MAX_ITEMS:
                    raise InputError(f"policy defines more than {_MAX_ITEMS} items")
                # Names must be defined before use, keys must not repeat: validating the
                # prefix after each line puts the error on the line that causes it.
                cls(
                    quorum=quorum or _NONE,
                    witnesses=tuple(witnesses),
                    groups=tuple(groups),
                    logs=tuple(logs),
                )
            except InputError as exc:
                exc.where = where
                raise
        if quorum is None:
            raise InputError("policy has no quorum line", expected="quorum <name> or quorum none")
        return cls(
            quorum=quorum, witnesses=tuple(witnesses), groups=tuple(groups), logs=tuple(logs)
        )

    def to_text(self) -> str:
        """The policy in the text format :meth:`from_text` reads (one line per log, witness
        and group, then the quorum)."""
        lines = [f"log {v.to_key()}" + (f" {u}" if u else "") for v, u in self.logs]
        lines += [
            f"witness {w.name} {w.verifier.to_key()}" + (f" {w.url}" if w.url else "")
            for w in self.witnesses
        ]
        lines += [f"group {g.name} {g.threshold} {' '.join(g.members)}" for g in self.groups]
        lines.append(f"quorum {self.quorum}")
        return "\n".join(lines) + "\n"

    # --- evaluation ----------------------------------------------------------

    @property
    def requires_cosignatures(self) -> bool:
        """Whether the quorum is anything but ``none``."""
        return self.quorum != _NONE

    def witness(self, name: str) -> PolicyWitness:
        """The witness named ``name``.

        Raises:
            KeyError: the policy names no such witness.
        """
        return self._by_name[name]

    def with_max_age(self, seconds: int | None) -> WitnessPolicy:
        """This policy, counting only cosignatures at most ``seconds`` old (None: any age).

        Raises:
            InputError: ``seconds`` is not positive.
        """
        if seconds is not None and seconds <= 0:
            raise InputError("a maximum cosignature age must be positive", actual=str(seconds))
        return replace(self, max_age=seconds, _by_name={})

    def cosigners(self, note: Note, *, now: float | None = None) -> set[str]:
        """Names of the policy's witnesses whose valid cosignature ``note`` carries (and, with
        ``max_age``, made at most that long before ``now``)."""
        return {w.name for w, _ in self._cosignatures(note, now) if _}

    def _cosignatures(self, note: Note, now: float | None) -> list[tuple[PolicyWitness, bool]]:
        """Each witness that validly cosigned, and whether its cosignature is fresh enough."""
        out = []
        clock = time.time() if now is None else now
        for w in self.witnesses:
            at = note.cosigned_at(w.verifier)
            if at is None:
                continue
            out.append((w, self.max_age is None or clock - self.max_age <= at <= clock + _SKEW))
        return out

    def satisfied_by(self, names: Iterable[str]) -> bool:
        """Whether cosignatures from ``names`` meet the quorum."""
        if self.quorum == _NONE:
            return True
        done = set(names) & set(self._by_name)
        for g in self.groups:  # groups only refer to earlier names, so one pass suffices
            if sum(m in done for m in g.members) >= g.threshold:
                done.add(g.name)
        return self.quorum in done

    def check(self, checkpoint: SignedCheckpoint | Note, *, now: float | None = None) -> set[str]:
        """Require the quorum's cosignatures on ``checkpoint``; return the witnesses that signed.

        The log's own signature is checked by whoever built ``checkpoint``
        (:meth:`SignedCheckpoint.from_text`) or by :meth:`verify`.

        Raises:
            VerificationError: the quorum is not met.
        """
        note = checkpoint.note if isinstance(checkpoint, SignedCheckpoint) else checkpoint
        if self.quorum == _NONE:
            _log.warning("witness policy 'quorum none': checkpoint accepted without witnesses")
            return set()
        clock = time.time() if now is None else now
        found = self._cosignatures(note, clock)
        names = {w.name for w, fresh in found if fresh}
        if not self.satisfied_by(names):
            stale = [
                f"{w.name}'s is {_age(clock - (note.cosigned_at(w.verifier) or 0))} old"
                for w, fresh in found
                if not fresh
            ]
            freshness = f" newer than {_age(self.max_age)}" if self.max_age else ""
            raise VerificationError(
                f"checkpoint lacks the witness quorum {self.describe()}{freshness}: cosigned by "
                f"{sorted(names) or 'no known witness'}"
                + (f" ({'; '.join(stale)}: too old to count)" if stale else ""),
                hint="fetch a checkpoint that enough witnesses have cosigned recently, or wait"
                + (
                    " (a stale cosignature can mean a log that was rolled back after "
                    "witnesses saw more)"
                    if stale
                    else ""
                ),
            )
        return names

    def verify(
        self, text: str | bytes, log_key: NoteVerifier | None = None, *, now: float | None = None
    ) -> SignedCheckpoint:
        """Verify a cosigned checkpoint: a listed log's signature (or ``log_key``), then quorum.

        Raises:
            InputError: the note is malformed.
            VerificationError: no trusted log signed it, or the quorum is not met.
        """
        keys = [log_key] if log_key is not None else [v for v, _ in self.logs]
        if not keys:
            raise VerificationError("no log key to verify the checkpoint with")
        last: VerificationError | None = None
        for key in keys:
            try:
                signed = SignedCheckpoint.from_text(text, key)
                break
            except VerificationError as exc:
                last = exc
        else:
            assert last is not None
            raise last
        self.check(signed, now=now)
        return signed

    def describe(self) -> str:
        """The quorum for a person: ``none``, a witness's name, or ``2 of a, b, c``."""
        if self.quorum == _NONE:
            return "none"
        if self.quorum in self._by_name:
            return self.quorum
        group = next(g for g in self.groups if g.name == self.quorum)
        return f"{group.threshold} of {', '.join(group.members)}"
