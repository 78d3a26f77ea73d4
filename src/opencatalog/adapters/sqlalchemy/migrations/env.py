"""Alembic environment of the opencatalog SQL schema.

Alembic loads this file when :func:`opencatalog.adapters.sqlalchemy.migrations.upgrade` (and
so ``SqlAlchemyStorage.initialize()``) runs a command. The caller passes an open connection
in ``config.attributes["connection"]`` and owns its transaction: every migration runs inside
it, so an upgrade is all or nothing (SQLite and PostgreSQL both have transactional DDL).

Offline mode (``alembic upgrade --sql``) renders the SQL for the URL in the
``sqlalchemy.url`` main option instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from opencatalog.adapters.sqlalchemy.tables import metadata


def _run_offline() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        _run_offline()
        return
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "opencatalog migrations run on a connection handed over by "
            "SqlAlchemyStorage.initialize() (config.attributes['connection'])"
        )
    _run_online(connection)


_main()
