"""Evolving modules (issue 12): dependents learned from runs, and deprecation successors.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 11:00:00

Schema:
- ``dependent``: one row per (module, team, pipeline, step, range as written, version
  resolved) that a recorded run used, with the last such run's id and date
  (``registry/dependents.py``).
- ``module_version.replaced_by`` (text, nullable): a deprecated version's successor,
  ``team/name@RANGE``.

Data: the dependents of runs recorded before this revision are read from their stored
locks, so an upgraded registry answers ``modreg dependents`` from its whole history.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from modreg.registry.dependents import uses_of

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KEY = ("module_id", "team_id", "pipeline", "step", "range", "version")


def upgrade() -> None:
    op.add_column("module_version", sa.Column("replaced_by", sa.String(200), nullable=True))
    dependent = op.create_table(
        "dependent",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("module_id", sa.Integer(), sa.ForeignKey("module.id"), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("team.id"), nullable=False),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("range", sa.String(200), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("last_run_id", sa.String(32), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            *KEY, name="uq_dependent_module_id_team_id_pipeline_step_range_version"
        ),
    )
    op.create_index("ix_dependent_module_id", "dependent", ["module_id"])
    _backfill(dependent)


def _backfill(dependent: sa.Table) -> None:
    """One row per use in the recorded runs' locks, the latest run winning."""
    bind = op.get_bind()
    names = "SELECT module.id, module.name, team.name FROM module JOIN team ON team.id = team_id"
    modules = {f"{team}/{name}": id_ for id_, name, team in bind.execute(sa.text(names))}
    runs = sa.table(
        "pipeline_run", sa.column("id"), sa.column("team_id"), sa.column("pipeline"),
        sa.column("created_at", sa.DateTime()), sa.column("lock", sa.JSON),
    )  # fmt: skip
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for run in bind.execute(sa.select(runs).order_by(runs.c.created_at, runs.c.id)):
        for use in uses_of(run.lock or {}):
            if use.module not in modules or len(run.pipeline) > 200:
                continue
            row = {
                "module_id": modules[use.module], "team_id": run.team_id,
                "pipeline": run.pipeline, "step": use.step, "range": use.range,
                "version": use.version, "last_run_id": run.id, "last_run_at": run.created_at,
            }  # fmt: skip
            latest[tuple(row[k] for k in KEY)] = row
    if latest:
        op.bulk_insert(dependent, list(latest.values()))


def downgrade() -> None:
    op.drop_index("ix_dependent_module_id", "dependent")
    op.drop_table("dependent")
    op.drop_column("module_version", "replaced_by")
