"""Deployment settings (not hyperparameters): store path, executor, server bind, workers.

Read from environment variables prefixed `MUTRANSFER_` (and a `.env` file), e.g.
`MUTRANSFER_DB_PATH=/data/store.duckdb`, `MUTRANSFER_EXECUTOR=ray`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


class Settings(BaseSettings):
    """Process-wide deployment knobs, validated after defaults fill."""

    model_config = SettingsConfigDict(env_prefix="MUTRANSFER_", env_file=".env", extra="ignore")

    db_path: Path = Field(
        default=DEFAULT_DATA_DIR / "mutransfer.duckdb",
        description="The embedded DuckDB store; its raw metric chunks live beside it.",
    )
    executor: Literal["local", "ray"] = Field(
        default="local", description="Where runs execute: local worker processes or Ray."
    )
    ray_address: str = Field(
        default="auto", description="'auto' (start or join a local Ray) or 'ray://host:port'."
    )
    workers: int | None = Field(
        default=None, ge=1, description="Local worker processes; None picks from devices/cores."
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.executor == "ray" and not self.ray_address:
            raise ValueError("ray_address must be set when executor is 'ray' (use 'auto')")
        return self


def get_settings() -> Settings:
    """Fresh settings from the environment (cheap; no caching so tests can set env vars)."""
    return Settings()
