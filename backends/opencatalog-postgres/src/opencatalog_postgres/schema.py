"""The tables of the PostgreSQL search index and their creation.

One index is four tables, named from a table prefix:

* ``<prefix>search_document``: one row per dataset (the packages index, ``documents.COLUMNS``);
* ``<prefix>search_resource``: one row per resource (the resources index,
  ``documents.RESOURCE_COLUMNS``);
* ``<prefix>search_content``: one row per chunk of extracted text (the contents index,
  ``documents.CONTENT_COLUMNS``);
* ``<prefix>search_meta``: the schema version and the *generation*, a counter every write
  transaction increments, which keys the query cache of every process sharing the index.

Creation is idempotent (``IF NOT EXISTS``) and serialised between processes with a
transaction-level advisory lock, so an installation made before the resources and contents
indices existed gains their tables on its next open.

A rebuild (``PostgresSearchIndex.rebuilding``) fills a second set of the three document tables,
named with the suffix ``_new`` (:meth:`Tables.building`), and swaps it in by renaming tables and
indexes in one transaction. Every index and constraint is named ``<table>_<suffix>`` so the swap
can rename them all back to the live names (:meth:`Tables.renames`).
"""

from __future__ import annotations

import re

from attrs import frozen
from opencatalog.errors import ConfigurationError

__all__ = ["BUILD_SUFFIX", "SCHEMA_VERSION", "Tables", "quote_ident"]

SCHEMA_VERSION = 1
"""Bumped when the stored form of an existing table changes; an index of another version must
be rebuilt. Tables added later (resources, contents) are created on open instead."""

BUILD_SUFFIX = "_new"
"""Ends the names of the tables a rebuild fills before they are swapped in."""

_PREFIX_RE = re.compile(r"(?:[a-z_][a-z0-9_]{0,29})?\Z")

# (table kind, index suffix, definition after "ON <table>"); the primary keys are named
# "<table>_pkey" by their CREATE TABLE
_INDEXES: tuple[tuple[str, str, str], ...] = (
    ("document", "text_tsv", "USING gin (text_tsv)"),
    ("document", "tags", "USING gin (tags)"),
    ("document", "groups", "USING gin (groups)"),
    ("document", "labels", "USING gin (labels)"),
    ("document", "name", "(name)"),
    ("document", "modified", "(metadata_modified)"),
    ("document", "created", "(metadata_created)"),
    ("document", "organization", "USING hash (organization)"),
    ("document", "owner_org", "USING hash (owner_org)"),
    ("document", "license_id", "USING hash (license_id)"),
    ("resource", "text_tsv", "USING gin (text_tsv)"),
    ("resource", "package_id", "(package_id)"),
    ("content", "text_tsv", "USING gin (text_tsv)"),
    ("content", "resource_id", "(resource_id)"),
    ("content", "package_id", "(package_id)"),
)

KINDS = ("document", "resource", "content")
"""The document tables, in the order every statement that locks several of them takes them."""


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@frozen
class Tables:
    """The quoted names of one index's tables, from a table prefix (``[a-z_][a-z0-9_]*``,
    at most 30 characters, or empty). ``suffix`` is empty for the live tables and
    ``BUILD_SUFFIX`` for the tables of a rebuild (see :meth:`building`)."""

    prefix: str
    suffix: str = ""

    def __attrs_post_init__(self) -> None:
        if not _PREFIX_RE.match(self.prefix):
            raise ConfigurationError(
                f"invalid table_prefix {self.prefix!r}: use up to 30 characters of "
                "[a-z0-9_], not starting with a digit"
            )

    def building(self) -> Tables:
        """The tables a rebuild of this index fills (the meta table stays shared)."""
        return Tables(self.prefix, BUILD_SUFFIX)

    def live(self) -> Tables:
        return Tables(self.prefix)

    # -- names ---------------------------------------------------------------------------

    def name_of(self, kind: str) -> str:
        """The unquoted name of the ``document``, ``resource`` or ``content`` table."""
        return f"{self.prefix}search_{kind}{self.suffix}"

    @property
    def document_name(self) -> str:
        return self.name_of("document")

    @property
    def document(self) -> str:
        return quote_ident(self.document_name)

    @property
    def resource(self) -> str:
        return quote_ident(self.name_of("resource"))

    @property
    def content(self) -> str:
        return quote_ident(self.name_of("content"))

    @property
    def meta(self) -> str:
        return quote_ident(f"{self.prefix}search_meta")

    def staging(self, kind: str = "document") -> str:
        """The session's temporary staging table for ``kind`` (always in ``pg_temp``)."""
        name = "search_staging" if kind == "document" else f"search_{kind}_staging"
        return "pg_temp." + quote_ident(f"{self.prefix}{name}{self.suffix}")

    @property
    def lock_key(self) -> str:
        """The advisory lock key serialising table creation between processes."""
        return f"opencatalog_postgres:{self.prefix}"

    @property
    def rebuild_key(self) -> str:
        """The advisory lock key a rebuild holds for its whole duration (on a session of its
        own, so a crashed rebuild releases it with its connection)."""
        return f"opencatalog_postgres:{self.prefix}:rebuild"

    def index_name(self, kind: str, suffix: str) -> str:
        return f"{self.name_of(kind)}_{suffix}"

    @property
    def text_index(self) -> str:
        """The GIN index of the packages table's ``text_tsv``."""
        return quote_ident(self.index_name("document", "text_tsv"))

    def text_indexes(self) -> list[str]:
        """The GIN indexes of the three document tables (quoted)."""
        return [quote_ident(self.index_name(kind, "text_tsv")) for kind in KINDS]

    def document_tables(self) -> list[str]:
        """The three document tables (quoted), in ``KINDS`` order."""
        return [quote_ident(self.name_of(kind)) for kind in KINDS]

    # -- statements ----------------------------------------------------------------------

    def _table_ddl(self, kind: str) -> str:
        table = quote_ident(self.name_of(kind))
        pkey = quote_ident(self.index_name(kind, "pkey"))
        if kind == "document":
            return f"""CREATE TABLE IF NOT EXISTS {table} (
                id text COLLATE "C" CONSTRAINT {pkey} PRIMARY KEY,
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
                extras_tokens jsonb,
                source jsonb
            ) WITH (toast_tuple_target = 1024)"""
        if kind == "resource":
            return f"""CREATE TABLE IF NOT EXISTS {table} (
                id text COLLATE "C" CONSTRAINT {pkey} PRIMARY KEY,
                package_id text COLLATE "C" NOT NULL,
                name text NOT NULL,
                description text NOT NULL,
                format text NOT NULL,
                url text NOT NULL,
                position integer NOT NULL,
                text_tsv tsvector NOT NULL,
                text_exact text
            )"""
        return f"""CREATE TABLE IF NOT EXISTS {table} (
            id text COLLATE "C" CONSTRAINT {pkey} PRIMARY KEY,
            resource_id text COLLATE "C" NOT NULL,
            chunk integer NOT NULL,
            package_id text COLLATE "C" NOT NULL,
            content_type text NOT NULL,
            text text NOT NULL,
            text_tsv tsvector NOT NULL,
            text_exact text
        )"""

    def ddl(self, kinds: tuple[str, ...] = KINDS, *, meta: bool = True) -> list[str]:
        """The statements creating the tables of ``kinds`` (and the meta table) and their
        indexes when missing."""
        statements = [self._table_ddl(kind) for kind in kinds]
        statements += [
            f"CREATE INDEX IF NOT EXISTS {quote_ident(self.index_name(kind, suffix))} "
            f"ON {quote_ident(self.name_of(kind))} {definition}"
            for kind, suffix, definition in _INDEXES
            if kind in kinds
        ]
        if meta:
            statements.append(
                f"""CREATE TABLE IF NOT EXISTS {self.meta} (
                    key text PRIMARY KEY,
                    value bigint NOT NULL
                )"""
            )
        return statements

    def upgrade_ddl(self) -> list[str]:
        """The statements bringing a packages table of an earlier release up to date (each a
        no-op when it is)."""
        return [f"ALTER TABLE {self.document} ADD COLUMN IF NOT EXISTS source jsonb"]

    def storage_ddl(self, kinds: tuple[str, ...] = KINDS) -> list[str]:
        """Run once, when the tables are created: the columns every query reads stay in the
        row (``STORAGE MAIN``: moved to TOAST only as a last resort), so facets, filters,
        sorts and ranks of the packages table never fetch TOAST; long text goes out of line
        first. Resource rows are small; content rows always go out of line (and their
        ``text`` is only read for highlights), so both keep the defaults."""
        if "document" not in kinds:
            return []
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

    def staging_ddl(self) -> list[str]:
        """The per-session tables the writes copy rows into before upserting them."""
        return [
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.staging(kind)} "
            f"(LIKE {quote_ident(self.name_of(kind))} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            for kind in KINDS
        ]

    def drop_ddl(self) -> str:
        """The statement dropping the three document tables (and their indexes) if present."""
        return "DROP TABLE IF EXISTS " + ", ".join(self.document_tables())

    def renames(self) -> list[str]:
        """For the tables of a rebuild: the statements giving them and their indexes and
        primary keys the live names (run after the live tables are dropped)."""
        if not self.suffix:
            raise ValueError("the live tables have their names already")
        live = self.live()
        statements = []
        for kind in KINDS:
            suffixes = ["pkey", *(suffix for k, suffix, _ in _INDEXES if k == kind)]
            statements += [
                f"ALTER INDEX {quote_ident(self.index_name(kind, suffix))} "
                f"RENAME TO {quote_ident(live.index_name(kind, suffix))}"
                for suffix in suffixes
            ]
            statements.append(
                f"ALTER TABLE {quote_ident(self.name_of(kind))} "
                f"RENAME TO {quote_ident(live.name_of(kind))}"
            )
        return statements
