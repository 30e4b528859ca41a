"""PostgreSQL triggers that announce a table's changes with NOTIFY, for the other replicas.

A replica that LISTENs on the channel learns of a committed change without polling: PostgreSQL
delivers a notification only when the transaction that sent it commits, never for a rolled-back
one, and folds identical notifications of one transaction into one (PostgreSQL documentation,
``NOTIFY``). SQLite has no notifications; the migrations that call these create nothing there.

A migration's behaviour must not change once released: these helpers emit exactly the
statements the first migrations wrote by hand (tests/unit/store/test_notify.py pins them).
"""

from __future__ import annotations

from alembic import op

__all__ = ["create_notify_trigger", "drop_notify_trigger", "notify_trigger_sql"]


def notify_trigger_sql(
    *, function: str, channel: str, payload: str, trigger: str, table: str, events: str
) -> tuple[str, str]:
    """The two statements that make ``table`` send ``NOTIFY channel, payload`` per row.

    Args:
        function: the PL/pgSQL trigger function's name.
        channel: the channel replicas LISTEN on.
        payload: an SQL expression over ``NEW`` that is text (the row's key, e.g. ``NEW.id``).
        trigger: the trigger's name.
        table: the table whose rows are announced.
        events: the rows' events that fire it (``INSERT`` or ``INSERT OR UPDATE``).

    Returns:
        ``CREATE FUNCTION`` and ``CREATE TRIGGER``, in the order they must run.
    """
    # AFTER, not BEFORE: the notification names a row that is written (a BEFORE trigger's
    # row can still be changed or refused by a later trigger or constraint).
    function_sql = f"""
        CREATE FUNCTION {function}() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{channel}', {payload});
            RETURN NEW;
        END
        $$ LANGUAGE plpgsql
        """
    trigger_sql = (
        f"CREATE TRIGGER {trigger} AFTER {events} ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()"
    )
    return function_sql, trigger_sql


def create_notify_trigger(
    *, function: str, channel: str, payload: str, trigger: str, table: str, events: str
) -> None:
    """In a migration, on PostgreSQL only: make ``table`` announce its rows (see
    :func:`notify_trigger_sql` for the arguments); on any other database, nothing."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in notify_trigger_sql(
        function=function,
        channel=channel,
        payload=payload,
        trigger=trigger,
        table=table,
        events=events,
    ):
        op.execute(statement)


def drop_notify_trigger(*, function: str, trigger: str, table: str) -> None:
    """In a migration's downgrade, on PostgreSQL only: drop what
    :func:`create_notify_trigger` made, the trigger before the function it calls."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP TRIGGER {trigger} ON {table}")
    op.execute(f"DROP FUNCTION {function}()")
