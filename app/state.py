"""Process-wide and per-session state for the dashboard.

- The engine's `Service` is one `st.cache_resource` singleton per DB path (the path comes from
  `Settings().db_path`, i.e. env `MUTRANSFER_DB_PATH`), shared by every session. Pages reach
  the engine only through it.
- The "current sweep" is a plain session-state value (not a widget key), so it survives page
  switches: Streamlit drops a widget's key when a page that does not draw the widget runs.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from experiments.service import Service
from experiments.settings import Settings, get_settings

CURRENT_SWEEP = "current_sweep_id"


def settings() -> Settings:
    """Fresh deployment settings (env vars are read each time: cheap, and tests can set them)."""
    return get_settings()


def db_path() -> Path:
    """The store's DuckDB file for this server process."""
    return Path(settings().db_path).expanduser().resolve()


@st.cache_resource(show_spinner=False)
def _open_service(path: str) -> Service:
    return Service(path)


def service() -> Service:
    """The engine's service over this server's store (one instance per path per process)."""
    return _open_service(str(db_path()))


def current_sweep_id() -> int | None:
    """The sweep the user is looking at, shared by Runs, Transfer and Export."""
    value = st.session_state.get(CURRENT_SWEEP)
    return None if value is None else int(value)


def set_current_sweep(sweep_id: int | None) -> None:
    """Remember the sweep the user chose (or just launched)."""
    st.session_state[CURRENT_SWEEP] = sweep_id
