"""The runner registry: which runner processes are alive, so their runs are not taken over.

Each runner registers a token (host:pid:random), refreshes its heartbeat every couple of
seconds and removes itself on a clean exit. A runner that was killed leaves a stale row; the
next runner sees it is dead (stale heartbeat, or its pid gone on this host) and re-queues its
runs (`RunQueue.recover_orphans`). Each row also says which sweep the runner serves (None: every
sweep, as the background runner does), so whoever queues work can tell whether a live runner
will ever claim it (`experiments.runner.ensure_background_runner`).
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass

from experiments.store.db import utc_now
from experiments.store.layout import StoreFiles

# A runner whose heartbeat is older than this is presumed dead (it beats every ~2 s).
RUNNER_STALE_S = 20.0


@dataclass(frozen=True)
class RunnerInfo:
    """A live runner process.

    Attributes:
        token: its registry key, "host:pid:random".
        pid: its process id (on `host`).
        host: the machine it runs on.
        sweep_id: the one sweep it claims runs of, or None when it claims every sweep's.
    """

    token: str
    pid: int
    host: str
    sweep_id: int | None = None

    def to_dict(self) -> dict[str, str | int | None]:
        """The runner as a JSON-ready dict."""
        return asdict(self)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunnerRegistry(StoreFiles):
    """The `runners` table: register, heartbeat, unregister, and who is alive."""

    def register_runner(self, token: str, sweep_id: int | None = None) -> None:
        """Record a live runner (pid, host, heartbeat, and the sweep it serves: None for all)."""
        now = utc_now()
        with self._connect() as con:
            con.execute(
                """INSERT OR REPLACE INTO runners (token, pid, host, started, heartbeat, sweep_id)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                [token, os.getpid(), socket.gethostname(), now, now, sweep_id],
            )

    def heartbeat(self, token: str) -> None:
        """Refresh a runner's heartbeat."""
        with self._connect() as con:
            con.execute("UPDATE runners SET heartbeat = ? WHERE token = ?", [utc_now(), token])

    def unregister_runner(self, token: str) -> None:
        """Remove a runner that exits cleanly."""
        with self._connect() as con:
            con.execute("DELETE FROM runners WHERE token = ?", [token])

    def live_runners(self) -> list[RunnerInfo]:
        """Runners with a fresh heartbeat whose pid is alive (pids are checked on this host only)."""
        with self._connect() as con:
            rows = con.execute("SELECT token, pid, host, heartbeat, sweep_id FROM runners").fetchall()
        here = socket.gethostname()
        out = []
        for token, pid, host, beat, sweep in rows:
            fresh = (utc_now() - beat).total_seconds() < RUNNER_STALE_S
            alive = pid_alive(int(pid)) if host == here else fresh
            if fresh and alive:
                out.append(RunnerInfo(str(token), int(pid), str(host),
                                      None if sweep is None else int(sweep)))
        return out
