"""The initial schema: datasets with their query tables, groups, users, tokens, vocabularies,
activities and the outbox.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The DDL is written out here (not derived from ``tables.py``) so that later migrations start
from a fixed, known schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _name() -> sa.types.TypeEngine[str]:
    # Names order by code point everywhere: "C" collation on PostgreSQL.
    return sa.String().with_variant(sa.String(collation="C"), "postgresql")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "dataset",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", _name(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("owner_org", sa.String(), nullable=True),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("creator_user_id", sa.String(), nullable=True),
        sa.Column("metadata_created", _when(), nullable=False),
        sa.Column("metadata_modified", _when(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset"),
        sa.UniqueConstraint("name", name="uq_dataset_name"),
    )
    op.create_index("ix_dataset_owner_org", "dataset", ["owner_org"])
    op.create_index(
        "ix_dataset_modified_name", "dataset", [sa.text("metadata_modified DESC"), "name"]
    )

    op.create_table(
        "dataset_resource",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
            name="fk_dataset_resource_dataset_id_dataset",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_resource"),
    )
    op.create_index("ix_dataset_resource_dataset_id", "dataset_resource", ["dataset_id"])

    op.create_table(
        "dataset_tag",
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.Column("vocabulary", sa.String(), nullable=False),
        sa.Column("name", _name(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
            name="fk_dataset_tag_dataset_id_dataset",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "vocabulary", "name", name="pk_dataset_tag"),
    )
    op.create_index(
        "ix_dataset_tag_vocabulary_name", "dataset_tag", ["vocabulary", "name", "dataset_id"]
    )

    op.create_table(
        "dataset_group",
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
            name="fk_dataset_group_dataset_id_dataset",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "group_id", name="pk_dataset_group"),
    )
    op.create_index("ix_dataset_group_group_id", "dataset_group", ["group_id", "dataset_id"])

    op.create_table(
        "grp",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", _name(), nullable=False),
        sa.Column("is_organization", sa.Boolean(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("extras", sa.Text(), nullable=False),
        sa.Column("created", _when(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_grp"),
        sa.UniqueConstraint("name", name="uq_grp_name"),
    )
    op.create_index("ix_grp_is_organization_name", "grp", ["is_organization", "name"])

    op.create_table(
        "member",
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("capacity", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "user_id", name="pk_member"),
    )
    op.create_index("ix_member_user_id_group_id", "member", ["user_id", "group_id"])

    op.create_table(
        "usr",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", _name(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("email_lower", sa.Text(), nullable=True),
        sa.Column("fullname", sa.Text(), nullable=True),
        sa.Column("about", sa.Text(), nullable=True),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("sysadmin", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("created", _when(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usr"),
        sa.UniqueConstraint("name", name="uq_usr_name"),
    )
    op.create_index("ix_usr_email_lower", "usr", ["email_lower"])

    op.create_table(
        "api_token",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=True),
        sa.Column("last_used_at", _when(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_token"),
        sa.UniqueConstraint("token_hash", name="uq_api_token_token_hash"),
    )
    op.create_index("ix_api_token_user_id_created_at", "api_token", ["user_id", "created_at"])

    op.create_table(
        "vocabulary",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", _name(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vocabulary"),
        sa.UniqueConstraint("name", name="uq_vocabulary_name"),
    )

    op.create_table(
        "activity",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("timestamp", _when(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=True),
        sa.Column("object_id", sa.String(), nullable=False),
        sa.Column("object_type", sa.String(), nullable=False),
        sa.Column("activity_type", sa.String(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("permission_labels", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_activity"),
    )
    op.create_index("ix_activity_timestamp_id", "activity", ["timestamp", "id"])
    op.create_index("ix_activity_object_id", "activity", ["object_id", "timestamp", "id"])
    op.create_index("ix_activity_user_id", "activity", ["user_id", "timestamp", "id"])

    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("object_id", sa.String(), nullable=False),
        sa.Column("created", _when(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    """Drop every table."""
    for table in (
        "outbox",
        "activity",
        "vocabulary",
        "api_token",
        "usr",
        "member",
        "grp",
        "dataset_group",
        "dataset_tag",
        "dataset_resource",
        "dataset",
    ):
        op.drop_table(table)
