"""Alembic migrations of the registry schema, applied in code (no alembic.ini at runtime).

``upgrade(engine)`` brings any database — empty, or made by an older modreg — to the head
revision. On PostgreSQL it holds an advisory lock meanwhile, so replicas starting together
migrate one at a time. A migration that must read blobs (0002 follows folder outputs into
their manifests) gets the registry's blob store, when the caller hands one over.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text

if TYPE_CHECKING:
    from alembic.config import Config

    from modreg.registry.blobs import BlobStore

MIGRATIONS_DIR = Path(__file__).resolve().parent
_PG_LOCK_ID = 0x6D6F6472  # "modr"


def alembic_config(
    connection: Connection | None = None, blob_store: BlobStore | None = None
) -> Config:
    """An Alembic ``Config`` for these migrations, bound to ``connection`` if given."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["blob_store"] = blob_store
    return config


def upgrade(engine: Engine, revision: str = "head", blob_store: BlobStore | None = None) -> None:
    """Migrate the database to ``revision`` under a lock (``blob_store``: see above)."""
    from alembic import command

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        command.upgrade(alembic_config(connection, blob_store), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)
