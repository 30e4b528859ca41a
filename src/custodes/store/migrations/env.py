"""Alembic environment: the engine comes from the caller (custodes.store.migrate)."""

from alembic import context

import custodes.store.tables  # noqa: F401  (registers every package's tables on metadata)
from custodes.store._metadata import metadata

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=engine.dialect.name == "sqlite",
    )
    context.run_migrations()
