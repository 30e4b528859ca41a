"""C2SP tlog-policy: which logs to trust and which witness cosignatures make a checkpoint valid.

A policy file lists logs (``log <vkey> [<url>]``), witnesses (``witness <name> <vkey> [<url>]``),
groups (``group <name> all|any|<k> <member>...``) and exactly one ``quorum <name>`` (or
``quorum none``). Offline verifiers of receipts use it to require, say, two of three witnesses
from each of two overseer organisations before they believe a checkpoint.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from custodes.errors import InputError, VerificationError
from custodes.log._note import (
    ALG_COSIGNATURE_V1,
    ALG_ECDSA,
    ALG_ED25519,
    Note,
    NoteVerifier,
    cosignature_verifier,
)

__all__ = ["WitnessGroup", "WitnessPolicy", "parse_max_age"]

_AGE = re.compile(r"^([1-9][0-9]{0,9})([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_max_age(text: str, where: str = "--max-age") -> int | None:
    """``90s``, ``10m``, ``1h``, ``2d`` or plain seconds to seconds; ``none`` to None (any age).

    Raises:
        InputError: anything else.
    """
    if text.strip().lower() == "none":
        return None
    m = _AGE.match(text.strip())
    if m is None:
        raise InputError(
            "malformed maximum cosignature age",
            where=where,
            expected="a positive number of seconds with an optional unit s, m, h or d "
            "(90s, 10m, 1h, 2d), or none",
            actual=repr(text),
        )
    return int(m.group(1)) * _UNIT[m.group(2)]


_NONE = "none"  # c2sp.org/tlog-policy: the predefined name of the empty quorum
_WHITESPACE = re.compile(r"[ \t]+")  # tlog-policy §Structure: ASCII space and tab only
_DECIMAL = re.compile(r"^[1-9][0-9]{0,8}$")
_MAX_BYTES = 1 << 20
_SKEW = 300  # seconds a cosignature's timestamp may be ahead of this machine's clock


@dataclass(frozen=True)
class WitnessGroup:
    """``k`` of ``members`` (witness or group names) must have witnessed a checkpoint.

    Attributes:
        name: the group's name, as other groups and the quorum line refer to it.
        threshold: how many members must be satisfied (``all`` is their number, ``any`` 1).
        members: witness or group names defined before this group.
    """

    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class WitnessPolicy:
    """A parsed C2SP tlog-policy. Build with :meth:`from_text` or :meth:`threshold`.

    Attributes:
        logs: the logs' verifier keys the policy is for.
        witnesses: each witness's cosignature/v1 verifier, by name.
        groups: the groups, by name.
        quorum: the witness or group whose satisfaction a checkpoint needs (``none``: none).
        text: the policy file as given.
        max_age: the most seconds a cosignature may be old to count (None: any age).
    """

    logs: tuple[NoteVerifier, ...]
    witnesses: Mapping[str, NoteVerifier]
    groups: Mapping[str, WitnessGroup]
    quorum: str
    text: str = field(default="", compare=False)
    # Freshness (custodes; the policy file format has no field for it): a cosignature counts
    # only if its C2SP tlog-cosignature timestamp is at most this many seconds old.
    max_age: int | None = field(default=None, compare=False)

    def with_max_age(self, seconds: int | None) -> WitnessPolicy:
        """This policy, counting only cosignatures at most ``seconds`` old (None: any age).

        Raises:
            InputError: ``seconds`` is not positive.
        """
        if seconds is not None and seconds <= 0:
            raise InputError("a maximum cosignature age must be positive", actual=str(seconds))
        return replace(self, max_age=seconds)

    @classmethod
    def threshold(cls, k: int, witnesses: list[NoteVerifier]) -> WitnessPolicy:
        """A policy needing cosignatures from ``k`` of ``witnesses`` (named by key name).

        Raises:
            InputError: ``k`` is not in ``1..len(witnesses)`` or a witness is listed twice.
        """
        # Written as policy text and parsed, so a policy built in code obeys the same rules
        # (and has the same text) as one read from a file.
        lines = [f"witness {w.name} {w.to_key()}" for w in witnesses]
        lines.append(f"group quorum {k} " + " ".join(w.name for w in witnesses))
        lines.append("quorum quorum")
        return cls.from_text("\n".join(lines) + "\n")

    @classmethod
    def from_text(cls, text: str | bytes) -> WitnessPolicy:
        """Parse a policy file.

        Raises:
            InputError: the file breaks c2sp.org/tlog-policy; the error names the line.
        """
        raw = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        if len(raw) > _MAX_BYTES:
            raise InputError(f"policy is larger than {_MAX_BYTES} bytes", where="policy")
        # tlog-policy §Character set: only tab and newline among the control characters; a CR
        # or NUL would make two parsers read two different policies.
        for i, b in enumerate(raw):
            if b < 0x20 and b not in (0x09, 0x0A) or b == 0x7F:
                at = raw.count(b"\n", 0, i) + 1
                raise InputError(
                    f"control character 0x{b:02x} in policy",
                    where=f"policy line {at}",
                    expected="tab, newline, printable ASCII or octets >= 0x80",
                )
        # Names are opaque octets (tlog-policy §Character set): surrogateescape keeps them so.
        decoded = raw.decode("utf-8", "surrogateescape")
        parser = _Parser()
        for number, line in enumerate(decoded.split("\n"), 1):
            fields = _WHITESPACE.split(line.strip(" \t"))
            if fields == [""] or fields[0].startswith("#"):
                continue  # blank lines and comments (tlog-policy §Structure)
            parser.line(number, fields)
        return parser.finish(decoded)

    def satisfied_by(self, note: Note, *, now: float | None = None) -> set[str]:
        """The witness names among this policy's whose valid cosignature ``note`` carries
        (with ``max_age``: made at most that long before ``now``)."""
        clock = time.time() if now is None else now
        return {
            name
            for name, v in self.witnesses.items()
            if (at := note.cosigned_at(v)) is not None and self._fresh(at, clock)
        }

    def _fresh(self, at: int, now: float) -> bool:
        """Whether a cosignature made at ``at`` is no older than ``max_age`` (nor far ahead)."""
        return self.max_age is None or now - self.max_age <= at <= now + _SKEW

    def check(self, note: Note, *, now: float | None = None) -> set[str]:
        """Require the quorum (of fresh enough cosignatures); return the witnesses that count.

        Raises:
            VerificationError: the cosignatures do not meet the quorum; says who signed and
                whose cosignature was too old.
        """
        clock = time.time() if now is None else now
        cosigned = self.satisfied_by(note, now=clock)
        if not self._witnessed(self.quorum, cosigned):
            # Say which cosignatures were valid but too old: a rolled-back log shows exactly
            # that (witnesses saw more, and stopped cosigning what it serves now).
            stale = sorted(
                f"{name}'s is {int(clock - at)} s old"
                for name, v in self.witnesses.items()
                if (at := note.cosigned_at(v)) is not None and not self._fresh(at, clock)
            )
            freshness = f" with cosignatures newer than {self.max_age} s" if self.max_age else ""
            raise VerificationError(
                f"checkpoint does not meet the witness quorum {self.quorum!r}{freshness}"
                + (f" ({'; '.join(stale)}: too old to count)" if stale else ""),
                hint="valid cosignatures from: "
                + (", ".join(sorted(cosigned)) or "nobody")
                + (
                    "; a stale cosignature can mean a log rolled back after witnesses saw more"
                    if stale
                    else ""
                ),
            )
        return cosigned

    def _witnessed(self, name: str, cosigned: set[str]) -> bool:
        """Whether the witness or group ``name`` is satisfied by the witnesses in ``cosigned``."""
        if name == _NONE:
            return True
        group = self.groups.get(name)
        if group is None:
            return name in cosigned
        # Members are defined before the group (checked when parsing), so this terminates.
        done = sum(self._witnessed(m, cosigned) for m in group.members)
        return done >= group.threshold


class _Parser:
    """Reads a witness policy line by line (the C2SP-style policy format), keeping what it
    defined so far; :meth:`finish` builds the policy.
    """

    def __init__(self) -> None:
        """Start with nothing defined."""
        self.logs: list[NoteVerifier] = []
        self.witnesses: dict[str, NoteVerifier] = {}
        self.groups: dict[str, WitnessGroup] = {}
        self.quorum: str | None = None
        self.keys: set[bytes] = set()  # every public key listed, under whatever name

    def fail(self, number: int, message: str, expected: str | None = None) -> InputError:
        """A policy error at line ``number``."""
        return InputError(message, where=f"policy line {number}", expected=expected)

    def key(self, number: int, vkey: str, algs: tuple[int, ...], role: str) -> NoteVerifier:
        """Parse a vkey of one of ``algs`` for ``role``.

        Raises:
            InputError: it is malformed, of another type, or used twice.
        """
        try:
            # A witness's Ed25519 (0x01) vkey, the form the constitution lists, is taken as its
            # cosignature/v1 key (transparency-dev/formats NewVerifierForCosignatureV1).
            if role == "witness":
                verifier = cosignature_verifier(vkey)
            else:
                verifier = NoteVerifier.from_key(vkey)
        except InputError as exc:
            expected = (
                "a vkey of type 0x04 (cosignature/v1) or 0x01 (Ed25519, as the constitution's)"
                if role == "witness"
                else None
            )
            raise self.fail(number, f"{role} key is invalid: {exc.message}", expected) from exc
        if verifier.alg not in algs:
            raise self.fail(
                number,
                f"{role} key has the wrong signature type",
                expected=", ".join(f"0x{a:02x}" for a in algs),
            )
        # One key under two names would count one witness twice towards a threshold.
        if verifier.public_key in self.keys:
            raise self.fail(number, f"duplicate {role}: this public key is already listed")
        self.keys.add(verifier.public_key)
        return verifier

    def new_name(self, number: int, name: str) -> None:
        """Reserve a witness or group name.

        Raises:
            InputError: it is already defined, or is ``none``.
        """
        # Witnesses and groups share one namespace (tlog-policy): a member name must mean one
        # thing, and ``none`` is the predefined empty quorum.
        if name == _NONE or name in self.witnesses or name in self.groups:
            raise self.fail(number, f"name {name!r} is already defined or reserved")

    def line(self, number: int, fields: list[str]) -> None:
        """Take one policy line (``log``, ``witness``, ``group`` or ``quorum``).

        Raises:
            InputError: the line is malformed or refers to an undefined name.
        """
        keyword, args = fields[0], fields[1:]
        # The URL fields of log and witness lines are for clients that fetch; a verifier needs
        # only the keys, so they are accepted and not kept.
        if keyword == "log":
            if len(args) not in (1, 2):
                raise self.fail(number, "malformed log line", "log <vkey> [<url>]")
            self.logs.append(self.key(number, args[0], (ALG_ED25519, ALG_ECDSA), "log"))
        elif keyword == "witness":
            if len(args) not in (2, 3):
                raise self.fail(number, "malformed witness line", "witness <name> <vkey> [<url>]")
            self.new_name(number, args[0])
            self.witnesses[args[0]] = self.key(number, args[1], (ALG_COSIGNATURE_V1,), "witness")
        elif keyword == "group":
            self.group(number, args)
        elif keyword == "quorum":
            if len(args) != 1:
                raise self.fail(number, "malformed quorum line", "quorum <name>")
            # Two quorum lines would let two readers of one file apply two policies.
            if self.quorum is not None:
                raise self.fail(number, "a policy has exactly one quorum line")
            if args[0] != _NONE and args[0] not in self.witnesses and args[0] not in self.groups:
                raise self.fail(number, f"quorum names {args[0]!r}, which is not defined above")
            self.quorum = args[0]
        else:
            raise self.fail(number, f"unknown keyword {keyword!r}", "log, witness, group, quorum")

    def group(self, number: int, args: list[str]) -> None:
        """Take a ``group`` line: a threshold over witnesses and groups defined before it.

        Raises:
            InputError: it is malformed, names a member twice or an undefined one, or its
                threshold is out of range.
        """
        if len(args) < 3:
            raise self.fail(number, "malformed group line", "group <name> all|any|<k> <member>...")
        name, k_text, members = args[0], args[1], args[2:]
        self.new_name(number, name)
        # A member listed twice would count twice towards the threshold.
        if len(set(members)) != len(members):
            raise self.fail(number, "a group lists a member more than once")
        # Only names defined above: no forward references, so no cycles among groups.
        for m in members:
            if m == _NONE or (m not in self.witnesses and m not in self.groups):
                raise self.fail(number, f"group member {m!r} is not defined above")
        if k_text == "all":
            k = len(members)
        elif k_text == "any":
            k = 1
        # A threshold above the member count could never be met: refused, not silently capped.
        elif _DECIMAL.match(k_text) and int(k_text) <= len(members):
            k = int(k_text)
        else:
            raise self.fail(
                number,
                f"group threshold {k_text!r} is invalid",
                f"all, any, or a decimal 1..{len(members)}",
            )
        self.groups[name] = WitnessGroup(name=name, threshold=k, members=tuple(members))

    def finish(self, text: str) -> WitnessPolicy:
        """The policy, once every line has been read.

        Raises:
            InputError: there is no quorum line, or no log.
        """
        if self.quorum is None:
            raise InputError(
                "policy has no quorum line", where="policy", expected="quorum <name> or quorum none"
            )
        return WitnessPolicy(
            logs=tuple(self.logs),
            witnesses=MappingProxyType(self.witnesses),
            groups=MappingProxyType(self.groups),
            quorum=self.quorum,
            text=text,
        )
