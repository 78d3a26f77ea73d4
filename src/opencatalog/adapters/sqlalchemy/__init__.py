"""SQL storage on SQLAlchemy Core: SQLite for the embedded catalog, PostgreSQL to scale out.

Registered in the ``opencatalog.storage`` entry-point group as ``sqlite`` and ``postgresql``
(``SqlAlchemyStorage.from_url``). Importing this package connects to nothing.
"""

from __future__ import annotations

from .jobs import SqlJobQueue
from .storage import SqlAlchemyStorage, SqlAlchemyUnitOfWork

__all__ = ["SqlAlchemyStorage", "SqlAlchemyUnitOfWork", "SqlJobQueue"]
