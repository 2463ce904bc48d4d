"""`python -m experiments.runner --db PATH`: the background runner (all sweeps of a store)."""

from __future__ import annotations

import argparse

from experiments.runner.loop import run_pending
from experiments.settings import get_settings


def main() -> None:
    """Resume dead runners' runs, then run queued runs until idle for --idle-exit seconds."""
    p = argparse.ArgumentParser(prog="python -m experiments.runner")
    p.add_argument("--db", default=None)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--idle-exit", type=float, default=60.0, help="seconds idle before exiting")
    p.add_argument("--forever", action="store_true", help="never exit when idle")
    args = p.parse_args()
    settings = get_settings()
    run_pending(
        args.db or settings.db_path,
        workers=args.workers or settings.workers,
        executor=settings.executor,
        ray_address=settings.ray_address,
        idle_exit_s=float("inf") if args.forever else args.idle_exit,
    )


if __name__ == "__main__":
    main()
