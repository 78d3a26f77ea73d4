"""The resource_files table: what uploads, the pipeline and the link checker derived from
each resource's content.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Mirrored by ``opencatalog.adapters.sqlalchemy.tables.resource_files``. The DDL is written out
here so the migration stays fixed whatever that module becomes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the resource_files table and its indexes."""
    op.create_table(
        "resource_files",
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("package_id", sa.String(), nullable=False),
        sa.Column("blob_key", sa.Text(), nullable=True),
        sa.Column("uploaded", sa.Boolean(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(), nullable=True),
        sa.Column("mimetype", sa.Text(), nullable=True),
        sa.Column("format", sa.Text(), nullable=True),
        sa.Column("encoding", sa.Text(), nullable=True),
        sa.Column("text_key", sa.Text(), nullable=True),
        sa.Column("text_truncated", sa.Boolean(), nullable=False),
        sa.Column("preview_key", sa.Text(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column("health_status", sa.String(), nullable=True),
        sa.Column("health_checked", _when(), nullable=True),
        sa.Column("health_http_status", sa.Integer(), nullable=True),
        sa.Column("health_error", sa.Text(), nullable=True),
        sa.Column("health_etag", sa.Text(), nullable=True),
        sa.Column("health_last_modified", sa.Text(), nullable=True),
        sa.Column("updated", _when(), nullable=False),
        sa.PrimaryKeyConstraint("resource_id", name="pk_resource_files"),
    )
    op.create_index("ix_resource_files_package_id", "resource_files", ["package_id"])
    op.create_index("ix_resource_files_status", "resource_files", ["status"])
    op.create_index("ix_resource_files_health_status", "resource_files", ["health_status"])
    op.create_index("ix_resource_files_updated", "resource_files", ["updated"])


def downgrade() -> None:
    """Drop the resource_files table (the blobs it named become orphans for the sweep)."""
    op.drop_table("resource_files")
