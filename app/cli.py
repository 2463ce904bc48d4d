"""`mutransfer`, the installed command: the engine's CLI (`python -m experiments`) plus
`dashboard`, which serves this package's `main.py` the way `scripts/dashboard.sh` does.

It lives in `app` because only the app knows where its script is, and imports still point one
way (app -> experiments). `dashboard` replaces this process with `python -m streamlit run
<package>/main.py ...` (the script's `exec`), so Ctrl-C and the exit code are Streamlit's own.
Streamlit's settings (loopback bind, port 8501, headless) come from `app/.streamlit/config.toml`,
which Streamlit reads beside the script whatever the working directory.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from experiments.cli import build_parser, dispatch
from experiments.settings import get_settings

PROG = "mutransfer"
# Found through the package, so it is the installed copy when installed, the checkout's otherwise.
MAIN_SCRIPT = Path(__file__).resolve().parent / "main.py"
DB_ENV = "MUTRANSFER_DB_PATH"  # what Settings.db_path reads in the Streamlit process


def register_dashboard(subparsers: argparse._SubParsersAction) -> None:
    """Add the `dashboard` sub-command."""
    p = subparsers.add_parser(
        "dashboard",
        help="start the dashboard on http://127.0.0.1:8501 (Streamlit)",
        description="Serve the µTransfer dashboard (`streamlit run app/main.py`).",
        epilog="Other arguments go to `streamlit run`, e.g. `--server.port 8600` or "
        "`--server.address 0.0.0.0` (to serve beyond this machine).",
    )
    p.add_argument(
        "--db", type=Path, default=None,
        help=f"the store (default: env {DB_ENV}, else data/mutransfer.duckdb)",
    )
    p.set_defaults(func=run_dashboard, streamlit_args=[])


def streamlit_argv(streamlit_args: Sequence[str]) -> list[str]:
    """The command that serves the dashboard: `python -m streamlit run <app>/main.py ARGS`."""
    return [sys.executable, "-m", "streamlit", "run", str(MAIN_SCRIPT), *streamlit_args]


def dashboard_env(db: Path | None) -> dict[str, str]:
    """This process's environment, with `--db` (made absolute) as the store when given."""
    env = dict(os.environ)
    if db is not None:
        env[DB_ENV] = str(db.expanduser().resolve())
    return env


def run_dashboard(args: argparse.Namespace) -> int:
    """Replace this process with the Streamlit server; returns only if exec fails (it raises)."""
    # The default store depends on where the package lives and the working directory: say it.
    store = Path(args.db if args.db is not None else get_settings().db_path)
    print(f"{PROG} dashboard: store {store.expanduser().resolve()}", file=sys.stderr, flush=True)
    env = dashboard_env(args.db)
    argv = streamlit_argv(args.streamlit_args)
    os.execve(argv[0], argv, env)
    return 0  # not reached: execve does not return


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the command; arguments `dashboard` does not know go to Streamlit."""
    parser = build_parser(prog=PROG, extra_commands=(register_dashboard,))
    args, rest = parser.parse_known_args(argv)
    if rest:
        if args.command != "dashboard":
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.streamlit_args = rest
    return dispatch(args)
