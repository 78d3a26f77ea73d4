"""opencatalog-postgres: a PostgreSQL full-text search index for opencatalog.

Install it next to opencatalog and name it by URL; it registers itself in the
``opencatalog.search`` entry-point group under ``postgresql``::

    import opencatalog
    cat = opencatalog.open_catalog(
        storage="postgresql+psycopg://app@db.example.org/catalog",
        search="postgresql://app@db.example.org/catalog?table_prefix=cat1_",
    )

URL: ``postgresql://[user[:password]@][host][:port]/dbname[?param=value&...]`` (also
``postgres://`` and ``postgresql+psycopg://``). These query parameters are options of the index
(the rest go to libpq: ``sslmode``, ``connect_timeout``, ``options=-c statement_timeout=5s``...):

``table_prefix``
    prefix of the index's tables (``<prefix>search_document``, ``<prefix>search_resource``,
    ``<prefix>search_content``, ``<prefix>search_meta``), so several catalogs can share a
    database; default none.
``pool_size`` / ``pool_timeout``
    connections per process (default 4) and how long a call waits for one (default 30 s).
``cache_size``
    faceted result pages cached per process until the next write of any process (default 64;
    0 disables).
``work_mem``
    PostgreSQL ``work_mem`` of the index's sessions (default ``64MB``).
``keep_newer``
    ``true``: never replace a document by one with an older ``metadata_modified``.

Matching follows :mod:`opencatalog.domain.search` exactly: text is tokenised in Python with the
domain's tokeniser and stored as ``tsvector`` literals (PostgreSQL never parses it), phrases use
``<->`` within one value, prefixes ``:*``; keyword fields are plain and array columns; facets
are ``GROUP BY`` counts over the matching rows. The resources and contents indices are tables
of their own with the same ``tsvector`` form, replaced per dataset and per resource.

``rebuilding()`` fills tables beside the live ones and swaps them in by renaming, in one
transaction: readers see the old index or the new one, never an empty one. Tables missing from
an installation of an earlier release are created when it is opened, and the tables of a
rebuild whose process died are dropped.
"""

from opencatalog_postgres.index import PostgresSearchIndex

__all__ = ["PostgresSearchIndex"]
