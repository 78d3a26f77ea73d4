"""The tables of the PostgreSQL search index and their creation.

``<prefix>search_document`` holds one row per document (see ``documents.COLUMNS``);
``<prefix>search_meta`` holds the schema version and the *generation*, a counter every write
transaction increments, which keys the query cache of every process sharing the index.
Creation is idempotent (``IF NOT EXISTS``) and serialised between processes with a
transaction-level advisory lock.
"""

from __future__ import annotations

import re

from attrs import frozen
from opencatalog.errors import ConfigurationError

__all__ = ["SCHEMA_VERSION", "Tables", "quote_ident"]

SCHEMA_VERSION = 1
"""Bumped when the stored form changes; an index of another version must be rebuilt."""

_PREFIX_RE = re.compile(r"(?:[a-z_][a-z0-9_]{0,29})?\Z")


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@frozen
class Tables:
    """The quoted names of one index's tables, from a table prefix (``[a-z_][a-z0-9_]*``,
    at most 30 characters, or empty)."""

    prefix: str

    def __attrs_post_init__(self) -> None:
        if not _PREFIX_RE.match(self.prefix):
            raise ConfigurationError(
                f"invalid table_prefix {self.prefix!r}: use up to 30 characters of "
                "[a-z0-9_], not starting with a digit"
            )

    @property
    def document_name(self) -> str:
        return f"{self.prefix}search_document"

    @property
    def document(self) -> str:
        return quote_ident(self.document_name)

    @property
    def meta(self) -> str:
        return quote_ident(f"{self.prefix}search_meta")

    @property
    def staging(self) -> str:
        """The session's temporary staging table (always in ``pg_temp``)."""
        return "pg_temp." + quote_ident(f"{self.prefix}search_staging")

    @property
    def lock_key(self) -> str:
        return f"opencatalog_postgres:{self.prefix}"

    @property
    def text_index(self) -> str:
        """The GIN index of ``text_tsv``."""
        return self._index("text_tsv")

    def _index(self, suffix: str) -> str:
        return quote_ident(f"{self.document_name}_{suffix}")

    def ddl(self) -> list[str]:
        """The statements creating the tables and indexes when missing."""
        doc = self.document
        return [
            f"""CREATE TABLE IF NOT EXISTS {doc} (
                id text COLLATE "C" PRIMARY KEY,
                name text COLLATE "C" NOT NULL,
                title text NOT NULL,
                title_sort text COLLATE "C" NOT NULL,
                notes text NOT NULL,
                organization text COLLATE "C",
                owner_org text COLLATE "C",
                license_id text COLLATE "C",
                dataset_type text COLLATE "C" NOT NULL,
                capacity text COLLATE "C" NOT NULL,
                state text COLLATE "C" NOT NULL,
                tags text[] COLLATE "C" NOT NULL,
                groups text[] COLLATE "C" NOT NULL,
                res_format text[] COLLATE "C" NOT NULL,
                res_url text[] COLLATE "C" NOT NULL,
                labels text[] COLLATE "C" NOT NULL,
                metadata_created timestamptz NOT NULL,
                metadata_modified timestamptz NOT NULL,
                text_tsv tsvector NOT NULL,
                text_exact text,
                rank_tsv tsvector NOT NULL,
                title_tokens text NOT NULL,
                notes_tokens text NOT NULL,
                res_name_tokens text NOT NULL,
                res_description_tokens text NOT NULL,
                author_tokens text NOT NULL,
                maintainer_tokens text NOT NULL,
                extras_tokens jsonb
            ) WITH (toast_tuple_target = 1024)""",
            f"CREATE INDEX IF NOT EXISTS {self._index('text_tsv')} ON {doc} USING gin (text_tsv)",
            f"CREATE INDEX IF NOT EXISTS {self._index('tags')} ON {doc} USING gin (tags)",
            f"CREATE INDEX IF NOT EXISTS {self._index('groups')} ON {doc} USING gin (groups)",
            f"CREATE INDEX IF NOT EXISTS {self._index('labels')} ON {doc} USING gin (labels)",
            f"CREATE INDEX IF NOT EXISTS {self._index('name')} ON {doc} (name)",
            f"CREATE INDEX IF NOT EXISTS {self._index('modified')} ON {doc} (metadata_modified)",
            f"CREATE INDEX IF NOT EXISTS {self._index('created')} ON {doc} (metadata_created)",
            f"CREATE INDEX IF NOT EXISTS {self._index('organization')} "
            f"ON {doc} USING hash (organization)",
            f"CREATE INDEX IF NOT EXISTS {self._index('owner_org')} "
            f"ON {doc} USING hash (owner_org)",
            f"CREATE INDEX IF NOT EXISTS {self._index('license_id')} "
            f"ON {doc} USING hash (license_id)",
            f"""CREATE TABLE IF NOT EXISTS {self.meta} (
                key text PRIMARY KEY,
                value bigint NOT NULL
            )""",
        ]

    def storage_ddl(self) -> list[str]:
        """Run once, when the table is created: the columns every query reads stay in the
        row (``STORAGE MAIN``: moved to TOAST only as a last resort), so facets, filters,
        sorts and ranks never fetch TOAST; long text goes out of line first."""
        hot = (
            "name",
            "title_sort",
            "organization",
            "owner_org",
            "license_id",
            "dataset_type",
            "capacity",
            "state",
            "tags",
            "groups",
            "res_format",
            "labels",
            "rank_tsv",
        )
        return [
            f"ALTER TABLE {self.document} "
            + ", ".join(f"ALTER COLUMN {column} SET STORAGE MAIN" for column in hot)
        ]

    def staging_ddl(self) -> str:
        """The per-session table ``index()`` copies rows into before upserting them."""
        return (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.staging} "
            f"(LIKE {self.document} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
