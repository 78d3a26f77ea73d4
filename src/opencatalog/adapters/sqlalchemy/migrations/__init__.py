"""Schema migrations of the SQL storage, run programmatically with Alembic.

The Alembic environment (``env.py``, ``script.py.mako``, ``versions/``) ships inside the
package; nothing here needs an ``alembic.ini``. The helpers take an open SQLAlchemy
connection and leave its transaction to the caller (see
:meth:`opencatalog.adapters.sqlalchemy.SqlAlchemyStorage.initialize`).

To write a new migration (developers of opencatalog)::

    python -c "from opencatalog.adapters.sqlalchemy.migrations import new_revision; \\
               new_revision('add something')"

then write its DDL by hand in the new file and mirror it in ``tables.py``.
"""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

__all__ = [
    "alembic_config",
    "current_revision",
    "head_revision",
    "new_revision",
    "script_location",
    "upgrade",
]


def script_location() -> str:
    """The directory holding ``env.py`` and ``versions/`` inside the installed package."""
    return str(files(__name__))


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the shipped environment, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", script_location())
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest migration shipped with this version of opencatalog."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The migration the database behind ``connection`` is at; None if it has no schema."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` inside the connection's current transaction.

    The caller commits (or rolls back) afterwards; nothing is committed here.
    """
    command.upgrade(alembic_config(connection), revision)


def new_revision(message: str) -> None:
    """Create an empty migration file in ``versions/`` (for developers of opencatalog)."""
    command.revision(alembic_config(), message=message)
