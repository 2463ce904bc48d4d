"""Process-wide and per-session state for the dashboard.

- The Store is one `st.cache_resource` singleton per DB path (the path comes from
  `Settings().db_path`, i.e. env `MUTRANSFER_DB_PATH`), shared by every session.
- The "current sweep" is a plain session-state value (not a widget key), so it survives page
  switches: Streamlit drops a widget's key when a page that does not draw the widget runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from experiments.settings import Settings, get_settings

CURRENT_SWEEP = "current_sweep_id"


def settings() -> Settings:
    """Fresh deployment settings (env vars are read each time: cheap, and tests can set them)."""
    return get_settings()


def db_path() -> Path:
    """The store's DuckDB file for this server process."""
    return Path(settings().db_path).expanduser().resolve()


@st.cache_resource(show_spinner=False)
def _open_store(path: str) -> Any:
    from experiments.store import Store

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return Store(path)


def store() -> Any:
    """The Store for this server's DB path (one instance per path per process)."""
    return _open_store(str(db_path()))


def current_sweep_id() -> Any | None:
    """The sweep the user is looking at, shared by Runs, Transfer and Export."""
    return st.session_state.get(CURRENT_SWEEP)


def set_current_sweep(sweep_id: Any | None) -> None:
    """Remember the sweep the user chose (or just launched)."""
    st.session_state[CURRENT_SWEEP] = sweep_id


def ensure_runner() -> None:
    """Start the engine's background runner for this store if it is not running.

    The runner is a separate process (it outlives the browser session); this call only spawns
    it, so it is safe from any script run.
    """
    from experiments.runner import ensure_background_runner

    ensure_background_runner(db_path())
