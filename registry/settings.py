"""The registry's settings: one object, read from arguments or ``MODREG_*`` variables.

Nothing reads the environment at import time; ``Settings.from_env()`` does it when asked,
and ``create_app(settings)`` / ``serve(settings)`` take the object as an argument.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modreg.registry.units import parse_duration

ENV_PREFIX = "MODREG_"
MIB = 1024 * 1024


class Settings(BaseModel):
    """How one registry server runs: where it listens, what it stores where, who may read."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=0, le=65535)
    data_dir: Path = Path(".modreg-data")
    db_url: str | None = None  # default: SQLite in data_dir/registry.db
    private: bool = False
    max_upload_bytes: int = Field(default=100 * MIB, ge=1)
    blob_url: str | None = None  # fsspec URL for blobs; default: data_dir/blobs
    access_log: bool = False
    cache_retention: timedelta | None = None  # cache entries older than this expire; None: never

    @field_validator("cache_retention", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        """``30d``, ``12h``, … as ``modreg gc --grace`` takes them; ``never`` or empty: None."""
        if isinstance(value, str):
            text = value.strip().lower()
            return None if text in ("", "never", "none") else parse_duration(text)
        return value

    # a running run whose engine sent nothing for this long reads ``abandoned`` (the engine
    # heartbeats every 30 s by default: ten missed beats)
    run_heartbeat_timeout: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _default_db(self) -> Settings:
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        if not self.db_url:
            self.db_url = f"sqlite:///{self.data_dir / 'registry.db'}"
        return self

    @property
    def database_url(self) -> str:
        """The database URL, never None once validated."""
        assert self.db_url is not None
        return self.db_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``MODREG_HOST``, ``MODREG_DB_URL``, … with ``overrides`` on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(f"{ENV_PREFIX}{name.upper()}")
            if raw is not None:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
