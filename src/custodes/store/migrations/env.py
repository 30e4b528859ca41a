"""Alembic environment: the engine and the metadata come from the caller (custodes.store.migrate).

Nothing here imports a domain package: the version scripts carry their own table definitions,
and ``target_metadata`` (used only to compare the schema with the definitions) holds the tables
of the packages the caller imported.
"""

from alembic import context

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=config.attributes["target_metadata"],
        render_as_batch=engine.dialect.name == "sqlite",
    )
    context.run_migrations()
