"""Imports every package's table module so that ``metadata`` knows all tables.

Each package that stores data adds one import here (and an Alembic branch of its own).
"""

import custodes.authority._tables  # noqa: F401
import custodes.constitution._tables  # noqa: F401
import custodes.custody._tables  # noqa: F401
import custodes.gateway._tables  # noqa: F401
import custodes.log._tables  # noqa: F401
import custodes.monitors._tables  # noqa: F401
import custodes.witness._tables  # noqa: F401
