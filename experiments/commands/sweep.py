"""`python -m experiments sweep ...`: run, queue, resume, inspect, cancel and retry sweeps.

    sweep run SPEC.yaml [--workers N] [--executor local|ray]   # foreground; prints the id last
    sweep submit SPEC.yaml                                     # queue for the background runner
    sweep resume SWEEP_ID                                      # finish an interrupted sweep
    sweep status [SWEEP_ID] [--json]
    sweep cancel SWEEP_ID
    sweep retry SWEEP_ID                                       # re-queue failed runs

Every command takes `--db PATH` (default: Settings().db_path). A spec is validated before the
store is opened, so a bad spec writes nothing, not even the database file. `sweep status` opens
the store read-only (it works on a store this user cannot write). `sweep run` and `sweep resume`
exit 0 when every run ended done or diverged (a diverged run is a result), 1 when a run failed
or was cancelled (a summary line says which), 2 for bad input or a store fault.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.errors import StoreError, UserError
from experiments.settings import Settings

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.spec.sweep import SweepSpec
    from experiments.store import Store, SweepSummary


def add_db_arg(p: argparse.ArgumentParser) -> None:
    """The `--db PATH` flag every store command takes."""
    p.add_argument(
        "--db", type=Path, default=None,
        help="DuckDB store file (default: MUTRANSFER_DB_PATH or data/mutransfer.duckdb)",
    )


def db_path(args: argparse.Namespace) -> Path:
    """The store path from `--db`, else from the settings."""
    return Path(args.db) if args.db is not None else Settings().db_path


def open_store(path: Path, create: bool = False, read_only: bool = False) -> Store:
    """Open the store; refuses to create a new file unless `create`.

    Args:
        path: the store file.
        create: create it (and its folder) when missing.
        read_only: attach it read-only, for commands that only read: they work on a store this
            user cannot write, and change nothing (not even a schema migration).

    Raises:
        UserError: the file does not exist and `create` is False.
        StoreError: the file is corrupt, or this user cannot read it (or write it or its folder,
            unless `read_only`).
    """
    if not create and not path.exists():
        raise UserError(
            f"no store at {path}: run `python -m experiments sweep run SPEC.yaml --db {path}` "
            "first, or pass the right --db"
        )
    from experiments.store import Store

    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except PermissionError:
            raise StoreError(f"cannot create the folder of the store {path}: permission denied. "
                             "Pass --db in a folder you can write to", "dir_not_writable") from None
    return Store(path, read_only=read_only and not create)


def parse_sweep_id(text: str) -> int:
    """A sweep id from the command line.

    Raises:
        UserError: not a positive integer.
    """
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"SWEEP_ID must be an integer (see `sweep status`), got {text!r}") from None
    if value < 1:
        raise UserError(f"SWEEP_ID must be >= 1 (see `sweep status`), got {value}")
    return value


def summary_dict(s: SweepSummary) -> dict[str, Any]:
    """A sweep summary as plain JSON data (the `sweep status --json` shape)."""
    return dict(json.loads(json.dumps(s.to_dict(), default=str)))


def find_sweep(store: Store, sweep_id: int) -> dict[str, Any]:
    """The summary of one sweep.

    Raises:
        UserError: no sweep has this id.
    """
    sweeps = [summary_dict(s) for s in store.list_sweeps()]
    for s in sweeps:
        if int(s["id"]) == sweep_id:
            return s
    known = ", ".join(str(s["id"]) for s in sweeps[-10:]) or "none yet"
    raise UserError(f"no sweep with id {sweep_id} in this store (ids: {known}): see `sweep status`")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `sweep` and its sub-commands."""
    sweep = subparsers.add_parser("sweep", help="run, queue, resume, inspect, cancel sweeps",
                                  description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = sweep.add_subparsers(dest="sweep_command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("run", help="run a spec to completion in the foreground; prints the id")
    p.add_argument("spec", type=Path, help="spec file (.yaml or .json)")
    p.add_argument("--workers", type=int, default=None, help="parallel worker processes")
    p.add_argument("--executor", choices=("local", "ray"), default=None,
                   help="where runs execute (default: MUTRANSFER_EXECUTOR or local)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --executor ray: auto (start or join a local Ray), ray://HOST:10001 "
                        "(default: MUTRANSFER_RAY_ADDRESS or auto); see docs/RAY.md")
    add_db_arg(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("submit", help="queue a spec for the background runner; prints the id")
    p.add_argument("spec", type=Path)
    add_db_arg(p)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("resume", help="finish an interrupted sweep in the foreground")
    p.add_argument("sweep_id")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--executor", choices=("local", "ray"), default=None)
    add_db_arg(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("status", help="sweeps with their run counts by state")
    p.add_argument("sweep_id", nargs="?", default=None)
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    add_db_arg(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("cancel", help="cancel a sweep's queued and running runs")
    p.add_argument("sweep_id")
    add_db_arg(p)
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("retry", help="re-queue a sweep's failed runs (then `sweep resume`)")
    p.add_argument("sweep_id")
    add_db_arg(p)
    p.set_defaults(func=cmd_retry)


def _check_workers(workers: int | None) -> None:
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")


def _run_foreground(path: Path, sweep_id: int, workers: int | None, executor: str | None,
                    ray_address: str | None = None) -> SweepSummary:
    """`run_sweep` with a progress display on stderr (tqdm on a TTY, plain lines otherwise)."""
    from experiments.runner import run_sweep

    settings = Settings()
    chosen = executor or settings.executor
    progress = _Progress(sweep_id)
    try:
        return run_sweep(
            path, sweep_id,
            workers=workers if workers is not None else settings.workers,
            executor=chosen,
            ray_address=(ray_address or settings.ray_address) if chosen == "ray" else None,
            progress_cb=progress.from_summary,
        )
    finally:
        progress.close()


class _Progress:
    """Shows done/total runs: a tqdm bar on a TTY, a plain line every 10% otherwise."""

    def __init__(self, sweep_id: int) -> None:
        self.sweep_id = sweep_id
        self.tty = sys.stderr.isatty()
        self.bar: Any = None
        self.last_pct = -1

    def update(self, done: int, total: int, *_: Any, **__: Any) -> None:
        """Show `done` of `total` runs finished."""
        if total <= 0:
            return
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=f"sweep {self.sweep_id}", unit="run",
                                file=sys.stderr)
            self.bar.n = done
            self.bar.refresh()
            return
        pct = int(100 * done / total) // 10 * 10
        if pct > self.last_pct:
            self.last_pct = pct
            print(f"sweep {self.sweep_id}: {done}/{total} runs finished", file=sys.stderr,
                  flush=True)

    def from_summary(self, summary: SweepSummary) -> None:
        """Show the counts of a store summary (the runner's progress callback)."""
        from experiments.states import finished_runs

        counts = summary_dict(summary).get("counts") or {}
        self.update(finished_runs(counts), sum(counts.values()))

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()


def _finish_message(path: Path, summary: SweepSummary) -> int:
    """Print how the sweep ended; returns the exit code: 0 when every run ended done or
    diverged (a diverged run is a result, not a failure), 1 when a run failed or was
    cancelled."""
    from experiments.store import Store

    d = summary_dict(summary)
    sweep_id = int(d["id"])
    counts: dict[str, int] = d.get("counts") or {}
    text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"sweep {sweep_id} {d.get('state', '')}: {text}", file=sys.stderr, flush=True)
    chunks = Store(path).quarantined(sweep_id)
    if chunks:
        print(f"warning: {len(chunks)} metric chunk(s) of sweep {sweep_id} could not be read and "
              f"were quarantined (their runs' curves have gaps): see `python -m experiments sweep "
              f"status {sweep_id} --db {path}`", file=sys.stderr, flush=True)
    failed, cancelled = counts.get("failed", 0), counts.get("cancelled", 0)
    if not failed and not cancelled:
        return 0
    print(f"sweep {sweep_id} did not complete: {failed} failed and {cancelled} cancelled of "
          f"{sum(counts.values())} runs; their errors: `python -m experiments runs {sweep_id} "
          f"--db {path}`; `python -m experiments sweep retry {sweep_id} --db {path}` re-queues "
          "them", file=sys.stderr, flush=True)
    return 1


def cmd_run(args: argparse.Namespace) -> int:
    """Validate the spec, create the sweep, run it to completion, print the id last."""
    from experiments.spec.sweep import load_spec
    from experiments.sweep.submit import create_sweep

    _check_workers(args.workers)
    spec = load_spec(args.spec)  # before the store: a bad spec writes nothing
    path = db_path(args)
    sweep_id = create_sweep(open_store(path, create=True), spec)
    print(f"sweep {sweep_id} '{spec.name}': {_runs_text(spec)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    summary = _run_foreground(path, sweep_id, args.workers, args.executor, args.ray_address)
    code = _finish_message(path, summary)
    print(f"finished in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    print(sweep_id, flush=True)
    return code


def _runs_text(spec: SweepSpec) -> str:
    """The runs a spec makes: "420 runs", or an adaptive search's range ("132 to 420 runs")."""
    if spec.search.kind != "adaptive":
        return f"{spec.n_runs()} runs"
    from experiments.sweep.adaptive import run_bounds

    fewest, most = run_bounds(spec)
    return f"{fewest} to {most} runs (adaptive search; planned as results arrive)"


def cmd_submit(args: argparse.Namespace) -> int:
    """Validate the spec, queue its runs, make sure the background runner runs; print the id.

    A runner that cannot start is reported with its reason (exit 2); the sweep stays queued.
    """
    from experiments.runner import RunnerStartError, ensure_background_runner
    from experiments.spec.sweep import load_spec
    from experiments.sweep.submit import create_sweep

    spec = load_spec(args.spec)
    path = db_path(args)
    sweep_id = create_sweep(open_store(path, create=True), spec)
    try:
        ensure_background_runner(path)
    except RunnerStartError as exc:
        print(sweep_id, flush=True)
        raise RunnerStartError(
            f"sweep {sweep_id} '{spec.name}' is queued, but {exc}; once fixed, run it with "
            f"`python -m experiments sweep resume {sweep_id} --db {path}`") from None
    print(f"queued sweep {sweep_id} '{spec.name}': {_runs_text(spec)}; follow it with "
          f"`python -m experiments sweep status {sweep_id} --db {path}`", file=sys.stderr)
    print(sweep_id, flush=True)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Re-queue runs a crash left running, then run what is left in the foreground."""
    _check_workers(args.workers)
    sweep_id = parse_sweep_id(args.sweep_id)
    path = db_path(args)
    store = open_store(path)
    find_sweep(store, sweep_id)
    for name in ("resume", "requeue_interrupted", "recover_orphans"):
        fn = getattr(store, name, None)
        if callable(fn):
            fn(sweep_id)
            break
    del store
    summary = _run_foreground(path, sweep_id, args.workers, args.executor)
    code = _finish_message(path, summary)
    print(sweep_id, flush=True)
    return code


def format_status(sweeps: list[dict[str, Any]]) -> str:
    """A fixed-width table: id, name, state, runs done/total, counts by state."""
    from experiments.states import finished_runs

    header = ("id", "name", "state", "done", "counts")
    rows = []
    for s in sweeps:
        counts = s.get("counts") or {}
        done, total = finished_runs(counts), sum(counts.values())
        rows.append((str(s["id"]), str(s["name"]), str(s["state"]), f"{done}/{total}",
                     " ".join(f"{k}={v}" for k, v in sorted(counts.items()))))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    """Print sweeps (one, or all) as JSON or a table, with their quarantined metric chunks.

    Opens the store read-only: it works on a store this user cannot write.
    """
    path = db_path(args)
    store = open_store(path, read_only=True)
    if args.sweep_id is not None:
        sweeps = [find_sweep(store, parse_sweep_id(args.sweep_id))]
    else:
        sweeps = [summary_dict(s) for s in store.list_sweeps()]
    searches = _search_lines(store, sweeps) + _quarantine_lines(store, sweeps)
    if args.json:
        print(json.dumps(sweeps, indent=2))
    else:
        print(format_status(sweeps) if sweeps else f"no sweeps in {path}")
        print("\n".join(searches), end="\n" if searches else "")
    return 0


def _quarantine_lines(store: Store, sweeps: list[dict[str, Any]]) -> list[str]:
    """One line per metric chunk that could not be read and was moved aside; each sweep's dict
    gains `quarantined` (a list, [] when none) for `--json`."""
    lines = []
    for s in sweeps:
        chunks = store.quarantined(int(s["id"]))
        s["quarantined"] = [c.to_dict() for c in chunks]
        lines += [f"sweep {s['id']} run {c.run_id}: {c.note()}" for c in chunks]
    return lines


def _search_lines(store: Store, sweeps: list[dict[str, Any]]) -> list[str]:
    """Planned vs done of the adaptive sweeps (experiments.sweep.planning); each one's dict gains
    an `adaptive` entry for `--json`."""
    from experiments.sweep.planning import search_progress

    lines = []
    for s in sweeps:
        progress = search_progress(store, int(s["id"]))
        if progress is not None:
            s["adaptive"] = progress.to_dict()
            lines.append(f"sweep {s['id']} {progress.line()}")
            lines += [f"  warning: {w}" for w in progress.warnings]
    return lines


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel every queued or running run of a sweep."""
    sweep_id = parse_sweep_id(args.sweep_id)
    store = open_store(db_path(args))
    find_sweep(store, sweep_id)
    store.cancel_sweep(sweep_id)
    print(f"cancelled sweep {sweep_id}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    """Re-queue a sweep's failed runs; they run with `sweep resume` or the background runner."""
    sweep_id = parse_sweep_id(args.sweep_id)
    path = db_path(args)
    store = open_store(path)
    find_sweep(store, sweep_id)
    n = store.retry_failed(sweep_id)
    count = f"{n} failed run(s)" if isinstance(n, int) else "failed runs"
    print(f"re-queued {count} of sweep {sweep_id}; run them with "
          f"`python -m experiments sweep resume {sweep_id} --db {path}` (or let the background "
          "runner pick them up)")
    return 0
