"""Hardening (issue 8): when each blob was last seen, pinned runs, and run heartbeats.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 08:15:00

Schema:
- ``blob.last_seen`` (indexed): refreshed by uploads and by every new reference, read by
  ``modreg gc``'s grace period (``registry/gc.py``);
- ``pipeline_run.pinned``: a pinned run's step outputs, logs and cache entries are kept
  whatever the retention;
- ``pipeline_run.heartbeat_at``: every write of the engine to a run sets it; a run still
  ``running`` whose heartbeat is older than the registry's ``run_heartbeat_timeout`` reads
  ``abandoned`` (``registry/runs.py``).

Data: every existing blob was last seen when it was created; no run is pinned; existing runs
get their ``created_at`` as their last heartbeat, so a run left ``running`` by a killed engine
before this revision reads ``abandoned`` at once. ``last_seen`` and ``heartbeat_at`` stay
nullable in the schema (SQLite adds no NOT NULL column without a constant default); every row
has one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


# plain ALTERs, not batch mode: on SQLite a batch would recreate ``blob`` and
# ``pipeline_run``, and dropping the old copy breaks the foreign keys other tables hold
def upgrade() -> None:
    op.add_column("blob", sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True))
    op.execute(sa.text("UPDATE blob SET last_seen = created_at"))
    op.create_index(op.f("ix_blob_last_seen"), "blob", ["last_seen"], unique=False)
    op.add_column(
        "pipeline_run",
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("pipeline_run", sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
    op.execute(sa.text("UPDATE pipeline_run SET heartbeat_at = created_at"))


def downgrade() -> None:
    op.drop_column("pipeline_run", "heartbeat_at")
    op.drop_column("pipeline_run", "pinned")
    op.drop_index(op.f("ix_blob_last_seen"), table_name="blob")
    op.drop_column("blob", "last_seen")
