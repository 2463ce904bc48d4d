"""`python -m experiments.runner --db PATH`: the background runner (all sweeps of a store)."""

from __future__ import annotations

import argparse
import sys

from experiments.errors import UserError
from experiments.runner.loop import run_pending
from experiments.settings import get_settings


def main() -> int:
    """Resume dead runners' runs, then run queued runs until idle for --idle-exit seconds.

    A store fault (corrupt, not writable) ends it with its message on one line and exit 2,
    which `ensure_background_runner` reports to whoever started it.
    """
    p = argparse.ArgumentParser(prog="python -m experiments.runner")
    p.add_argument("--db", default=None)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--idle-exit", type=float, default=60.0, help="seconds idle before exiting")
    p.add_argument("--forever", action="store_true", help="never exit when idle")
    args = p.parse_args()
    if args.workers is not None and args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr, flush=True)
        return 2
    settings = get_settings()
    try:
        run_pending(
            args.db or settings.db_path,
            workers=args.workers or settings.workers,
            executor=settings.executor,
            ray_address=settings.ray_address,
            idle_exit_s=float("inf") if args.forever else args.idle_exit,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
