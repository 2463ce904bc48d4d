"""Fixtures for dashboard tests: a fresh store per test and an AppTest of the real app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")


@pytest.fixture
def db_path(tmp_path, monkeypatch) -> Path:
    """A store path in a temp dir, exported as MUTRANSFER_DB_PATH for the app under test."""
    path = tmp_path / "store" / "mutransfer.duckdb"
    path.parent.mkdir()
    monkeypatch.setenv("MUTRANSFER_DB_PATH", str(path))
    return path


@pytest.fixture
def open_page(db_path) -> Callable[..., AppTest]:
    """`open_page("views/runs.py")` -> an AppTest that has run that page once."""

    def _open(page: str | None = None, timeout: float = 60, **session: object) -> AppTest:
        at = AppTest.from_file(MAIN, default_timeout=timeout)
        for key, value in session.items():
            at.session_state[key] = value
        at.run()
        if page is not None:
            at.switch_page(page)
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open


@pytest.fixture(autouse=True)
def _no_job_outlives_its_test():
    """Background jobs a page started (coord check, describe, doctor, verify) end with the test
    that started them: still running ones are stopped, every process is reaped, and the next
    test starts from an empty job registry."""
    yield
    from app import jobs

    jobs.registry().stop_all()


@pytest.fixture
def no_runner(monkeypatch) -> list[Path]:
    """Record background-runner starts instead of spawning one (tests drive runs themselves).

    The seam is `Service.start_runner`, the one place the app starts the engine's runner.
    """
    calls: list[Path] = []
    from experiments.service import Service

    monkeypatch.setattr(Service, "start_runner", lambda self: calls.append(self.db_path))
    return calls
