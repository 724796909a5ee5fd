"""Run heartbeats: when the engine running a run last wrote to it.

Revision ID: 0003
Revises: 0002
Create Date: 2027-02-02 07:40:00

Schema: ``pipeline_run.heartbeat_at`` (nullable). Every write of the engine to a run sets it;
a run still ``running`` whose heartbeat is older than the registry's
``run_heartbeat_timeout`` reads ``abandoned`` (``registry/runs.py``).

Data: existing runs get their ``created_at`` as their last heartbeat, so a run left
``running`` by a killed engine before this revision reads ``abandoned`` at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


# plain ALTER TABLE, not a batch: SQLite's batch mode copies the table, and dropping the
# old copy breaks step_run's foreign key to it
def upgrade() -> None:
    op.add_column("pipeline_run", sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE pipeline_run SET heartbeat_at = created_at")


def downgrade() -> None:
    op.drop_column("pipeline_run", "heartbeat_at")
