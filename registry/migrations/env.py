"""Alembic environment: runs on the connection handed in by ``modreg.registry.migrations``."""

from __future__ import annotations

from alembic import context

from modreg.registry import models

target_metadata = models.SQLModel.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through modreg.registry.migrations.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
