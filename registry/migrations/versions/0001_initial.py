"""The initial schema: teams, tokens, modules, versions, blobs, audit, cache, runs.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-29 17:49:57.650544
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blob")),
    )
    op.create_table(
        "team",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team")),
        sa.UniqueConstraint("name", name=op.f("uq_team_name")),
    )
    op.create_table(
        "cache_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("step", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_cache_entry_team_id_team")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cache_entry")),
        sa.UniqueConstraint(
            "team_id", "fingerprint", name=op.f("uq_cache_entry_team_id_fingerprint")
        ),
    )
    op.create_table(
        "module",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("default_version", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_module_team_id_team")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_module")),
        sa.UniqueConstraint("team_id", "name", name=op.f("uq_module_team_id_name")),
    )
    op.create_table(
        "sweep",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("pipeline", sa.String(length=200), nullable=False),
        sa.Column("axes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_sweep_team_id_team")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep")),
    )
    op.create_index(op.f("ix_sweep_team_id"), "sweep", ["team_id"], unique=False)
    op.create_table(
        "token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("scope", sa.String(length=16), nullable=True),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_token_team_id_team")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_token_token_hash")),
    )
    op.create_index(op.f("ix_token_team_id"), "token", ["team_id"], unique=False)
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"], ["token.id"], name=op.f("fk_audit_event_token_id_token")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index(op.f("ix_audit_event_at"), "audit_event", ["at"], unique=False)
    op.create_table(
        "module_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("module_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.String(length=2000), nullable=True),
        sa.Column("commit", sa.String(length=40), nullable=False),
        sa.Column("tree_sha", sa.String(length=40), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("remote", sa.String(length=2000), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["module_id"], ["module.id"], name=op.f("fk_module_version_module_id_module")
        ),
        sa.ForeignKeyConstraint(
            ["published_by"], ["token.id"], name=op.f("fk_module_version_published_by_token")
        ),
        sa.ForeignKeyConstraint(
            ["sha256"], ["blob.sha256"], name=op.f("fk_module_version_sha256_blob")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_module_version")),
        sa.UniqueConstraint(
            "module_id", "version", name=op.f("uq_module_version_module_id_version")
        ),
    )
    op.create_index(op.f("ix_module_version_sha256"), "module_version", ["sha256"], unique=False)
    op.create_table(
        "pipeline_run",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("pipeline", sa.String(length=200), nullable=False),
        sa.Column("sweep_id", sa.String(length=32), nullable=True),
        sa.Column("variant", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=10000), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("lock", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["token.id"], name=op.f("fk_pipeline_run_created_by_token")
        ),
        sa.ForeignKeyConstraint(
            ["sweep_id"], ["sweep.id"], name=op.f("fk_pipeline_run_sweep_id_sweep")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_pipeline_run_team_id_team")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_run")),
    )
    op.create_index(
        op.f("ix_pipeline_run_created_at"), "pipeline_run", ["created_at"], unique=False
    )
    op.create_index(op.f("ix_pipeline_run_sweep_id"), "pipeline_run", ["sweep_id"], unique=False)
    op.create_index(op.f("ix_pipeline_run_team_id"), "pipeline_run", ["team_id"], unique=False)
    op.create_table(
        "step_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=True),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_run.id"], name=op.f("fk_step_run_run_id_pipeline_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_run")),
        sa.UniqueConstraint("run_id", "step", name=op.f("uq_step_run_run_id_step")),
    )
    op.create_index(op.f("ix_step_run_fingerprint"), "step_run", ["fingerprint"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_step_run_fingerprint"), table_name="step_run")
    op.drop_table("step_run")
    op.drop_index(op.f("ix_pipeline_run_team_id"), table_name="pipeline_run")
    op.drop_index(op.f("ix_pipeline_run_sweep_id"), table_name="pipeline_run")
    op.drop_index(op.f("ix_pipeline_run_created_at"), table_name="pipeline_run")
    op.drop_table("pipeline_run")
    op.drop_index(op.f("ix_module_version_sha256"), table_name="module_version")
    op.drop_table("module_version")
    op.drop_index(op.f("ix_audit_event_at"), table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_index(op.f("ix_token_team_id"), table_name="token")
    op.drop_table("token")
    op.drop_index(op.f("ix_sweep_team_id"), table_name="sweep")
    op.drop_table("sweep")
    op.drop_table("module")
    op.drop_table("cache_entry")
    op.drop_table("team")
    op.drop_table("blob")
