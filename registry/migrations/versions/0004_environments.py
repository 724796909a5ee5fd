"""Module environments (issue 9): each version's environment lock.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:10:00

Schema:
- ``module_version.environment`` (JSON, nullable): the version's ``EnvironmentPublic`` — the
  lock's sha256, the Python it was resolved for, the declared range and the pinned packages;
  NULL for a module without ``[environment]``.

The lock itself is a blob, referred to by a ``blob_ref`` row of the new kind
``environment`` (the column is text: no schema change), which makes it readable like the
archive and a garbage-collection root.

Data: versions published before this revision have no environment (NULL); they run as they
did, in the engine's own interpreter.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("module_version", sa.Column("environment", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM blob_ref WHERE kind = 'environment'"))
    op.drop_column("module_version", "environment")
