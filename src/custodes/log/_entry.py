"""Log entries: RFC 8785 canonical JSON with a type, a UTC time, an actor and a typed body.

Every state change in custodes is recorded as an :class:`Entry`. An entry type is a name and a
version (``"authority.grant/v1"``) registered with a pydantic model that validates its body;
entries of unregistered types are refused. The leaf data of the Merkle tree is exactly
:meth:`Entry.to_json`, so the leaf hash is ``SHA-256(0x00 || canonical JSON)`` (RFC 9162 §2.1.1).

Wire form (keys in RFC 8785 order)::

    {"body": {...}, "principal": "alice@lab", "time": "2026-11-22T16:07:00.123456Z",
     "type": "authority.grant/v1"}

An entry appended while a staging deployment's clock runs ahead of the real one (setting
``staging_clock``) carries one more member, ``"staging_clock": {"offset_seconds": N}``: its time
is N seconds (rounded up) ahead of the real time. No production log has it.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import rfc8785
from pydantic import BaseModel, ValidationError

from custodes.clock import utc
from custodes.errors import InputError
from custodes.log._fastjson import canonical_json
from custodes.log._merkle import leaf_hash

__all__ = ["Entry", "EntryType", "entry_types", "format_time", "parse_time", "register_entry_type"]

_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_-]*)+/v[1-9][0-9]*$")
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
_MAX_ENTRY_BYTES = 1 << 20
_SAFE_INT = 2**53 - 1  # RFC 8785 §3.2.2.3 / I-JSON: integers a double holds exactly


@dataclass(frozen=True)
class EntryType:
    """A registered entry type: ``name/vN`` and the pydantic model of its body."""

    name: str
    model: type[BaseModel]
    description: str


_registry: dict[str, EntryType] = {}
_registry_lock = threading.Lock()


def register_entry_type(name: str, model: type[BaseModel], description: str = "") -> EntryType:
    """Register an entry type; the owning package calls this at import.

    Raises:
        ValueError: the name is malformed or registered to another model.
    """
    if not _TYPE_RE.match(name):
        raise ValueError(f"entry type {name!r} is not of the form package.thing/vN")
    with _registry_lock:
        existing = _registry.get(name)
        if existing is not None and existing.model is not model:
            raise ValueError(f"entry type {name!r} is already registered")
        entry_type = EntryType(name, model, description or (model.__doc__ or "").strip())
        _registry[name] = entry_type
        return entry_type


def entry_types() -> Mapping[str, EntryType]:
    """Every registered entry type, by name."""
    return MappingProxyType(dict(_registry))


def format_time(when: datetime) -> str:
    """RFC 3339 UTC with microseconds and a ``Z``: the one time format in entries."""
    return utc(when).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str, *, where: str = "time") -> datetime:
    """Parse an entry time; only UTC with a ``Z`` is accepted.

    Raises:
        InputError: the text is not such a time.
    """
    if not isinstance(text, str) or not _TIME_RE.match(text):
        raise InputError(
            "time is not RFC 3339 UTC",
            where=where,
            expected="YYYY-MM-DDTHH:MM:SS[.ffffff]Z",
            actual=repr(text),
        )
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as exc:  # e.g. 2026-02-30: the right shape, not a real time
        raise InputError(
            "time is not a real date and time",
            where=where,
            expected="YYYY-MM-DDTHH:MM:SS[.ffffff]Z",
            actual=repr(text),
        ) from exc


@dataclass(frozen=True)
class Entry:
    """One log entry. Build with :meth:`create`, :meth:`from_model` or :meth:`from_json`.

    All three validate, so an entry that exists can be encoded and appended.

    Attributes:
        type: the registered entry type, ``package.thing/vN``.
        time: when it happened (UTC).
        principal: who did it.
        body: the body as canonical JSON decodes it (read-only).
        staging_clock: on a staging deployment's advanced clock, how many seconds ahead of
            the real time ``time`` is (rounded up); None on a real clock.
    """

    type: str
    time: datetime
    principal: str
    body: Mapping[str, Any]
    staging_clock: int | None = None
    # The canonical bytes, once computed: an entry is frozen, so they never change, and the
    # log (which appends exactly these bytes) need not encode an entry twice.
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False, hash=False)

    @classmethod
    def create(
        cls, type: str, *, time: datetime, principal: str, body: Mapping[str, Any] | BaseModel
    ) -> Entry:
        """Validate and build an entry.

        Raises:
            InputError: unknown type, invalid body, empty principal or naive time.
        """
        # Only registered types: an entry whose meaning no package defines cannot be audited.
        entry_type = _registry.get(type)
        if entry_type is None:
            raise InputError(
                f"unknown entry type {type!r}",
                where="type",
                expected="one of: " + ", ".join(sorted(_registry)) if _registry else None,
            )
        if not isinstance(principal, str) or not principal or len(principal) > 256:
            raise InputError(
                "principal must be a non-empty string of at most 256 characters",
                where="principal",
                actual=repr(principal),
            )
        # A naive time would be read as local time by one verifier and UTC by another.
        if not isinstance(time, datetime) or time.tzinfo is None:
            raise InputError("time has no timezone", where="time", expected="UTC")
        # pydantic writes NaN and infinities as null in JSON mode: refuse them before it can.
        _refuse_non_finite(body.model_dump() if isinstance(body, BaseModel) else body, "body")
        raw = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
        try:
            model = entry_type.model.model_validate(raw)
        except ValidationError as exc:
            # The first error, located: one clear message rather than pydantic's whole list.
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise InputError(
                f"body of {type} is invalid: {first['msg']}",
                where=f"body.{loc}" if loc else "body",
            ) from exc
        # Canonicalise now, so an entry that exists can always be encoded (RFC 8785 refuses
        # NaN, infinities, integers beyond 2**53 and lone surrogates), and keep exactly what
        # canonical JSON encodes.
        try:
            canonical = canonical_json(model.model_dump(mode="json"))  # = rfc8785.dumps
        except (rfc8785.CanonicalizationError, UnicodeError, TypeError, ValueError) as exc:
            raise InputError(
                f"body of {type} cannot be canonicalised (RFC 8785): {exc}", where="body"
            ) from exc
        if len(canonical) > _MAX_ENTRY_BYTES:
            raise InputError(f"body is larger than {_MAX_ENTRY_BYTES} bytes", where="body")
        # The body as canonical JSON decodes it (1.0 becomes 1): what a verifier reading the
        # log will see, so two entries equal here encode to the same bytes.
        canonical_body = json.loads(canonical, parse_int=_parse_int)
        return cls(
            type=type, time=utc(time), principal=principal, body=MappingProxyType(canonical_body)
        )

    @classmethod
    def from_model(cls, type: str, *, time: datetime, principal: str, body: BaseModel) -> Entry:
        """Build an entry whose body is already an instance of its type's registered model.

        The fast path of the append hot paths (the gateway writes one per model call): pydantic
        validated ``body`` when it was built, so it is dumped and encoded once, not validated
        again as :meth:`create` does; the canonical bytes are kept for the log.

        Raises:
            InputError: unknown type, a body of another model, empty principal, naive time,
                or a body canonical JSON cannot encode (NaN, infinities).
        """
        entry_type = _registry.get(type)
        if entry_type is None or not isinstance(body, entry_type.model):
            # Anything else takes the full path, which validates and says what is wrong.
            return cls.create(type, time=time, principal=principal, body=body)
        if not isinstance(principal, str) or not principal or len(principal) > 256:
            raise InputError(
                "principal must be a non-empty string of at most 256 characters",
                where="principal",
                actual=repr(principal),
            )
        if not isinstance(time, datetime) or time.tzinfo is None:
            raise InputError("time has no timezone", where="time", expected="UTC")
        dumped = body.model_dump(mode="json")
        # The whole entry is encoded once here and the bytes kept: the log appends exactly them.
        try:
            # canonical_json refuses NaN and infinities (rfc8785 raises on them).
            data = canonical_json(
                {"type": type, "time": format_time(time), "principal": principal, "body": dumped}
            )
        except (rfc8785.CanonicalizationError, UnicodeError, TypeError, ValueError) as exc:
            raise InputError(
                f"body of {type} cannot be canonicalised (RFC 8785): {exc}", where="body"
            ) from exc
        if len(data) > _MAX_ENTRY_BYTES:
            raise InputError(f"body is larger than {_MAX_ENTRY_BYTES} bytes", where="body")
        entry = cls(type=type, time=utc(time), principal=principal, body=MappingProxyType(dumped))
        object.__setattr__(entry, "_json", data)
        return entry

    def on_staging_clock(self, offset_seconds: int) -> Entry:
        """This entry marked as timed by a staging clock ``offset_seconds`` ahead of the real
        one (the log marks every entry appended while the offset is not zero).

        Raises:
            InputError: the offset is not a positive integer of I-JSON's range.
        """
        _check_offset(offset_seconds, "staging_clock.offset_seconds")
        return replace(self, staging_clock=offset_seconds)

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON object (a fresh, mutable copy)."""
        out: dict[str, Any] = {
            "type": self.type,
            "time": format_time(self.time),
            "principal": self.principal,
            "body": _thaw(self.body),
        }
        if self.staging_clock is not None:
            out["staging_clock"] = {"offset_seconds": self.staging_clock}
        return out

    def to_json(self) -> bytes:
        """RFC 8785 canonical JSON: the leaf data of the Merkle tree (computed once)."""
        data = self._json
        if data is None:
            data = canonical_json(self.to_dict())  # = rfc8785.dumps (a property test pins it)
            object.__setattr__(self, "_json", data)
        return data

    def leaf_hash(self) -> bytes:
        """The RFC 9162 leaf hash of :meth:`to_json` (what the log's tree holds)."""
        return leaf_hash(self.to_json())

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "entry") -> Entry:
        """Validate a decoded entry object.

        Raises:
            InputError: it is not an object with exactly type, time, principal and body (and,
                from a staging clock, ``staging_clock``).
        """
        if not isinstance(data, dict):
            raise InputError("entry must be a JSON object", where=where, actual=type(data).__name__)
        # Exactly these four (and the staging clock's mark): an extra member would be signed
        # over yet ignored by verifiers.
        keys = set(data)
        expected = {"type", "time", "principal", "body"}
        if keys - {"staging_clock"} != expected:
            raise InputError(
                "entry has the wrong fields",
                where=where,
                expected="exactly: body, principal, time, type (and staging_clock, if any)",
                actual=", ".join(sorted(keys)),
            )
        if not isinstance(data["body"], dict):
            raise InputError("body must be a JSON object", where=f"{where}.body")
        mark = data.get("staging_clock")
        if "staging_clock" in data and (
            not isinstance(mark, dict) or set(mark) != {"offset_seconds"}
        ):
            raise InputError(
                "staging_clock must be an object with offset_seconds only",
                where=f"{where}.staging_clock",
                expected='{"offset_seconds": N}',
            )
        try:
            entry = cls.create(
                data["type"],
                time=parse_time(data["time"], where=f"{where}.time"),
                principal=data["principal"],
                body=data["body"],
            )
            if isinstance(mark, dict):
                entry = entry.on_staging_clock(mark["offset_seconds"])
            return entry
        except InputError as exc:
            if exc.where and not exc.where.startswith(where):
                exc.where = f"{where}.{exc.where}"
            raise

    @classmethod
    def from_json(cls, data: bytes | str, *, where: str = "entry") -> Entry:
        """Parse an entry from JSON (any key order; it is re-canonicalised).

        Raises:
            InputError: the JSON is malformed or the entry invalid.
        """
        # Bounded before parsing: entries arrive over HTTP and from files.
        if len(data) > _MAX_ENTRY_BYTES:
            raise InputError(f"entry is larger than {_MAX_ENTRY_BYTES} bytes", where=where)
        try:
            # The standard parser keeps big integers exact (orjson turns them into floats) and
            # lets us refuse duplicate names and NaN (RFC 8785 §3.1: I-JSON input only).
            decoded = json.loads(
                data,
                object_pairs_hook=_no_duplicates,
                parse_constant=_no_constant,
                parse_int=_parse_int,
            )
        except (ValueError, RecursionError) as exc:
            raise InputError(f"entry is not valid JSON: {exc}", where=where) from exc
        return cls.from_dict(decoded, where=where)


def _check_offset(value: Any, where: str) -> None:
    """Raises InputError unless ``value`` is a positive integer within I-JSON's range."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= _SAFE_INT:
        raise InputError(
            "a staging clock's offset is a positive whole number of seconds",
            where=where,
            actual=repr(value)[:40],
        )


def _refuse_non_finite(value: Any, where: str) -> None:
    """Refuse NaN and infinities anywhere in ``value`` (RFC 8785 has no such numbers).

    Raises:
        InputError: says where the first one is.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{value} is not a JSON number (RFC 8785)", where=where)
    if isinstance(value, Mapping):
        for k, v in value.items():
            _refuse_non_finite(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _refuse_non_finite(v, f"{where}[{i}]")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The object of ``pairs``, refusing a name given twice (RFC 8785 §3.1, I-JSON).

    Raises:
        ValueError: a member name is duplicated.
    """
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            raise ValueError(f"duplicate member name {name!r}")
        seen.add(name)
    return dict(pairs)


def _parse_int(text: str) -> int | float:
    """A JSON integer as RFC 8785 reads it: an int, or the double it exactly denotes.

    Raises:
        ValueError: no IEEE 754 double holds it exactly.
    """
    # RFC 8785 numbers are IEEE 754 doubles. An integer beyond 2**53 is kept as the double it
    # denotes when it is that double exactly or its canonical form (2**68 is written
    # 295147905179352830000); any other would be silently rounded, so it is refused.
    value = int(text)
    if -_SAFE_INT <= value <= _SAFE_INT:
        return value
    as_float = float(value)
    if int(as_float) != value and rfc8785.dumps(as_float).decode() != text:
        raise ValueError(f"integer {text[:40]} cannot be held exactly by an IEEE 754 double")
    return as_float


def _no_constant(name: str) -> Any:
    """Refuse ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON.

    Raises:
        ValueError: always.
    """
    raise ValueError(f"{name} is not a JSON number")


def _thaw(value: Any) -> Any:
    """A mutable deep copy of a frozen body (mappings to dicts, sequences to lists)."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value
