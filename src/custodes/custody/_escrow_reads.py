"""Escrow reads and reveal: the escrowed details, to a reader with a grant of exploit-details,
and the opening of a finding's commitment once its details are due. The read or reveal is
logged before anything is decrypted or returned (invariant 1)."""

from __future__ import annotations

import hashlib

from sqlalchemy import insert, select, update

from custodes.custody import _entries as E
from custodes.custody._cases import _READ, EXPLOIT_DETAILS, CaseRecords
from custodes.custody._commitment import SALT_BYTES, commit_details
from custodes.custody._errors import EscrowIntegrityError
from custodes.custody._escrow import Sealed
from custodes.custody._model import Revealed
from custodes.custody._protocols import HeldGrant
from custodes.custody._tables import custody_escrow, custody_events, custody_findings
from custodes.errors import CustodyError, PolicyDenied
from custodes.log import Entry, format_time
from custodes.store import writer

__all__ = ["EscrowReads"]


class EscrowReads(CaseRecords):
    """Reading escrowed details and revealing a finding's commitment."""

    def read_details(self, finding_id: str, *, reader: str, purpose: str = "") -> bytes:
        """Return the escrowed details to ``reader``, who needs a grant of exploit-details.

        The read is appended to the log, naming the reader and the grant, BEFORE anything is
        decrypted; if the append fails there is no read.

        Raises:
            PolicyDenied: unknown principal, no grant, or no authority configured (fail
                closed); each refusal is logged.
            NotFoundError: no such finding.
            LogWriteError: the read could not be logged, so it did not happen.
            EscrowIntegrityError: the stored ciphertext was tampered with.
        """
        self._known("escrow-read", reader, finding_id)
        grant = self._grant("escrow-read", reader, finding_id)
        now = self.clock.now()
        with self._lock:
            self.get(finding_id)
            sealed = self._sealed(finding_id)
            body = E.EscrowReadBody(
                finding_id=finding_id, reader=reader, grant=grant.id, purpose=purpose
            )
            self._append_event(
                finding_id,
                _READ,
                now,
                reader,
                purpose,
                Entry.create(E.ESCROW_READ, time=now, principal=reader, body=body),
            )
        plaintext = self.kek.open(finding_id, sealed)
        return plaintext[SALT_BYTES:]

    def _grant(self, action: str, principal: str, finding_id: str) -> HeldGrant:
        """The authority's grant of exploit-details for ``finding_id``.

        Raises:
            PolicyDenied: none, or no authority configured (logged).
        """
        if self.authority is None:
            # Fail closed: without an authority nobody can hold the quorum the constitution
            # demands for exploit details.
            self._deny(
                action,
                principal,
                finding_id,
                PolicyDenied("escrowed details cannot be read: no authority is configured"),
            )
        try:
            return self.authority.authorize(principal, EXPLOIT_DETAILS, resource=finding_id)
        except PolicyDenied as exc:
            self._deny(action, principal, finding_id, exc)

    def _sealed(self, finding_id: str) -> Sealed:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(custody_escrow).where(custody_escrow.c.finding_id == finding_id)
            ).first()
        if row is None:
            raise EscrowIntegrityError(f"finding {finding_id} has no escrowed details")
        sealed = Sealed(row.kek_id, bytes(row.wrapped_key), bytes(row.ciphertext))
        if sealed.ciphertext_sha256 != row.ciphertext_sha256:
            raise EscrowIntegrityError(
                f"the escrowed ciphertext of {finding_id} does not match its recorded digest"
            )
        return sealed

    # --- reveal ------------------------------------------------------------------------------

    def reveal(self, finding_id: str, *, principal: str, early: bool = False) -> Revealed:
        """Open the finding's commitment: publish the salt and the details.

        The finder's organisation or a coordinator reveals, once the disclosure clock says full
        details are due; ``early`` reveals before that and also needs a grant of
        exploit-details for the finding.

        Raises:
            CustodyError: details are not yet due (and not ``early``).
            PolicyDenied: not a party that may reveal, or ``early`` without a grant (logged).
            NotFoundError: no finding visible to ``principal`` (logged).
            EscrowIntegrityError: the escrow was tampered with.
            LogWriteError: the reveal could not be logged, so nothing is revealed.
        """
        now = self.clock.now()
        with self._lock:
            access, finding = self._case("reveal", finding_id, principal)
            self._require(
                "reveal", access, principal, finding, access.required_for_reveal(), "reveal"
            )
            schedule = self.schedule(finding)
            due = schedule is not None and now >= schedule.details_at
            if finding.revealed_at is None and not due:
                if not early:
                    when = (
                        "the vendor has not been notified"
                        if schedule is None
                        else f"details are due {format_time(schedule.details_at)}"
                    )
                    raise CustodyError(
                        f"{finding_id} cannot be revealed yet: {when}",
                        hint="to reveal before then, ask for an early reveal (`--early`, or "
                        '"early": true over HTTP); it needs a grant of exploit-details for '
                        "this finding",
                    )
                self._grant("reveal", principal, finding_id)
            plaintext = self.kek.open(finding_id, self._sealed(finding_id))
            salt, details = plaintext[:SALT_BYTES], plaintext[SALT_BYTES:]
            if commit_details(details, salt=salt).hex != finding.commitment:
                raise EscrowIntegrityError(
                    f"the escrow of {finding_id} does not open its logged commitment"
                )
            body = E.RevealBody(
                finding_id=finding_id,
                commitment=finding.commitment,
                salt=salt.hex(),
                details_sha256=hashlib.sha256(details).hexdigest(),
                details_bytes=len(details),
            )
            appended = self.log.append(
                Entry.create(E.REVEAL, time=now, principal=principal, body=body)
            )
            with writer(self.engine).begin() as conn:
                conn.execute(
                    update(custody_findings)
                    .where(custody_findings.c.id == finding_id)
                    .values(revealed_at=finding.revealed_at or now)
                )
                conn.execute(
                    insert(custody_events).values(
                        finding_id=finding_id,
                        kind="revealed",
                        at=now,
                        principal=principal,
                        note="",
                        log_index=appended.index,
                    )
                )
        return Revealed(finding_id, finding.commitment, salt.hex(), details, appended.index)
