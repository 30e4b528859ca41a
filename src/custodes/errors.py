"""The exception tree of custodes.

Every error custodes raises on purpose derives from :class:`Error` and can explain itself to a
person through :meth:`Error.diagnostics`. The CLI prints diagnostics (a traceback only with
``-v``); the API turns them into one JSON error shape; the gateway into OpenAI's error shape.

::

    Error
    ├── ConfigError                 settings missing, placeholder secrets outside the demo
    ├── InputError                  bad input from a caller: what was expected and where
    │   ├── NotFoundError           a named thing does not exist
    │   ├── Unauthenticated         no valid API key was sent (401)
    │   ├── Forbidden               the caller is known but may not do this (403)
    │   └── TooLarge                a body or document is over a size, depth or count limit
    ├── StoreError                  the database cannot be reached or migrated
    ├── LogError
    │   ├── LogWriteError           an entry could not be made durable (the action fails)
    │   ├── LogIntegrityError       stored log data disagrees with itself or a checkpoint
    │   └── VerificationError       a proof, note, signature or receipt does not verify
    ├── ConstitutionError           a constitution document is malformed (line-numbered)
    ├── AuthorityError
    │   ├── PolicyDenied            a decision said no; carries the reasons
    │   └── ApprovalError           an approval is malformed, forged or replayed
    ├── WitnessError                witness protocol failures
    ├── UpstreamError               a model upstream failed
    ├── MonitorError                a detector failed (gating monitors fail closed)
    ├── CustodyError                findings, escrow, clocks, exports
    ├── AuditError                  a loyalty audit cannot run or report as asked
    ├── ProvenanceError             the model registry: artifacts, runs, lineage, attestations
    ├── UsageError                  concentration figures, rules, overrides of a gate
    └── DrillError                  a drill cannot be read or run as asked
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ApprovalError",
    "AuditError",
    "AuthorityError",
    "ConfigError",
    "ConstitutionError",
    "CustodyError",
    "DrillError",
    "Error",
    "Forbidden",
    "InputError",
    "LogError",
    "LogIntegrityError",
    "LogWriteError",
    "MonitorError",
    "NotFoundError",
    "ParameterError",
    "PolicyDenied",
    "ProvenanceError",
    "StoreError",
    "TooLarge",
    "Unauthenticated",
    "UpstreamError",
    "UsageError",
    "VerificationError",
    "WitnessError",
]


class Error(Exception):
    """Root of every error custodes raises on purpose.

    Attributes:
        status: the HTTP status the API answers with when this error reaches it.
        code: a short machine-readable code, stable across versions.
    """

    status: int = 500
    code: str = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """A human explanation: what went wrong and, where known, what to do."""
        text = self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def details(self) -> dict[str, Any]:
        """The error's fields besides its code and message, JSON-ready, for the API's error
        body (a field that is None is left out there). A subclass with fields of its own
        extends it, so the server never guesses at attributes."""
        return {"hint": self.hint} if self.hint else {}


class ConfigError(Error):
    """The settings cannot run this deployment: a missing value, a placeholder secret outside
    the demo, an optional dependency not installed for a feature that was asked for.

    Raised at start-up, before anything is served or logged (a 500 if it ever reaches the API,
    since no caller's input can cause it)."""

    code = "config_error"


class InputError(Error):
    """Bad input: says what was expected, what was found, and where."""

    status = 400
    code = "invalid_input"

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        expected: str | None = None,
        actual: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.where = where
        self.expected = expected
        self.actual = actual

    def details(self) -> dict[str, Any]:
        """Where, what was expected and what was found, then the hint."""
        return {
            "where": self.where,
            "expected": self.expected,
            "actual": self.actual,
            **super().details(),
        }

    def diagnostics(self) -> str:
        """The message prefixed by where, then what was expected and found, then the hint."""
        lines = [f"{self.where}: {self.message}" if self.where else self.message]
        if self.expected is not None:
            lines.append(f"  expected: {self.expected}")
        if self.actual is not None:
            lines.append(f"  actual:   {self.actual}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class ParameterError(InputError):
    """A query or path parameter is not of the form the route takes (422, like FastAPI's own
    validation of declared parameters)."""

    status = 422


class NotFoundError(InputError):
    """A thing named by the caller (an entry, a grant, a finding, a digest) does not exist (404).

    A subclass of :class:`InputError` because the name came from the caller: ``where`` says
    where it was named."""

    status = 404
    code = "not_found"


class Unauthenticated(InputError):
    """No valid custodes API key came with a request that needs one."""

    status = 401
    code = "unauthenticated"


class Forbidden(InputError):
    """The caller is authenticated but may not do this; ``expected`` says what would be allowed."""

    status = 403
    code = "forbidden"


class TooLarge(InputError):
    """A request body or document is over a size, nesting-depth or count limit (413)."""

    status = 413
    code = "too_large"


class StoreError(Error):
    """The database cannot be reached, opened or migrated to the code's schema (503: the
    deployment, not the caller, is at fault, and the same request may succeed later)."""

    status = 503
    code = "store_unavailable"


class LogError(Error):
    """The transparency log failed: a write, a proof, or the integrity of what it stores.

    Catch the subclasses: :class:`LogWriteError` (the action did not happen),
    :class:`LogIntegrityError` (stored data disagrees with itself) and
    :class:`VerificationError` (something offered to be checked does not verify)."""

    code = "log_error"


class LogWriteError(LogError):
    """An entry could not be made durable; by invariant 1 the action it records fails."""

    status = 503
    code = "log_unavailable"


class LogIntegrityError(LogError):
    """Stored log data disagrees with itself or with a signed checkpoint.

    Attributes:
        index: the first entry index found wrong, if the problem is an entry.
        checkpoint_size: the size of the checkpoint found wrong, if it is a checkpoint.
    """

    code = "log_integrity"

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        checkpoint_size: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.index = index
        self.checkpoint_size = checkpoint_size


class VerificationError(LogError):
    """A proof, note, signature or receipt does not verify."""

    status = 422
    code = "verification_failed"


@dataclass(frozen=True)
class ConstitutionProblem:
    """One problem in a constitution document, located by line (1-based) and path."""

    message: str
    line: int | None = None
    path: str = ""
    expected: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "document"
        if self.path:
            where += f" ({self.path})"
        text = f"{where}: {self.message}"
        if self.expected:
            text += f" (expected {self.expected})"
        return text


class ConstitutionError(Error):
    """A constitution document is refused; every problem found is listed with its line."""

    status = 422
    code = "invalid_constitution"

    def __init__(
        self, message: str, *, problems: Sequence[ConstitutionProblem] = (), source: str = ""
    ) -> None:
        super().__init__(message)
        self.problems = tuple(problems)
        self.source = source

    def details(self) -> dict[str, Any]:
        """Every problem, as text with its line and path."""
        out = super().details()
        if self.problems:
            out["problems"] = [str(p) for p in self.problems]
        return out

    def diagnostics(self) -> str:
        """The message prefixed by the document's source, then one line per problem."""
        head = f"{self.source}: {self.message}" if self.source else self.message
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class AuthorityError(Error):
    """The authority refused a request, grant, amendment or approval as malformed (400).

    A decision that was made and said no is its subclass :class:`PolicyDenied` (403)."""

    code = "authority_error"
    status = 400


@dataclass(frozen=True)
class Denial:
    """Why a decision said no: the rule and what is missing."""

    rule: str
    missing: str


class PolicyDenied(AuthorityError):
    """A decision said no. ``reasons`` say which rule denied and what is missing."""

    status = 403
    code = "policy_denied"

    def __init__(self, message: str, *, reasons: Sequence[Denial] = ()) -> None:
        super().__init__(message)
        self.reasons = tuple(reasons)

    def details(self) -> dict[str, Any]:
        """Which rule denied, and what is missing, for each reason."""
        out = super().details()
        if self.reasons:
            out["reasons"] = [{"rule": r.rule, "missing": r.missing} for r in self.reasons]
        return out

    def diagnostics(self) -> str:
        """The message, then one line per denying rule with what it is missing."""
        return "\n".join([self.message, *(f"  {r.rule}: {r.missing}" for r in self.reasons)])


class ApprovalError(AuthorityError):
    """An approval is malformed, signed by a key that is not the approver's, for another
    request, or replayed (422); also an override or delegation the usage rules refuse."""

    code = "invalid_approval"
    status = 422


class WitnessError(Error):
    """The witness protocol (C2SP tlog-witness) failed: a witness refused a checkpoint, sent a
    cosignature that does not verify, or could not be reached."""

    code = "witness_error"


class UpstreamError(Error):
    """A model upstream behind the gateway failed or answered outside OpenAI's wire format
    (502: the gateway is fine, what it forwards to is not)."""

    status = 502
    code = "upstream_error"


class MonitorError(Error):
    """A detector could not score a text (a model tier unreachable, a package missing).

    Monitors that gate something fail closed on it: an unscored text is not cleared."""

    code = "monitor_error"


class CustodyError(Error):
    """The custody registry refused an operation on a finding: a state it cannot move from, an
    escrow or disclosure clock that does not allow it yet, an export that cannot be made."""

    code = "custody_error"
    status = 400


class AuditError(Error):
    """A loyalty audit cannot run or report as asked (a refused probe, a state file from
    another run, a negative without the power to back it)."""

    code = "audit_error"
    status = 400


class ProvenanceError(Error):
    """The model registry refused something: an unsigned or wrongly signed attestation, an
    unregistered or unapproved input, a lineage with a cycle or a missing link."""

    status = 422
    code = "provenance_refused"


class UsageError(Error):
    """A usage figure, rule or override was asked for with bad input, or cannot be given."""

    code = "usage_error"
    status = 400


class DrillError(Error):
    """A drill scenario is malformed, or a drill cannot run against the deployment asked."""

    code = "drill_error"
    status = 400
