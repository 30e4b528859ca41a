"""Every package's tables on ``custodes.store.metadata``, for tests that compare the schema.

``store`` imports no domain package (architecture.md's layers), so a package's tables are on the
shared metadata only once the package is imported. The tests that compare the migrated schema
with the definitions stand where the top layer does and import every package, found by walking
``custodes`` rather than from a list, so a new package's tables cannot be left out.
"""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import MetaData

import custodes
from custodes.store import metadata


def every_table() -> MetaData:
    """Imports every ``custodes`` subpackage and returns the metadata holding all their tables."""
    for info in pkgutil.iter_modules(custodes.__path__, prefix="custodes."):
        if info.ispkg:
            importlib.import_module(info.name)
    return metadata
