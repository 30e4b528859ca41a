"""What the drill's attacker holds: signing keys, API keys, the log operator's key.

A drill plays people of the constitution, so it needs their credentials as an attacker who stole
them would have them. For the demo they are the published demo keys; for a staging deployment
the operator hands the drill its own test principals' keys. Nothing here is ever sent: only
signatures made with the keys, and the API keys as bearer tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from custodes.authority import SigningKey
from custodes.errors import DrillError, Error
from custodes.log import NoteSigner

__all__ = ["Credentials", "KeyIssuer", "LocalModelAccess"]

KeyIssuer = Callable[[str], str]
"""Issues an API key to a principal (the operator's ``custodes keys create``) and returns it."""


@dataclass(frozen=True)
class LocalModelAccess:
    """The operator's access to a local model server: its base URL and token."""

    url: str
    token: str


@dataclass
class Credentials:
    """The keys a drill may use.

    Args:
        keys_dir: a folder of Ed25519 private keys, ``<name>.key`` for principal ``name@org``
            (or ``<name@org>.key``), as ``custodes keygen`` writes them.
        api_keys: API keys by principal.
        issue_api_key: issues a fresh API key to a principal when none is given (the CLI passes
            one when it can reach the deployment's database); None: only ``api_keys``.
        revoke_api_keys: revokes every API key of a principal (the operator's
            ``custodes keys revoke``); None: a step that needs it is not runnable.
        log_signer: the log operator's signing key (rollback and fork drills).
        staging_token: the operator's token of a staging deployment's clock (its
            ``staging-clock.token``), for the steps that let time pass.
        local_model: the model-serving operator's access to a staging deployment's local
            model server (``url`` and ``token``, from its ``local-model.json``), for the steps
            that plant a loyalty in the served weights.
    """

    keys_dir: Path | None = None
    api_keys: Mapping[str, str] = field(default_factory=dict)
    issue_api_key: KeyIssuer | None = None
    revoke_api_keys: Callable[[str], None] | None = None
    log_signer: NoteSigner | None = None
    staging_token: str | None = None
    local_model: LocalModelAccess | None = None
    _issued: dict[str, str] = field(default_factory=dict, repr=False)
    _signing: dict[str, SigningKey | None] = field(default_factory=dict, repr=False)

    def signing_key(self, principal: str, public_key: str | None) -> SigningKey | None:
        """``principal``'s private key, if the drill holds it and it is the one the
        constitution names (``public_key``).

        Raises:
            DrillError: a key file exists but cannot be read.
        """
        if principal not in self._signing:
            self._signing[principal] = self._read_key(principal, public_key)
        return self._signing[principal]

    def _read_key(self, principal: str, public_key: str | None) -> SigningKey | None:
        """The key file of ``principal`` in ``keys_dir`` (``id.key`` or ``name.key``) whose
        public key is the one the constitution names; None without one.

        Raises:
            DrillError: a key file cannot be read.
        """
        if self.keys_dir is None or public_key is None:
            return None
        for name in (f"{principal}.key", f"{principal.split('@', 1)[0]}.key"):
            path = self.keys_dir / name
            if path.is_file():
                try:
                    key = SigningKey.from_file(path)
                except Error as exc:
                    raise DrillError(f"cannot read the key {path}: {exc.message}") from None
                # Another principal's file of the same short name is not this principal's key.
                if key.public_key == public_key:
                    return key
        return None

    def api_key(self, principal: str) -> str | None:
        """An API key of ``principal``: given, or issued once for this drill."""
        if principal in self.api_keys:
            return self.api_keys[principal]
        if principal not in self._issued and self.issue_api_key is not None:
            self._issued[principal] = self.issue_api_key(principal)
        return self._issued.get(principal)

    def can_call(self, principal: str) -> bool:
        """Whether the drill has, or can get, an API key of ``principal``."""
        return principal in self.api_keys or self.issue_api_key is not None
