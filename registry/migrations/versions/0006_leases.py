"""One execution per fingerprint across machines (issue 11): leases, and cache entries whose
outputs stay in a shared artifact store.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:20:00

Schema:
- ``lease``: one row per ``(team, fingerprint)`` being executed — its holder (an engine) and
  when the lease expires unless renewed (``registry/leases.py``);
- ``cache_entry.store`` (nullable): the URL of the shared artifact store that holds the
  entry's outputs (``--store s3://…``); NULL for outputs in the registry's own blobs.

Data: no lease exists yet; every existing cache entry names registry blobs (NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lease",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_lease_team_id_team")),
        sa.PrimaryKeyConstraint("team_id", "fingerprint", name=op.f("pk_lease")),
    )
    op.create_index(op.f("ix_lease_expires_at"), "lease", ["expires_at"], unique=False)
    op.add_column("cache_entry", sa.Column("store", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    op.drop_column("cache_entry", "store")
    op.drop_index(op.f("ix_lease_expires_at"), table_name="lease")
    op.drop_table("lease")
