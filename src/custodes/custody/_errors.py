"""Errors of the custody registry, beneath :class:`custodes.errors.CustodyError`."""

from __future__ import annotations

from custodes.errors import CustodyError

__all__ = ["DuplicateFindingError", "EscrowIntegrityError", "TransitionError"]


class EscrowIntegrityError(CustodyError):
    """Escrowed ciphertext (or its wrapped key) failed authentication.

    AES-GCM refuses to decrypt anything that was altered, moved to another finding or
    wrapped under another key-encryption key, so tampering is reported, never decrypted into
    garbage.
    """

    status = 422
    code = "escrow_tampered"


class TransitionError(CustodyError):
    """A Vultron state change that the model does not allow from the current state."""

    status = 409
    code = "invalid_transition"

    def __init__(
        self, message: str, *, machine: str, current: str, requested: str, allowed: tuple[str, ...]
    ) -> None:
        super().__init__(message)
        self.machine = machine
        self.current = current
        self.requested = requested
        self.allowed = allowed

    def diagnostics(self) -> str:
        """The message, the refused transition and the states allowed from the current one."""
        allowed = ", ".join(self.allowed) if self.allowed else "none (final state)"
        return (
            f"{self.message}\n  {self.machine}: {self.current} -> {self.requested}"
            f"\n  allowed from {self.current}: {allowed}"
        )


class DuplicateFindingError(CustodyError):
    """A finding with the same fingerprint is already registered: ``existing_id`` is it."""

    status = 409
    code = "duplicate_finding"

    def __init__(self, message: str, *, existing_id: str, fingerprint: str) -> None:
        super().__init__(
            message,
            hint=f"add what is new to {existing_id} (an event or a note) instead of registering "
            "it again",
        )
        self.existing_id = existing_id
        self.fingerprint = fingerprint
