"""Short engine jobs started from the browser (coordinate check, verification) as subprocesses.

Each job is a `python -m experiments ...` command with a fixed argument list (never a shell,
never text the browser typed as code) that writes its result as JSON to a file. Jobs live in
one process-wide registry (`st.cache_resource`), keyed by what was asked, so a rerun, another
tab, or a second click on the same request finds the running job instead of starting a new one.
Pages poll `status()` from an `st.fragment(run_every=...)`; no thread ever calls Streamlit.
A finished job's result reaches the page as the engine's type for that command
(`job.result(DoctorResult.from_json)`, re-exported by `experiments.service`), parsed once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import streamlit as st

from experiments.settings import PROJECT_ROOT

JobState = Literal["running", "done", "failed"]
T = TypeVar("T")


@dataclass
class CliJob:
    """One `python -m experiments` subprocess and the JSON file it writes."""

    args: list[str]
    out_path: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    # What the job is, in words (the Runs page lists jobs by it).
    label: str = ""
    # The file the job rewrites with its progress, when its command takes one.
    progress_path: Path | None = None
    started: float = field(default_factory=time.time)
    _parsed: dict[Callable[..., Any], Any] = field(default_factory=dict, repr=False)

    def status(self) -> JobState:
        """running, done (exit 0 and a JSON result), or failed."""
        code = self.proc.poll()
        if code is None:
            return "running"
        return "done" if code == 0 and self.out_path.exists() else "failed"

    def result(self, parse: Callable[[Mapping[str, Any]], T]) -> T:
        """The finished job's JSON result as the engine's type: `parse` is that type's
        `from_json` (e.g. `DoctorResult.from_json`); parsed once per type, then kept (the
        page's fragment redraws every second)."""
        if parse not in self._parsed:
            self._parsed[parse] = parse(json.loads(self.out_path.read_text()))
        return self._parsed[parse]  # type: ignore[no-any-return]

    def error(self) -> str:
        """The last lines the command printed (its message for a user error)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        return "\n".join(lines[-12:]) or f"exit code {self.proc.returncode}"


class JobRegistry:
    """Process-wide map from a request key to its job (at most one job per key)."""

    def __init__(self) -> None:
        self._jobs: dict[str, CliJob] = {}
        self._lock = threading.Lock()  # sessions run scripts in parallel threads
        self._dir = Path(tempfile.mkdtemp(prefix="mutransfer-jobs-"))

    def get(self, key: str) -> CliJob | None:
        """The job started for `key`, if any."""
        return self._jobs.get(key)

    def started(self) -> list[CliJob]:
        """Every job started (and not forgotten by `stop_all`), in start order."""
        with self._lock:
            return list(self._jobs.values())

    def start(self, key: str, args: list[str], restart: bool = False, *, label: str = "",
              progress_flag: str | None = None) -> CliJob:
        """Start `python -m experiments *args --json <out>` unless one is running for `key`.

        Args:
            key: what identifies the request (same key, same job).
            args: the CLI arguments, without `--json`.
            restart: start again even when a finished job exists for `key`.
            label: the job in words, for the Runs page.
            progress_flag: the command's flag that names a progress file (e.g. "--progress"):
                the job gets one, and `CliJob.progress_path` says where.
        """
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and (job.status() == "running" or not restart):
                return job
            n = len(self._jobs)
            out = self._dir / f"job-{n}.json"
            log = self._dir / f"job-{n}.log"
            progress = self._dir / f"job-{n}-progress.json" if progress_flag else None
            extra = [progress_flag, str(progress)] if progress_flag else []
            with log.open("wb") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "experiments", *args, *extra, "--json", str(out)],
                    cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            job = CliJob(args=args, out_path=out, log_path=log, proc=proc, label=label,
                         progress_path=progress)
            self._jobs[key] = job
            return job

    def stop_all(self, timeout_s: float = 10.0) -> int:
        """Stop every job still running (terminate, then kill after `timeout_s`), reap every
        process, and forget all jobs; returns how many were still running.

        For a server (or a test) that ends: a job's process is never left behind unreaped.
        """
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
        running = [job for job in jobs if job.proc.poll() is None]
        for job in running:
            job.proc.terminate()
        for job in jobs:
            try:
                job.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                job.proc.kill()
                job.proc.wait()
        return len(running)


@st.cache_resource(show_spinner=False)
def registry() -> JobRegistry:
    """The one job registry of this server process."""
    return JobRegistry()
