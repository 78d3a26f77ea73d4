"""The relational schema, as SQLAlchemy Core tables (no ORM mapping of domain classes).

A dataset is stored as one row whose ``doc`` column holds the whole aggregate as JSON (every
field, tags, extras, group ids and resources), so reading a dataset is one indexed row read
and one JSON decode. Secondary tables are kept in step with ``doc`` on every write and exist
only to answer queries: ``dataset_resource`` (resource ids are unique across datasets),
``dataset_tag`` (tag filters and counts) and ``dataset_group`` (group filters and counts).

Other aggregates (groups, users, tokens, vocabularies, activities) are plain rows, and so
are ``resource_files`` (what the pipeline and the link checker derived from each resource's
content; the step log is a JSON list).

Conventions:

* Datetimes are stored in UTC (:class:`UtcDateTime`) and always read back as aware UTC.
* Names compare and sort by code point on every database (PostgreSQL columns use the ``C``
  collation), so listings order the same way on SQLite, PostgreSQL and in memory.
* Free tags are stored with ``vocabulary = ''`` so that the tag key can be a primary key.

This module describes the schema at the current migration head; the migrations in
``migrations/versions`` create it. A test compares the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "FREE_TAG",
    "NAMING_CONVENTION",
    "UtcDateTime",
    "activity",
    "api_token",
    "dataset",
    "dataset_group",
    "dataset_resource",
    "dataset_tag",
    "grp",
    "member",
    "metadata",
    "name_type",
    "outbox",
    "resource_files",
    "usr",
    "vocabulary",
]

#: Constraint names are predictable, so driver errors can be mapped by constraint name.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The ``dataset_tag.vocabulary`` value of free tags (tags without a vocabulary).
FREE_TAG = ""


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC.

    Binds aware datetimes of any zone (converted to UTC) and naive ones (taken as UTC).
    SQLite stores the fixed-width text ``YYYY-MM-DD HH:MM:SS.ffffff``, which sorts in time
    order; PostgreSQL uses ``timestamptz``. Results are always aware, in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        elif value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def name_type() -> TypeEngine[str]:
    """A string compared by code point: plain text on SQLite, ``COLLATE "C"`` on PostgreSQL."""
    return String().with_variant(String(collation="C"), "postgresql")


def _id() -> TypeEngine[str]:
    return String()


metadata = MetaData(naming_convention=NAMING_CONVENTION)

dataset = Table(
    "dataset",
    metadata,
    Column("id", _id(), nullable=False),
    Column("name", name_type(), nullable=False),
    Column("state", String(), nullable=False),
    Column("private", Boolean(), nullable=False),
    Column("owner_org", _id(), nullable=True),
    Column("type", String(), nullable=False),
    Column("creator_user_id", _id(), nullable=True),
    Column("metadata_created", UtcDateTime(), nullable=False),
    Column("metadata_modified", UtcDateTime(), nullable=False),
    Column("revision", Integer(), nullable=False),
    Column("doc", Text(), nullable=False),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("name"),
)
Index("ix_dataset_owner_org", dataset.c.owner_org)
Index("ix_dataset_modified_name", dataset.c.metadata_modified.desc(), dataset.c.name)

dataset_resource = Table(
    "dataset_resource",
    metadata,
    Column("id", _id(), nullable=False),
    Column("dataset_id", _id(), ForeignKey("dataset.id", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("id"),
)
Index("ix_dataset_resource_dataset_id", dataset_resource.c.dataset_id)

dataset_tag = Table(
    "dataset_tag",
    metadata,
    Column("dataset_id", _id(), ForeignKey("dataset.id", ondelete="CASCADE"), nullable=False),
    Column("vocabulary", _id(), nullable=False),
    Column("name", name_type(), nullable=False),
    PrimaryKeyConstraint("dataset_id", "vocabulary", "name"),
)
Index(
    "ix_dataset_tag_vocabulary_name",
    dataset_tag.c.vocabulary,
    dataset_tag.c.name,
    dataset_tag.c.dataset_id,
)

dataset_group = Table(
    "dataset_group",
    metadata,
    Column("dataset_id", _id(), ForeignKey("dataset.id", ondelete="CASCADE"), nullable=False),
    Column("group_id", _id(), nullable=False),
    PrimaryKeyConstraint("dataset_id", "group_id"),
)
Index("ix_dataset_group_group_id", dataset_group.c.group_id, dataset_group.c.dataset_id)

grp = Table(
    "grp",
    metadata,
    Column("id", _id(), nullable=False),
    Column("name", name_type(), nullable=False),
    Column("is_organization", Boolean(), nullable=False),
    Column("title", Text(), nullable=True),
    Column("description", Text(), nullable=True),
    Column("image_url", Text(), nullable=True),
    Column("type", String(), nullable=False),
    Column("state", String(), nullable=False),
    Column("extras", Text(), nullable=False),
    Column("created", UtcDateTime(), nullable=False),
    Column("revision", Integer(), nullable=False),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("name"),
)
Index("ix_grp_is_organization_name", grp.c.is_organization, grp.c.name)

member = Table(
    "member",
    metadata,
    Column("group_id", _id(), nullable=False),
    Column("user_id", _id(), nullable=False),
    Column("capacity", String(), nullable=False),
    PrimaryKeyConstraint("group_id", "user_id"),
)
Index("ix_member_user_id_group_id", member.c.user_id, member.c.group_id)

usr = Table(
    "usr",
    metadata,
    Column("id", _id(), nullable=False),
    Column("name", name_type(), nullable=False),
    Column("email", Text(), nullable=True),
    Column("email_lower", Text(), nullable=True),
    Column("fullname", Text(), nullable=True),
    Column("about", Text(), nullable=True),
    Column("image_url", Text(), nullable=True),
    Column("password_hash", Text(), nullable=True),
    Column("sysadmin", Boolean(), nullable=False),
    Column("state", String(), nullable=False),
    Column("created", UtcDateTime(), nullable=False),
    Column("revision", Integer(), nullable=False),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("name"),
)
Index("ix_usr_email_lower", usr.c.email_lower)

api_token = Table(
    "api_token",
    metadata,
    Column("id", _id(), nullable=False),
    Column("user_id", _id(), nullable=False),
    Column("name", Text(), nullable=False),
    Column("token_hash", String(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("token_hash"),
)
Index("ix_api_token_user_id_created_at", api_token.c.user_id, api_token.c.created_at)

vocabulary = Table(
    "vocabulary",
    metadata,
    Column("id", _id(), nullable=False),
    Column("name", name_type(), nullable=False),
    Column("tags", Text(), nullable=False),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("name"),
)

activity = Table(
    "activity",
    metadata,
    Column("id", _id(), nullable=False),
    Column("timestamp", UtcDateTime(), nullable=False),
    Column("user_id", _id(), nullable=True),
    Column("object_id", _id(), nullable=False),
    Column("object_type", String(), nullable=False),
    Column("activity_type", String(), nullable=False),
    Column("data", Text(), nullable=False),
    Column("permission_labels", Text(), nullable=False),
    PrimaryKeyConstraint("id"),
)
Index("ix_activity_timestamp_id", activity.c.timestamp, activity.c.id)
Index("ix_activity_object_id", activity.c.object_id, activity.c.timestamp, activity.c.id)
Index("ix_activity_user_id", activity.c.user_id, activity.c.timestamp, activity.c.id)

outbox = Table(
    "outbox",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("topic", String(), nullable=False),
    Column("object_id", _id(), nullable=False),
    Column("created", UtcDateTime(), nullable=False),
    sqlite_autoincrement=True,
)

resource_files = Table(
    "resource_files",
    metadata,
    Column("resource_id", _id(), nullable=False),
    Column("package_id", _id(), nullable=False),
    Column("blob_key", Text(), nullable=True),
    Column("uploaded", Boolean(), nullable=False),
    Column("size", BigInteger(), nullable=True),
    Column("sha256", String(), nullable=True),
    Column("mimetype", Text(), nullable=True),
    Column("format", Text(), nullable=True),
    Column("encoding", Text(), nullable=True),
    Column("text_key", Text(), nullable=True),
    Column("text_truncated", Boolean(), nullable=False),
    Column("preview_key", Text(), nullable=True),
    Column("status", String(), nullable=False),
    Column("job_id", _id(), nullable=True),
    Column("error", Text(), nullable=True),
    Column("steps", Text(), nullable=False),
    Column("source_url", Text(), nullable=True),
    Column("health_status", String(), nullable=True),
    Column("health_checked", UtcDateTime(), nullable=True),
    Column("health_http_status", Integer(), nullable=True),
    Column("health_error", Text(), nullable=True),
    Column("health_etag", Text(), nullable=True),
    Column("health_last_modified", Text(), nullable=True),
    Column("updated", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("resource_id"),
)
Index("ix_resource_files_package_id", resource_files.c.package_id)
Index("ix_resource_files_status", resource_files.c.status)
Index("ix_resource_files_health_status", resource_files.c.health_status)
Index("ix_resource_files_updated", resource_files.c.updated)
