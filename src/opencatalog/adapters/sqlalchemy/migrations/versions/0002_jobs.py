"""The job table of the SQL task queue.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02

Mirrored by ``opencatalog.adapters.sqlalchemy.jobs.job``. The DDL is written out here so the
migration stays fixed whatever that module becomes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FRESH_PENDING = "status = 'pending' AND attempts = 0 AND dedupe_key IS NOT NULL"


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the job table and its indexes."""
    op.create_table(
        "job",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", _when(), nullable=False),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", _when(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("created", _when(), nullable=False),
        sa.Column("updated", _when(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_job"),
        sa.UniqueConstraint("id", name="uq_job_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_job_status_seq", "job", ["status", "seq"])
    op.create_index("ix_job_status_lease_until", "job", ["status", "lease_until"])
    op.create_index("ix_job_kind_seq", "job", ["kind", "seq"])
    op.create_index(
        "uq_job_dedupe_key_fresh",
        "job",
        ["dedupe_key"],
        unique=True,
        sqlite_where=sa.text(_FRESH_PENDING),
        postgresql_where=sa.text(_FRESH_PENDING),
    )


def downgrade() -> None:
    """Drop the job table (and with it every job)."""
    op.drop_table("job")
