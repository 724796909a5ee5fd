"""Garbage collection: when each blob was last seen, and pinned runs.

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-20 09:00:00

Schema: ``blob.last_seen`` (indexed; refreshed by uploads and by every new reference, read
by ``modreg gc``'s grace period) and ``pipeline_run.pinned`` (a pinned run's step outputs,
logs and cache entries are kept whatever the retention). See ``registry/gc.py``.

Data: every existing blob was last seen when it was created, and no run is pinned.
``last_seen`` stays nullable in the schema (SQLite adds no NOT NULL column without a
constant default); every row has one, and a row without one is never collected.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTERs, not batch mode: on SQLite a batch would recreate ``blob`` and
    # ``pipeline_run``, which other tables' foreign keys refer to
    op.add_column("blob", sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True))
    op.execute(sa.text("UPDATE blob SET last_seen = created_at"))
    op.create_index(op.f("ix_blob_last_seen"), "blob", ["last_seen"], unique=False)
    op.add_column(
        "pipeline_run",
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("pipeline_run", "pinned")
    op.drop_index(op.f("ix_blob_last_seen"), table_name="blob")
    op.drop_column("blob", "last_seen")
