"""Deployment settings (not hyperparameters): store path, executor, server bind, workers,
the folders task data may be read from.

Read from environment variables prefixed `MUTRANSFER_` (and a `.env` file), e.g.
`MUTRANSFER_DB_PATH=/data/store.duckdb`, `MUTRANSFER_EXECUTOR=ray`,
`MUTRANSFER_DATA_DIRS=/data/corpora:/scratch/tokens` (os.pathsep-separated),
`MUTRANSFER_MODEL_DIRS=~/my_models` (registered models, os.pathsep-separated).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# From a source checkout (editable installs included) the store lives in the checkout's data/.
# An installed package must not write into site-packages: there it is data/ under the directory
# the command was started from (absolute, so child processes with another cwd agree).
IS_SOURCE_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file()
DEFAULT_DATA_DIR = (PROJECT_ROOT if IS_SOURCE_CHECKOUT else Path.cwd()) / "data"


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
    # NoDecode: the env value is a plain os.pathsep-separated list (like PATH), not JSON.
    data_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders task files and token folders may be read from (`task.path` must lie "
        "inside one, symlinks resolved); os.pathsep-separated. Empty: the `datasets` folder "
        "beside the store (db_path's folder).",
    )
    model_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders of registered models: each `NAME.py` in them that defines "
        "`build(width, *, task, **options)` is the model NAME (`experiments.models.registry`); "
        "os.pathsep-separated, made absolute so child processes agree whatever their cwd.",
    )

    @field_validator("data_dirs", mode="before")
    @classmethod
    def _split_data_dirs(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(os.pathsep) if part.strip()]
        return value

    @field_validator("model_dirs", mode="before")
    @classmethod
    def _split_model_dirs(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(os.pathsep) if part.strip()]
        return [Path(v).expanduser().absolute() for v in value]

    def child_env(self) -> dict[str, str]:
        """Settings a child process (runner, worker, Ray task) must read as this one does,
        as environment variables: a value from `.env` or a relative path would otherwise be
        read again from the child's own working directory."""
        if not self.model_dirs:
            return {}
        return {"MUTRANSFER_MODEL_DIRS": os.pathsep.join(str(d) for d in self.model_dirs)}

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.executor == "ray" and not self.ray_address:
            raise ValueError("ray_address must be set when executor is 'ray' (use 'auto')")
        if not self.data_dirs:
            self.data_dirs = [self.db_path.parent / "datasets"]
        return self


def get_settings() -> Settings:
    """Fresh settings from the environment (cheap; no caching so tests can set env vars)."""
    return Settings()
