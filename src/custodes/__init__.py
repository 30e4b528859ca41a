"""custodes: checks and balances for frontier AI.

Entry points:

- the ``custodes`` command (:mod:`custodes.cli`), e.g. ``custodes serve --demo``;
- :func:`custodes.server.create_app` builds the HTTP server from
  :class:`custodes.config.Settings`;
- :mod:`custodes.log` holds the tamper-evident log (RFC 9162 Merkle tree, C2SP checkpoints);
- :mod:`custodes.constitution` and :mod:`custodes.authority` hold the policy and the
  multi-party approvals that open capabilities.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
