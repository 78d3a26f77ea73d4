"""The nine repositories of the storage port over SQLAlchemy Core, and error translation.

Every repository of a unit of work shares one :class:`SqlContext`: the unit of work's
connection, its statements and the rules every write follows:

* driver errors never escape: a unique violation becomes
  :class:`~opencatalog.errors.AlreadyExists` with the field at fault (found from the
  constraint's name, see :data:`UNIQUE_FIELDS`), anything else from the driver or SQLAlchemy
  becomes :class:`~opencatalog.errors.BackendError`, chained with ``from``;
* a write that fails leaves no trace in the unit of work: writes of several statements (and
  every write on PostgreSQL, where an error would abort the whole transaction) run inside a
  savepoint, so the unit of work stays usable after a caught ``AlreadyExists``;
* writing in a ``write=False`` unit of work is refused (BackendError): on SQLite such a
  transaction does not hold the write lock, so a read-modify-write in it could lose updates.
"""

from __future__ import annotations

import builtins
import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

import attrs
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Delete,
    Executable,
    Insert,
    Select,
    Update,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    type_coerce,
    union,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.types import JSON, Text

from opencatalog.domain.files import HealthStatus, PipelineStatus, ResourceFile
from opencatalog.domain.model import (
    Activity,
    ApiToken,
    Dataset,
    Group,
    Membership,
    Resource,
    State,
    User,
    Vocabulary,
    utcnow,
)
from opencatalog.domain.permissions import Visibility
from opencatalog.errors import AlreadyExists, BackendError, Conflict, NotFound
from opencatalog.ports.storage import (
    ActivityRepository,
    DatasetFilter,
    DatasetRepository,
    GroupRepository,
    MembershipRepository,
    OutboxEntry,
    OutboxRepository,
    ResourceCriterion,
    ResourceFileRepository,
    TokenRepository,
    UserRepository,
    VocabularyRepository,
)

from . import mapping as m
from .tables import FREE_TAG, metadata
from .tables import activity as activity_t
from .tables import api_token as api_token_t
from .tables import dataset as dataset_t
from .tables import dataset_group as dataset_group_t
from .tables import dataset_resource as dataset_resource_t
from .tables import dataset_tag as dataset_tag_t
from .tables import grp as grp_t
from .tables import member as member_t
from .tables import outbox as outbox_t
from .tables import resource_files as resource_files_t
from .tables import usr as usr_t
from .tables import vocabulary as vocabulary_t

__all__ = [
    "UNIQUE_FIELDS",
    "SqlActivityRepository",
    "SqlContext",
    "SqlDatasetRepository",
    "SqlGroupRepository",
    "SqlMembershipRepository",
    "SqlOutboxRepository",
    "SqlResourceFileRepository",
    "SqlTokenRepository",
    "SqlUserRepository",
    "SqlVocabularyRepository",
    "Statements",
    "translate_error",
]

#: The input field at fault for each unique constraint (named by the tables' convention).
UNIQUE_FIELDS: Mapping[str, str] = {
    "pk_dataset": "id",
    "uq_dataset_name": "name",
    "pk_dataset_resource": "resources",
    "pk_dataset_tag": "tags",
    "pk_dataset_group": "groups",
    "pk_grp": "id",
    "uq_grp_name": "name",
    "pk_usr": "id",
    "uq_usr_name": "name",
    "pk_api_token": "id",
    "uq_api_token_token_hash": "token_hash",
    "pk_vocabulary": "id",
    "uq_vocabulary_name": "name",
    "pk_activity": "id",
    "pk_member": "user_id",
    "pk_outbox": "id",
    "pk_resource_files": "resource_id",
}

#: Largest number of bound values in one ``IN (...)`` list.
_CHUNK = 500

#: Bulk inserts of at least this many datasets use COPY on PostgreSQL.
_COPY_THRESHOLD = 20

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$")
_sqlite_columns_to_constraint: dict[str, str] = {}


def _sqlite_constraint_index() -> dict[str, str]:
    """``"table.col, table.col"`` (SQLite's way of naming a unique violation) to constraint."""
    if not _sqlite_columns_to_constraint:
        for table in metadata.tables.values():
            for constraint in table.constraints:
                columns = getattr(constraint, "columns", None)
                if columns is None or not isinstance(constraint.name, str):
                    continue
                key = ", ".join(f"{table.name}.{c.name}" for c in columns)
                _sqlite_columns_to_constraint[key] = constraint.name
    return _sqlite_columns_to_constraint


def _constraint_name(orig: BaseException | None) -> str | None:
    """The unique constraint a driver's integrity error names, if it names one."""
    diag = getattr(orig, "diag", None)
    if diag is not None:  # psycopg
        name = getattr(diag, "constraint_name", None)
        return name if isinstance(name, str) else None
    match = _SQLITE_UNIQUE.search(str(orig))
    if match is None:
        return None
    return _sqlite_constraint_index().get(match.group(1).strip())


def translate_error(exc: BaseException, *, noun: str = "object") -> Exception:
    """The opencatalog error for a SQLAlchemy or driver exception (to raise ``from exc``)."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    sqlstate = getattr(orig, "sqlstate", None)  # psycopg errors raised outside SQLAlchemy
    if isinstance(exc, sa_exc.IntegrityError) or (sqlstate or "").startswith("23"):
        field = UNIQUE_FIELDS.get(_constraint_name(orig) or "")
        if field == "resources":
            return AlreadyExists("A resource id of this dataset is already in use", field=field)
        if field is not None:
            return AlreadyExists(f"That {noun} {field} is already in use", field=field)
        return BackendError(f"Integrity error in storage: {orig}")
    if isinstance(exc, sa_exc.OperationalError) or sqlstate == "55P03":
        text = str(orig)
        if "locked" in text or "busy" in text or sqlstate == "55P03":
            return BackendError(f"The database is busy, try again: {text}")
        return BackendError(f"Database error: {text}")
    if isinstance(exc, sa_exc.DBAPIError) or sqlstate is not None:
        return BackendError(f"Database error: {orig}")
    return BackendError(f"Storage error: {exc}")


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Statements:
    """Statements built once per storage (per dialect) and shared by its units of work."""

    def __init__(self, dialect_name: str) -> None:
        self.dialect_name = dialect_name
        self.is_postgresql = dialect_name == "postgresql"
        #: Binds a datetime for plain SQL statements (Core statements use UtcDateTime).
        self.bind_datetime: Callable[[datetime], Any] = (
            m.postgresql_datetime if self.is_postgresql else m.sqlite_datetime
        )
        placeholder = "%s" if self.is_postgresql else "?"

        def plain_insert(table: str, columns: Sequence[str]) -> str:
            names = ", ".join(f'"{c}"' for c in columns)
            values = ", ".join([placeholder] * len(columns))
            return f'INSERT INTO "{table}" ({names}) VALUES ({values})'

        # Plain SQL inserts for the hot paths: no compilation, no per-row type processing.
        self.sql_insert_dataset = plain_insert("dataset", m.DATASET_COLUMNS)
        self.sql_insert_resource = plain_insert("dataset_resource", ("id", "dataset_id"))
        self.sql_insert_tag = plain_insert("dataset_tag", ("dataset_id", "vocabulary", "name"))
        self.sql_insert_group_link = plain_insert("dataset_group", ("dataset_id", "group_id"))
        self.sql_insert_activity = plain_insert("activity", m.ACTIVITY_COLUMNS)
        d = dataset_t.c
        self.dataset_by_id = select(d.doc).where(d.id == bindparam("id"))
        self.dataset_by_name = select(d.doc).where(d.name == bindparam("name"))
        self.dataset_by_id_locked = self.dataset_by_id.with_for_update()
        self.dataset_by_name_locked = self.dataset_by_name.with_for_update()
        self.dataset_by_resource = (
            select(d.doc)
            .join(dataset_resource_t, dataset_resource_t.c.dataset_id == d.id)
            .where(dataset_resource_t.c.id == bindparam("id"))
        )
        self.dataset_revision = select(d.revision).where(d.id == bindparam("id"))
        self.update_dataset = update(dataset_t).where(
            d.id == bindparam("b_id"), d.revision == bindparam("b_revision")
        )
        self.delete_dataset = delete(dataset_t).where(d.id == bindparam("id"))
        self.resource_ids = select(dataset_resource_t.c.id).where(
            dataset_resource_t.c.dataset_id == bindparam("id")
        )
        self.tag_keys = select(dataset_tag_t.c.vocabulary, dataset_tag_t.c.name).where(
            dataset_tag_t.c.dataset_id == bindparam("id")
        )
        self.group_ids = select(dataset_group_t.c.group_id).where(
            dataset_group_t.c.dataset_id == bindparam("id")
        )
        self.delete_resource = delete(dataset_resource_t).where(
            dataset_resource_t.c.id == bindparam("b_id"),
            dataset_resource_t.c.dataset_id == bindparam("b_dataset_id"),
        )
        self.delete_tag = delete(dataset_tag_t).where(
            dataset_tag_t.c.dataset_id == bindparam("b_dataset_id"),
            dataset_tag_t.c.vocabulary == bindparam("b_vocabulary"),
            dataset_tag_t.c.name == bindparam("b_name"),
        )
        self.delete_group_link = delete(dataset_group_t).where(
            dataset_group_t.c.dataset_id == bindparam("b_dataset_id"),
            dataset_group_t.c.group_id == bindparam("b_group_id"),
        )

        g = grp_t.c
        group_cols = [g[name] for name in m.GROUP_COLUMNS]
        self.group_by_id = select(*group_cols).where(g.id == bindparam("id"))
        self.group_by_name = select(*group_cols).where(g.name == bindparam("name"))
        self.group_columns = group_cols
        self.insert_group = insert(grp_t)
        self.update_group = update(grp_t).where(
            g.id == bindparam("b_id"), g.revision == bindparam("b_revision")
        )
        self.group_revision = select(g.revision).where(g.id == bindparam("id"))

        u = usr_t.c
        user_cols = [u[name] for name in m.USER_COLUMNS]
        self.user_columns = user_cols
        self.user_by_id = select(*user_cols).where(u.id == bindparam("id"))
        self.user_by_name = select(*user_cols).where(u.name == bindparam("name"))
        self.user_by_email = (
            select(*user_cols)
            .where(u.email_lower == bindparam("email"))
            .order_by(case((u.state == "active", 0), else_=1), u.created, u.id)
            .limit(1)
        )
        self.insert_user = insert(usr_t)
        self.update_user = update(usr_t).where(
            u.id == bindparam("b_id"), u.revision == bindparam("b_revision")
        )
        self.user_revision = select(u.revision).where(u.id == bindparam("id"))

        t = api_token_t.c
        token_cols = [t[name] for name in m.TOKEN_COLUMNS]
        self.token_by_id = select(*token_cols).where(t.id == bindparam("id"))
        self.token_by_hash = select(*token_cols).where(t.token_hash == bindparam("hash"))
        self.tokens_of_user = (
            select(*token_cols)
            .where(t.user_id == bindparam("user_id"))
            .order_by(t.created_at, t.id)
        )
        self.insert_token = insert(api_token_t)

        mc = member_t.c
        self.member_columns = [mc.group_id, mc.user_id, mc.capacity]
        upsert: Any
        if dialect_name == "postgresql":
            upsert = pg_dialect.insert(member_t)
        else:
            upsert = sqlite_dialect.insert(member_t)
        self.upsert_member = upsert.on_conflict_do_update(
            index_elements=[mc.group_id, mc.user_id],
            set_={"capacity": upsert.excluded.capacity},
        )

        v = vocabulary_t.c
        self.vocabulary_by_id = select(v.id, v.name, v.tags).where(v.id == bindparam("id"))
        self.vocabulary_by_name = select(v.id, v.name, v.tags).where(v.name == bindparam("name"))

        a = activity_t.c
        self.activity_columns = [a[name] for name in m.ACTIVITY_COLUMNS]
        self.insert_activity = insert(activity_t)

        o = outbox_t.c
        self.insert_outbox = insert(outbox_t)
        self.pending_outbox = (
            select(o.id, o.topic, o.object_id, o.created).order_by(o.id).limit(bindparam("limit"))
        )

        f = resource_files_t.c
        self.resource_file_columns = [f[name] for name in m.RESOURCE_FILE_COLUMNS]
        file_upsert: Any
        if dialect_name == "postgresql":
            file_upsert = pg_dialect.insert(resource_files_t)
        else:
            file_upsert = sqlite_dialect.insert(resource_files_t)
        self.upsert_resource_file = file_upsert.on_conflict_do_update(
            index_elements=[f.resource_id],
            set_={
                name: file_upsert.excluded[name]
                for name in m.RESOURCE_FILE_COLUMNS
                if name != "resource_id"
            },
        )
        self.delete_files_of_dataset = delete(resource_files_t).where(
            f.package_id == bindparam("id")
        )


class SqlContext:
    """What the repositories of one unit of work share: its connection and the write rules."""

    __slots__ = ("_depth", "_seen", "connection", "statements", "write")

    def __init__(self, connection: Connection, statements: Statements, *, write: bool) -> None:
        self.connection = connection
        self.statements = statements
        self.write = write
        #: Datasets as last read or written in this unit of work, by id (write units only):
        #: ``save`` diffs the query tables against them instead of reading them back.
        self._seen: dict[str, Dataset] = {}
        self._depth = 0

    # -- execution with error translation -------------------------------------------------

    def fail(self, exc: BaseException, noun: str = "object") -> NoReturn:
        raise translate_error(exc, noun=noun) from exc

    def rows(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> Sequence[Any]:
        """All rows of a query."""
        try:
            return self.connection.execute(stmt, params).all()
        except sa_exc.SQLAlchemyError as exc:
            self.fail(exc)

    def first(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> Any:
        """The first row of a query, or None."""
        try:
            return self.connection.execute(stmt, params).first()
        except sa_exc.SQLAlchemyError as exc:
            self.fail(exc)

    def scalar(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row of a query, or None."""
        try:
            return self.connection.execute(stmt, params).scalar()
        except sa_exc.SQLAlchemyError as exc:
            self.fail(exc)

    def run(
        self,
        stmt: Insert | Update | Delete,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        noun: str = "object",
    ) -> int:
        """Execute a write (one parameter set or many); return the number of rows touched."""
        try:
            return self.connection.execute(stmt, params).rowcount
        except sa_exc.SQLAlchemyError as exc:
            self.fail(exc, noun)

    def check_writable(self) -> None:
        if not self.write:
            raise BackendError(
                "Cannot write in a read-only unit of work; use unit_of_work(write=True)"
            )

    @contextlib.contextmanager
    def atomic(self, *, several: bool, noun: str = "object") -> Iterator[None]:
        """Make one repository write all-or-nothing inside the unit of work.

        ``several``: the write issues more than one statement. A single statement is atomic
        by itself on SQLite; on PostgreSQL any failed statement aborts the transaction, so
        there every write gets a savepoint.
        """
        self.check_writable()
        if not several and not self.statements.is_postgresql:
            yield
            return
        # Plain SQL savepoints: SQLAlchemy's begin_nested() compiles its statements each time.
        self._depth += 1
        name = f"oc_savepoint_{self._depth}"
        conn = self.connection
        try:
            conn.exec_driver_sql(f"SAVEPOINT {name}")
        except sa_exc.SQLAlchemyError as exc:
            self._depth -= 1
            self.fail(exc, noun)
        try:
            yield
        except BaseException:
            try:
                conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {name}")
                conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
            except sa_exc.SQLAlchemyError as exc:
                self.fail(exc, noun)
            finally:
                self._depth -= 1
            raise
        try:
            conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
        except sa_exc.SQLAlchemyError as exc:
            self.fail(exc, noun)
        finally:
            self._depth -= 1

    def copy_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Iterable[tuple[Any, ...]],
        *,
        noun: str = "object",
    ) -> None:
        """Bulk insert with PostgreSQL ``COPY ... FROM STDIN`` (about 1.6x executemany)."""
        names = ", ".join(f'"{c}"' for c in columns)
        sql = f'COPY "{table}" ({names}) FROM STDIN'
        try:
            driver = self.connection.connection.driver_connection
            with driver.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
        except Exception as exc:
            if isinstance(exc, sa_exc.SQLAlchemyError) or hasattr(exc, "sqlstate"):
                self.fail(exc, noun)
            raise

    def run_many(self, sql: str, rows: Sequence[tuple[Any, ...]], *, noun: str = "object") -> None:
        """Execute a plain SQL insert for many rows of driver-ready values (bulk paths)."""
        if not rows:
            return
        try:
            self.connection.exec_driver_sql(sql, rows)
        except sa_exc.SQLAlchemyError as exc:
            self.fail(exc, noun)


def _stale(kind: str, obj_id: str, stored: int, given: int) -> Conflict:
    return Conflict(
        f"The {kind} {obj_id} was changed by someone else "
        f"(stored revision {stored}, this change expects {given - 1}); reload and retry"
    )


# -- datasets ------------------------------------------------------------------------------


def _visibility_condition(vis: Visibility) -> ColumnElement[bool] | None:
    if vis.unrestricted:
        return None
    d = dataset_t.c
    conds: list[ColumnElement[bool]] = [and_(d.state == State.ACTIVE.value, d.private == false())]
    if vis.org_ids:
        conds.append(d.owner_org.in_(sorted(vis.org_ids)))
    if vis.user_id is not None:
        conds.append(and_(d.owner_org.is_(None), d.creator_user_id == vis.user_id))
    return or_(*conds)


def dataset_conditions(flt: DatasetFilter) -> list[ColumnElement[bool]]:
    """SQL conditions on ``dataset`` for a filter (visibility included)."""
    d = dataset_t.c
    conds: list[ColumnElement[bool]] = []
    if not flt.states:
        conds.append(false())
    elif set(flt.states) != set(State):
        conds.append(d.state.in_(sorted(s.value for s in flt.states)))
    if not flt.include_private:
        conds.append(d.private == false())
    if flt.owner_org is not None:
        conds.append(d.owner_org == flt.owner_org)
    if flt.group_id is not None:
        fg = dataset_group_t.alias("fg")
        conds.append(exists().where(fg.c.dataset_id == d.id, fg.c.group_id == flt.group_id))
    if flt.tag is not None:
        ft = dataset_tag_t.alias("ft")
        conds.append(
            exists().where(
                ft.c.dataset_id == d.id, ft.c.vocabulary == FREE_TAG, ft.c.name == flt.tag
            )
        )
    vis = _visibility_condition(flt.visibility)
    if vis is not None:
        conds.append(vis)
    return conds


#: Resource fields compared as integers; ``hash`` is matched by prefix; the other fields of
#: :class:`Resource` are text (datetimes as the ISO 8601 text of the document); any other
#: name is an extras key.
_RESOURCE_INT_FIELDS = frozenset({"size", "position"})
_RESOURCE_FIELDS = frozenset(a.name for a in attrs.fields(Resource)) - {"extras"}


def _like_pattern(term: str, *, prefix: bool = False) -> str:
    """A LIKE pattern matching ``term`` literally (``%``, ``_`` and ``\\`` escaped with
    ``\\``) as a substring, or as a prefix."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%" if prefix else f"%{escaped}%"


class _ResourceRows:
    """The resources of the datasets' documents as rows, one per resource, for SQL filters.

    SQLite: ``dataset JOIN json_each(dataset.doc, '$.resources')``; PostgreSQL: ``dataset
    JOIN LATERAL json_array_elements(doc::json -> 'resources')``. ``json`` (not ``jsonb``)
    keeps the document's own text, so an extras value reads back as the compact JSON the
    document holds on both databases.
    """

    def __init__(self, is_postgresql: bool) -> None:
        self.is_postgresql = is_postgresql
        if is_postgresql:
            items = type_coerce(cast(dataset_t.c.doc, JSON), JSON)["resources"]
            self.rows: Any = func.json_array_elements(items).table_valued("value").lateral("r")
        else:
            self.rows = func.json_each(dataset_t.c.doc, "$.resources").table_valued("value")
            self.rows = self.rows.alias("r")

    def source(self) -> Any:
        return dataset_t.join(self.rows, true())

    def text(self) -> ColumnElement[Any]:
        """The resource's JSON object as text."""
        return cast(self.rows.c.value, Text) if self.is_postgresql else self.rows.c.value

    def field(self, name: str) -> ColumnElement[Any]:
        """A top-level field of the resource: text, or an integer for the integer fields."""
        if self.is_postgresql:
            value = type_coerce(self.rows.c.value, JSON)[name].as_string()
            return cast(value, BigInteger) if name in _RESOURCE_INT_FIELDS else value
        return func.json_extract(self.rows.c.value, f"$.{name}")

    def extra_text(self, name: str) -> ColumnElement[Any]:
        """The compact JSON text of the extras value ``name`` (NULL when absent)."""
        if self.is_postgresql:
            extras = type_coerce(self.rows.c.value, JSON)["extras"]
            return cast(type_coerce(extras, JSON)[name], Text)
        e = func.json_each(self.rows.c.value, "$.extras").table_valued("key", "value", "type")
        e = e.alias("e")
        as_json = case(
            (e.c.type == "true", literal("true")),
            (e.c.type == "false", literal("false")),
            (e.c.type == "null", literal("null")),
            else_=func.json_quote(e.c.value),
        )
        return select(as_json).select_from(e).where(e.c.key == name).scalar_subquery()

    def condition(self, c: ResourceCriterion) -> ColumnElement[bool]:
        term = c.term
        if c.field in _RESOURCE_INT_FIELDS:
            try:
                number = int(term.strip())
            except ValueError:
                return false()
            return self.field(c.field) == number
        if not term:
            return true()
        if c.field == "hash":
            return self.field("hash").ilike(_like_pattern(term, prefix=True), escape="\\")
        if c.field in _RESOURCE_FIELDS:
            return self.field(c.field).ilike(_like_pattern(term), escape="\\")
        return self.extra_text(c.field).ilike(_like_pattern(term), escape="\\")

    def sort_key(self, name: str) -> ColumnElement[Any]:
        """Ascending by the field, by code point for text, missing values last."""
        if name not in _RESOURCE_FIELDS:
            raise ValueError(f"cannot order resources by {name!r}")
        key = self.field(name)
        if self.is_postgresql and name not in _RESOURCE_INT_FIELDS:
            key = key.collate("C")
        return key.asc().nulls_last()


class SqlDatasetRepository(DatasetRepository):
    """Datasets as one JSON document per row plus query tables kept in step."""

    def __init__(self, ctx: SqlContext) -> None:
        self._ctx = ctx
        self._q = ctx.statements

    def _load(self, doc: str, *, locked: bool = False) -> Dataset:
        ds = m.dataset_from_doc(doc)
        # Remember what the query tables hold for this revision, to diff against on save.
        # Trustworthy while no one else can change the row: always on SQLite (write units of
        # work are serialised), on PostgreSQL once the row is locked.
        ctx = self._ctx
        if ctx.write and (locked or not self._q.is_postgresql):
            ctx._seen[ds.id] = ds
        return ds

    def get(self, dataset_id: str, *, for_update: bool = False) -> Dataset | None:
        stmt = self._q.dataset_by_id_locked if for_update else self._q.dataset_by_id
        row = self._ctx.first(stmt, {"id": dataset_id})
        return None if row is None else self._load(row[0], locked=for_update)

    def get_by_name(self, name: str, *, for_update: bool = False) -> Dataset | None:
        stmt = self._q.dataset_by_name_locked if for_update else self._q.dataset_by_name
        row = self._ctx.first(stmt, {"name": name})
        return None if row is None else self._load(row[0], locked=for_update)

    def get_many(self, ids: Sequence[str]) -> list[Dataset]:
        found: dict[str, Dataset] = {}
        wanted = list(dict.fromkeys(ids))
        for chunk in _chunks(wanted):
            stmt = select(dataset_t.c.id, dataset_t.c.doc).where(dataset_t.c.id.in_(chunk))
            for dataset_id, doc in self._ctx.rows(stmt):
                found[dataset_id] = self._load(doc)
        return [found[i] for i in ids if i in found]

    def find_by_resource(self, resource_id: str) -> Dataset | None:
        row = self._ctx.first(self._q.dataset_by_resource, {"id": resource_id})
        return None if row is None else self._load(row[0])

    def resource_owners(self, resource_ids: Sequence[str]) -> dict[str, str]:
        owners: dict[str, str] = {}
        for chunk in _chunks(list(dict.fromkeys(resource_ids))):
            stmt = select(dataset_resource_t.c.id, dataset_resource_t.c.dataset_id).where(
                dataset_resource_t.c.id.in_(chunk)
            )
            owners.update((rid, did) for rid, did in self._ctx.rows(stmt))
        return owners

    def get_many_by_name(self, names: Sequence[str]) -> list[Dataset]:
        found: dict[str, Dataset] = {}
        for chunk in _chunks(list(dict.fromkeys(names))):
            stmt = select(dataset_t.c.name, dataset_t.c.doc).where(dataset_t.c.name.in_(chunk))
            for name, doc in self._ctx.rows(stmt):
                found[name] = self._load(doc)
        return [found[n] for n in names if n in found]

    @staticmethod
    def _link_params(
        datasets: Iterable[Dataset],
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]], list[tuple[str, str]]]:
        resources: list[tuple[str, str]] = []
        tags: list[tuple[str, str, str]] = []
        groups: list[tuple[str, str]] = []
        for ds in datasets:
            dataset_id = ds.id
            if ds.resources:
                resources += [(r.id, dataset_id) for r in ds.resources]
            if ds.tags:
                tags += [(dataset_id, v, n) for v, n in m.dataset_tag_keys(ds)]
            if ds.groups:
                groups += [(dataset_id, g) for g in dict.fromkeys(ds.groups)]
        return resources, tags, groups

    def _insert(self, datasets: Sequence[Dataset]) -> None:
        ctx = self._ctx
        q = self._q
        when = q.bind_datetime
        if q.is_postgresql and len(datasets) >= _COPY_THRESHOLD:
            rows = [m.dataset_params(ds, when) for ds in datasets]
            ctx.copy_rows("dataset", m.DATASET_COLUMNS, rows, noun="dataset")
            resources, tags, groups = self._link_params(datasets)
            ctx.copy_rows("dataset_resource", ("id", "dataset_id"), resources, noun="dataset")
            ctx.copy_rows("dataset_tag", ("dataset_id", "vocabulary", "name"), tags, noun="dataset")
            ctx.copy_rows("dataset_group", ("dataset_id", "group_id"), groups, noun="dataset")
            return
        ctx.run_many(
            q.sql_insert_dataset, [m.dataset_params(ds, when) for ds in datasets], noun="dataset"
        )
        resources, tags, groups = self._link_params(datasets)
        ctx.run_many(q.sql_insert_resource, resources, noun="dataset")
        ctx.run_many(q.sql_insert_tag, tags, noun="dataset")
        ctx.run_many(q.sql_insert_group_link, groups, noun="dataset")

    def add(self, dataset: Dataset) -> None:
        with self._ctx.atomic(several=True, noun="dataset"):
            self._insert((dataset,))
        self._ctx._seen[dataset.id] = dataset

    def add_many(self, datasets: Sequence[Dataset]) -> None:
        """Bulk insert: one executemany per table and chunk of datasets, all or nothing."""
        if not datasets:
            return
        with self._ctx.atomic(several=True, noun="dataset"):
            for chunk in _chunks(datasets, 2000):
                self._insert(chunk)

    def _stored_links(self, dataset_id: str) -> tuple[set[str], set[tuple[str, str]], set[str]]:
        ctx = self._ctx
        params = {"id": dataset_id}
        resources = {r[0] for r in ctx.rows(self._q.resource_ids, params)}
        tags = {(r[0], r[1]) for r in ctx.rows(self._q.tag_keys, params)}
        groups = {r[0] for r in ctx.rows(self._q.group_ids, params)}
        return resources, tags, groups

    def save(self, dataset: Dataset) -> None:
        ctx = self._ctx
        q = self._q
        ds = dataset
        with ctx.atomic(several=True, noun="dataset"):
            row = m.dataset_to_row(ds)
            row["b_id"] = ds.id
            row["b_revision"] = ds.revision - 1
            if ctx.run(q.update_dataset, row, noun="dataset") != 1:
                stored = ctx.scalar(q.dataset_revision, {"id": ds.id})
                if stored is None:
                    raise NotFound(f"Dataset not found: {ds.id}")
                raise _stale("dataset", ds.id, stored, ds.revision)
            before = ctx._seen.get(ds.id)
            if before is not None and before.revision == ds.revision - 1:
                old_res = {r.id for r in before.resources}
                old_tags = m.dataset_tag_keys(before)
                old_groups = set(before.groups)
            else:
                old_res, old_tags, old_groups = self._stored_links(ds.id)
            new_res = [r.id for r in ds.resources]
            new_res_set = set(new_res)
            gone = old_res - new_res_set
            if gone:
                ctx.run(
                    q.delete_resource,
                    [{"b_id": rid, "b_dataset_id": ds.id} for rid in gone],
                    noun="dataset",
                )
            added = [rid for rid in new_res if rid not in old_res]
            if added:
                ctx.run_many(q.sql_insert_resource, [(rid, ds.id) for rid in added], noun="dataset")
            new_tags = m.dataset_tag_keys(ds)
            if old_tags - new_tags:
                ctx.run(
                    q.delete_tag,
                    [
                        {"b_dataset_id": ds.id, "b_vocabulary": v, "b_name": n}
                        for v, n in old_tags - new_tags
                    ],
                    noun="dataset",
                )
            if new_tags - old_tags:
                ctx.run_many(
                    q.sql_insert_tag,
                    [(ds.id, v, n) for v, n in new_tags - old_tags],
                    noun="dataset",
                )
            new_groups = set(ds.groups)
            if old_groups - new_groups:
                ctx.run(
                    q.delete_group_link,
                    [{"b_dataset_id": ds.id, "b_group_id": g} for g in old_groups - new_groups],
                    noun="dataset",
                )
            if new_groups - old_groups:
                ctx.run_many(
                    q.sql_insert_group_link,
                    [(ds.id, g) for g in new_groups - old_groups],
                    noun="dataset",
                )
        ctx._seen[ds.id] = ds

    def remove(self, dataset_id: str) -> None:
        with self._ctx.atomic(several=True, noun="dataset"):
            # The query tables follow by ON DELETE CASCADE; the resource files are not linked.
            self._ctx.run(self._q.delete_dataset, {"id": dataset_id})
            self._ctx.run(self._q.delete_files_of_dataset, {"id": dataset_id})
        self._ctx._seen.pop(dataset_id, None)

    def list(
        self, flt: DatasetFilter, *, offset: int = 0, limit: int | None = None, order: str = "name"
    ) -> list[Dataset]:
        d = dataset_t.c
        stmt = select(d.doc).where(*dataset_conditions(flt))
        if order == "name":
            stmt = stmt.order_by(d.name)
        elif order == "-metadata_modified":
            stmt = stmt.order_by(d.metadata_modified.desc(), d.name)
        else:
            raise ValueError(f"Unknown dataset order: {order!r}")
        if offset:
            stmt = stmt.offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [self._load(row[0]) for row in self._ctx.rows(stmt)]

    def count(self, flt: DatasetFilter) -> int:
        stmt = select(func.count()).select_from(dataset_t).where(*dataset_conditions(flt))
        return int(self._ctx.scalar(stmt))

    def ids(self) -> Iterable[tuple[str, datetime]]:
        stmt = select(dataset_t.c.id, dataset_t.c.metadata_modified).order_by(dataset_t.c.id)
        return [(row[0], row[1]) for row in self._ctx.rows(stmt)]

    def tag_counts(
        self, flt: DatasetFilter, *, vocabulary_id: str | None = None
    ) -> builtins.list[tuple[str, int]]:
        t = dataset_tag_t.c
        n = func.count().label("n")
        stmt = (
            select(t.name, n)
            .join(dataset_t, dataset_t.c.id == t.dataset_id)
            .where(t.vocabulary == (vocabulary_id or FREE_TAG), *dataset_conditions(flt))
            .group_by(t.name)
            .order_by(n.desc(), t.name)
        )
        return [(row[0], int(row[1])) for row in self._ctx.rows(stmt)]

    def group_counts(self, flt: DatasetFilter) -> dict[str, int]:
        d = dataset_t.c
        conds = dataset_conditions(flt)
        owned = (
            select(d.owner_org, func.count())
            .where(d.owner_org.is_not(None), *conds)
            .group_by(d.owner_org)
        )
        g = dataset_group_t.c
        linked = (
            select(g.group_id, func.count())
            .join(dataset_t, d.id == g.dataset_id)
            .where(or_(d.owner_org.is_(None), d.owner_org != g.group_id), *conds)
            .group_by(g.group_id)
        )
        counts: dict[str, int] = {}
        for stmt in (owned, linked):
            for group_id, count in self._ctx.rows(stmt):
                counts[group_id] = counts.get(group_id, 0) + int(count)
        return counts

    def search_resources(
        self,
        criteria: Sequence[ResourceCriterion],
        *,
        order_by: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[int, builtins.list[Resource]]:
        """Resource search in SQL over the ``resources`` array of each active public dataset's
        document (``json_each`` on SQLite, ``json_array_elements`` on PostgreSQL)."""
        expand = _ResourceRows(self._q.is_postgresql)
        d = dataset_t.c
        conds: list[ColumnElement[bool]] = [d.state == State.ACTIVE.value, d.private == false()]
        conds += [expand.condition(c) for c in criteria]
        source = expand.source()
        total = self._ctx.scalar(select(func.count()).select_from(source).where(*conds))
        stmt = select(expand.text()).select_from(source).where(*conds)
        if order_by is not None:
            stmt = stmt.order_by(expand.sort_key(order_by))
        stmt = stmt.order_by(expand.field("id"))
        if offset:
            stmt = stmt.offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        page = [m.resource_from_doc(row[0]) for row in self._ctx.rows(stmt)]
        return int(total or 0), page


# -- groups --------------------------------------------------------------------------------


class SqlGroupRepository(GroupRepository):
    """Groups and organizations in one table with one name space."""

    def __init__(self, ctx: SqlContext) -> None:
        self._ctx = ctx
        self._q = ctx.statements

    def get(self, group_id: str) -> Group | None:
        row = self._ctx.first(self._q.group_by_id, {"id": group_id})
        return None if row is None else m.group_from_row(row)

    def get_by_name(self, name: str) -> Group | None:
        row = self._ctx.first(self._q.group_by_name, {"name": name})
        return None if row is None else m.group_from_row(row)

    def get_many(self, ids: Sequence[str]) -> list[Group]:
        found: dict[str, Group] = {}
        for chunk in _chunks(list(dict.fromkeys(ids))):
            stmt = select(*self._q.group_columns).where(grp_t.c.id.in_(chunk))
            for row in self._ctx.rows(stmt):
                group = m.group_from_row(row)
                found[group.id] = group
        return [found[i] for i in ids if i in found]

    def add(self, group: Group) -> None:
        noun = "organization" if group.is_organization else "group"
        with self._ctx.atomic(several=False, noun=noun):
            self._ctx.run(self._q.insert_group, m.group_to_row(group), noun=noun)

    def save(self, group: Group) -> None:
        ctx = self._ctx
        noun = "organization" if group.is_organization else "group"
        with ctx.atomic(several=False, noun=noun):
            row = m.group_to_row(group)
            row["b_id"] = group.id
            row["b_revision"] = group.revision - 1
            if ctx.run(self._q.update_group, row, noun=noun) != 1:
                stored = ctx.scalar(self._q.group_revision, {"id": group.id})
                if stored is None:
                    raise NotFound(f"Group not found: {group.id}")
                raise _stale(noun, group.id, stored, group.revision)

    def remove(self, group_id: str) -> None:
        """Delete the group, its memberships and its dataset links.

        Datasets linked to the group are rewritten without it, with ``revision`` + 1 (so a
        concurrent save of one of them fails with Conflict instead of bringing the link
        back) and ``metadata_modified`` unchanged.
        """
        ctx = self._ctx
        q = ctx.statements
        with ctx.atomic(several=True, noun="group"):
            ctx.run(delete(member_t).where(member_t.c.group_id == group_id))
            linked = select(dataset_t.c.doc).where(
                exists().where(
                    dataset_group_t.c.dataset_id == dataset_t.c.id,
                    dataset_group_t.c.group_id == group_id,
                )
            )
            for (doc,) in ctx.rows(linked):
                before = m.dataset_from_doc(doc)
                after = attrs.evolve(
                    before,
                    groups=tuple(g for g in before.groups if g != group_id),
                    revision=before.revision + 1,
                )
                row = m.dataset_to_row(after)
                row["b_id"] = after.id
                row["b_revision"] = before.revision
                ctx.run(q.update_dataset, row)
                ctx._seen.pop(after.id, None)
            ctx.run(delete(dataset_group_t).where(dataset_group_t.c.group_id == group_id))
            ctx.run(delete(grp_t).where(grp_t.c.id == group_id))

    def list(
        self,
        *,
        is_organization: bool,
        states: frozenset[State] = frozenset({State.ACTIVE}),
        offset: int = 0,
        limit: int | None = None,
    ) -> list[Group]:
        g = grp_t.c
        stmt = (
            select(*self._q.group_columns)
            .where(g.is_organization == (true() if is_organization else false()))
            .where(g.state.in_(sorted(s.value for s in states)) if states else false())
            .order_by(g.name)
        )
        if offset:
            stmt = stmt.offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [m.group_from_row(row) for row in self._ctx.rows(stmt)]

    def count(
        self, *, is_organization: bool, states: frozenset[State] = frozenset({State.ACTIVE})
    ) -> int:
        g = grp_t.c
        stmt = (
            select(func.count())
            .select_from(grp_t)
            .where(g.is_organization == (true() if is_organization else false()))
            .where(g.state.in_(sorted(s.value for s in states)) if states else false())
        )
        return int(self._ctx.scalar(stmt))


# -- users and tokens ------------------------------------------------------------------------


class SqlUserRepository(UserRepository):
    """User accounts; emails are looked up through a lowercased copy."""

    def __init__(self, ctx: SqlContext) -> None:
        self._ctx = ctx
        self._q = ctx.statements

    def get(self, user_id: str) -> User | None:
        row = self._ctx.first(self._q.user_by_id, {"id": user_id})
        return None if row is None else m.user_from_row(row)

    def get_by_name(self, name: str) -> User | None:
        row = self._ctx.first(self._q.user_by_name, {"name": name})
        return None if row is None else m.user_from_row(row)

    def get_by_email(self, email: str) -> User | None:
        """The user with this email (case-insensitive): the oldest active account, else the
        oldest account."""
        row = self._ctx.first(self._q.user_by_email, {"email": m.email_key(email)})
        return None if row is None else m.user_from_row(row)

    def add(self, user: User) -> None:
        with self._ctx.atomic(several=False, noun="user"):
            self._ctx.run(self._q.insert_user, m.user_to_row(user), noun="user")

    def save(self, user: User) -> None:
        ctx = self._ctx
        with ctx.atomic(several=False, noun="user"):
            row = m.user_to_row(user)
            row["b_id"] = user.id
            row["b_revision"] = user.revision - 1
            if ctx.run(self._q.update_user, row, noun="user") != 1:
                stored = ctx.scalar(self._q.user_revision, {"id": user.id})
                if stored is None:
                    raise NotFound(f"User not found: {user.id}")
                raise _stale("user", user.id, stored, user.revision)

    def remove(self, user_id: str) -> None:
        ctx = self._ctx
        with ctx.atomic(several=True, noun="user"):
            ctx.run(delete(member_t).where(member_t.c.user_id == user_id))
            ctx.run(delete(api_token_t).where(api_token_t.c.user_id == user_id))
            ctx.run(delete(usr_t).where(usr_t.c.id == user_id))

    def list(
        self,
        *,
        states: frozenset[State] = frozenset({State.ACTIVE}),
        offset: int = 0,
        limit: int | None = None,
    ) -> list[User]:
        u = usr_t.c
        stmt = (
            select(*self._q.user_columns)
            .where(u.state.in_(sorted(s.value for s in states)) if states else false())
            .order_by(u.name)
        )
        if offset:
            stmt = stmt.offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [m.user_from_row(row) for row in self._ctx.rows(stmt)]

    def count(self, *, states: frozenset[State] = frozenset({State.ACTIVE})) -> int:
        u = usr_t.c
        stmt = (
            select(func.count())
            .select_from(usr_t)
            .where(u.state.in_(sorted(s.value for s in states)) if states else false())
        )
        return int(self._ctx.scalar(stmt))

    def search(self, q: str, *, limit: int = 20) -> builtins.list[User]:
        u = usr_t.c
        pattern = _like_pattern(q)
        stmt = (
            select(*self._q.user_columns)
            .where(
                u.state == State.ACTIVE.value,
                or_(
                    u.name.ilike(pattern, escape="\\"),
                    u.fullname.ilike(pattern, escape="\\"),
                ),
            )
            .order_by(u.name)
            .limit(limit)
        )
        return [m.user_from_row(row) for row in self._ctx.rows(stmt)]


class SqlTokenRepository(TokenRepository):
    """API tokens, looked up by the hash of their secret."""

    def __init__(self, ctx: SqlContext) -> None:
        self._ctx = ctx
        self._q = ctx.statements

    def get(self, token_id: str) -> ApiToken | None:
        row = self._ctx.first(self._q.token_by_id, {"id": token_id})
        return None if row is None else m.token_from_row(row)

    def get_by_hash(self, token_hash: str) -> ApiToken | None:
        row = self._ctx.first(self._q.token_by_hash, {"hash": token_hash})
        return None if row is None else m.token_from_row(row)

    def add(self, token: ApiToken) -> None:
        with self._ctx.atomic(several=False, noun="token"):
            self._ctx.run(self._q.insert_token, m.token_to_row(token), noun="token")

    def touch(self, token_id: str, when: datetime) -> None:
        with self._ctx.atomic(several=False, noun="token"):
            self._ctx.run(
                update(api_token_t).where(api_token_t.c.id == token_id).values(last_used_at=when)
            )

    def remove(self, token_id: str) -> None:
        with self._ctx.atomic(several=False, noun="token"):
            self._ctx.run(delete(api_token_t).where(api_token_t.c.id == token_id))

    def remove_for_user(self, user_id: str) -> int:
        with self._ctx.atomic(several=False, noun="token"):
            return self._ctx.run(delete(api_token_t).where(api_token_t.c.user_id == user_id))

    def list_for_user(self, user_id: str) -> list[ApiToken]:
        rows = self._ctx.rows(self._q.tokens_of_user, {"user_id": user_id})
        return [m.token_from_row(row) for row in rows]


# -- memberships and vocabularies ------------------------------------------------------------


class SqlMembershipRepository(MembershipRepository):
    """Memberships keyed by (group, user); ``put`` is an upsert."""

    def __init__(self, ctx: SqlContext) -> None:
        self._ctx = ctx
        self._q = ctx.statements

    def get(self, group_id: str, user_id: str) -> Membership | None:
        c = member_t.c
        stmt = select(*self._q.member_columns).where(c.group_id == group_id, c.user_id == user_id)
        row = self._ctx.first(stmt)
        return None if row is None else m.membership_from_row(row)

    def put(self, membership: Membership) -> None:
        with self._ctx.atomic(several=False, noun="membership"):
            self._ctx.run(
                self._q.upsert_member,
                {
                    "group_id": membership.group_id,
                    "user_id": membership.user_id,
                    "capacity": membership.capacity.value,
                },
                noun="membership",
            )

    def remove(self, group_id: str, user_id: str) -> None:
        c = member_t.c
        with self._ctx.atomic(several=False, noun="membership"):
            self._ctx.run(delete(member_t).where(c.group_id == group_id, c.user_id == user_id))

    def for_user(self, user_id: str) -> list[Membership]:
        c = member_t.c
        stmt = select(*self._q.member_columns).where(c.user_id == user_id).order_by(c.group_id)
        return [m.membership_from_row(row) for row in self._ctx.rows(stmt)]

    def for_group(self, group_id: str) -> list[Membership]:
        c = member_t.c
        stmt = select(*self._q.member_columns).where(c.group_id == group_id).order_by(c.user_id)
        return [m.membership_from_row(row) for row in self._ctx.rows(stmt)]

    def remove_for_user(self, user_id: str) -> None:
        with self._ctx.atomic(several=False, noun="membership"):
            self._ctx.run(delete(member_t).where(member_t.c.user_id == user_id))

    def remove_for_group(self, group_id: str) -> None:
        with self._ctx.atomic(several=False, noun="membership"):
            self._ctx.run(delete(member_t).where(member_t.c.group_id == group_id))


class SqlVocabularyRepository(VocabularyRepository):
    """Tag vocabularies; their tags are a JSON list."""

    def __init__(self, ctx: SqlContext) -> None:
        self._ctx = ctx
        self._q = ctx.statements

    def get(self, vocabulary_id: str) -> Vocabulary | None:
        row = self._ctx.first(self._q.vocabulary_by_id, {"id": vocabulary_id})
        return None if row is None else m.vocabulary_from_row(row)

    def get_by_name(self, name: str) -> Vocabulary | None:
        row = self._ctx.first(self._q.vocabulary_by_name, {"name": name})
        return None if row is None else m.vocabulary_from_row(row)

    def add(self, vocabulary: Vocabulary) -> None:
        with self._ctx.atomic(several=False, noun="vocabulary"):
            self._ctx.run(insert(vocabulary_t), m.vocabulary_to_row(vocabulary), noun="vocabulary")

    def save(self, vocabulary: Vocabulary) -> None:
        row = m.vocabulary_to_row(vocabulary)
        stmt = (
            update(vocabulary_t)
            .where(vocabulary_t.c.id == vocabulary.id)
            .values(name=row["name"], tags=row["tags"])
        )
        with self._ctx.atomic(several=False, noun="vocabulary"):
            if self._ctx.run(stmt, noun="vocabulary") != 1:
                raise NotFound(f"Vocabulary not found: {vocabulary.id}")

    def remove(self, vocabulary_id: str) -> None:
        with self._ctx.atomic(several=False, noun="vocabulary"):
            self._ctx.run(delete(vocabulary_t).where(vocabulary_t.c.id == vocabulary_id))

    def list(self) -> list[Vocabulary]:
        v = vocabulary_t.c
        stmt = select(v.id, v.name, v.tags).order_by(v.name)
        return [m.vocabulary_from_row(row) for row in self._ctx.rows(stmt)]


# -- activities and the outbox ---------------------------------------------------------------


class SqlActivityRepository(ActivityRepository):
    """The append-only activity stream."""

    def __init__(self, ctx: SqlContext) -> None:
        self._ctx = ctx
        self._q = ctx.statements

    def add(self, activity: Activity) -> None:
        with self._ctx.atomic(several=False, noun="activity"):
            self._ctx.run(self._q.insert_activity, m.activity_to_row(activity), noun="activity")

    def add_many(self, activities: Sequence[Activity]) -> None:
        """Append many activities with one executemany per chunk, all or nothing."""
        if not activities:
            return
        with self._ctx.atomic(several=True, noun="activity"):
            when = self._q.bind_datetime
            for chunk in _chunks(activities, 2000):
                rows = [m.activity_params(a, when) for a in chunk]
                self._ctx.run_many(self._q.sql_insert_activity, rows, noun="activity")

    def list(
        self,
        *,
        object_id: str | None = None,
        user_id: str | None = None,
        offset: int = 0,
        limit: int = 31,
    ) -> list[Activity]:
        a = activity_t.c
        stmt: Select[Any] = select(*self._q.activity_columns)
        if object_id is not None:
            stmt = stmt.where(a.object_id == object_id)
        if user_id is not None:
            stmt = stmt.where(a.user_id == user_id)
        stmt = stmt.order_by(a.timestamp.desc(), a.id.desc()).limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        return [m.activity_from_row(row) for row in self._ctx.rows(stmt)]

    def remove_for_object(self, object_id: str) -> None:
        with self._ctx.atomic(several=False, noun="activity"):
            self._ctx.run(delete(activity_t).where(activity_t.c.object_id == object_id))


class SqlOutboxRepository(OutboxRepository):
    """Pending changes for derived stores, in insertion order (ids never reused)."""

    def __init__(self, ctx: SqlContext) -> None:
        self._ctx = ctx
        self._q = ctx.statements

    def add(self, topic: str, object_id: str) -> None:
        with self._ctx.atomic(several=False, noun="outbox entry"):
            self._ctx.run(
                self._q.insert_outbox,
                {"topic": topic, "object_id": object_id, "created": utcnow()},
            )

    def pending(self, *, limit: int = 1000) -> list[OutboxEntry]:
        rows = self._ctx.rows(self._q.pending_outbox, {"limit": limit})
        return [
            OutboxEntry(id=int(row[0]), topic=row[1], object_id=row[2], created=row[3])
            for row in rows
        ]

    def remove(self, entry_ids: Iterable[int]) -> None:
        ids = list(entry_ids)
        if not ids:
            return
        with self._ctx.atomic(several=len(ids) > _CHUNK, noun="outbox entry"):
            for chunk in _chunks(ids):
                self._ctx.run(delete(outbox_t).where(outbox_t.c.id.in_(chunk)))


# -- resource files --------------------------------------------------------------------------


class SqlResourceFileRepository(ResourceFileRepository):
    """One row per resource with content state; ``put`` is an upsert."""

    def __init__(self, ctx: SqlContext) -> None:
        self._ctx = ctx
        self._q = ctx.statements

    def get(self, resource_id: str) -> ResourceFile | None:
        stmt = select(*self._q.resource_file_columns).where(
            resource_files_t.c.resource_id == resource_id
        )
        row = self._ctx.first(stmt)
        return None if row is None else m.resource_file_from_row(row)

    def get_many(self, resource_ids: Sequence[str]) -> builtins.list[ResourceFile]:
        found: list[ResourceFile] = []
        for chunk in _chunks(list(dict.fromkeys(resource_ids))):
            stmt = select(*self._q.resource_file_columns).where(
                resource_files_t.c.resource_id.in_(chunk)
            )
            found += [m.resource_file_from_row(row) for row in self._ctx.rows(stmt)]
        return found

    def put(self, record: ResourceFile) -> None:
        with self._ctx.atomic(several=False, noun="resource file"):
            self._ctx.run(
                self._q.upsert_resource_file,
                m.resource_file_to_row(record),
                noun="resource file",
            )

    def remove(self, resource_ids: Iterable[str]) -> None:
        ids = list(dict.fromkeys(resource_ids))
        if not ids:
            return
        with self._ctx.atomic(several=len(ids) > _CHUNK, noun="resource file"):
            for chunk in _chunks(ids):
                self._ctx.run(
                    delete(resource_files_t).where(resource_files_t.c.resource_id.in_(chunk))
                )

    def list(
        self,
        *,
        status: PipelineStatus | None = None,
        health: HealthStatus | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[ResourceFile]:
        f = resource_files_t.c
        stmt = select(*self._q.resource_file_columns)
        if status is not None:
            stmt = stmt.where(f.status == status.value)
        if health is not None:
            stmt = stmt.where(f.health_status == health.value)
        stmt = stmt.order_by(f.updated.desc(), f.resource_id)
        if offset:
            stmt = stmt.offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [m.resource_file_from_row(row) for row in self._ctx.rows(stmt)]

    def status_counts(self) -> dict[PipelineStatus, int]:
        f = resource_files_t.c
        counts = dict.fromkeys(PipelineStatus, 0)
        stmt = select(f.status, func.count()).group_by(f.status)
        for status, count in self._ctx.rows(stmt):
            counts[PipelineStatus(status)] = int(count)
        return counts

    def health_counts(self) -> dict[HealthStatus | None, int]:
        f = resource_files_t.c
        counts: dict[HealthStatus | None, int] = dict.fromkeys(HealthStatus, 0)
        counts[None] = 0
        stmt = select(f.health_status, func.count()).group_by(f.health_status)
        for health, count in self._ctx.rows(stmt):
            counts[None if health is None else HealthStatus(health)] = int(count)
        return counts

    def blob_keys(self) -> Iterable[str]:
        f = resource_files_t.c
        stmt = union(
            *(
                select(col).where(col.is_not(None))
                for col in (f.blob_key, f.text_key, f.preview_key)
            )
        )
        return [row[0] for row in self._ctx.rows(stmt)]
