"""`mutransfer` (app/cli.py): the engine's commands plus `dashboard`, which execs Streamlit on the
package's own main.py. The exec is replaced by a recorder: nothing is started here."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from app import cli
from experiments.cli import COMMAND_MODULES, build_parser

ROOT = Path(__file__).resolve().parents[2]
ENGINE_COMMANDS = [name.replace("_", "-") for name in COMMAND_MODULES]


def subcommands(parser: Any) -> list[str]:
    """The sub-command names of a parser built by experiments.cli, in --help order."""
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return list(action.choices)


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], dict[str, str]]]:
    """Record `os.execve` calls instead of replacing the test process."""
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(cli.os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    return calls


def test_mutransfer_is_the_engine_cli_plus_dashboard() -> None:
    parser = build_parser(prog=cli.PROG, extra_commands=(cli.register_dashboard,))
    assert parser.prog == "mutransfer"
    assert subcommands(parser) == ["dashboard", *ENGINE_COMMANDS]


def test_python_m_experiments_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.prog == "python -m experiments"
    assert subcommands(parser) == ENGINE_COMMANDS
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m experiments [-h] COMMAND ...")


def test_dashboard_execs_streamlit_on_the_package_main(execs: list[Any], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli.main(["dashboard", "--db", "store/x.duckdb", "--server.port", "8600",
              "--theme.base=dark"])
    ((path, argv, env),) = execs
    main_py = ROOT / "app" / "main.py"
    assert path == sys.executable
    assert argv == [sys.executable, "-m", "streamlit", "run", str(main_py),
                    "--server.port", "8600", "--theme.base=dark"]
    assert env[cli.DB_ENV] == str(tmp_path / "store" / "x.duckdb")  # absolute: cwd-independent


def test_dashboard_without_db_leaves_the_store_to_settings(
    execs: list[Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv(cli.DB_ENV, str(db))
    cli.main(["dashboard"])
    ((_, argv, env),) = execs
    assert argv[4:] == [str(ROOT / "app" / "main.py")]
    assert env[cli.DB_ENV] == str(db)
    assert f"store {db}" in capsys.readouterr().err


def test_the_streamlit_settings_sit_beside_main_py() -> None:
    # Streamlit reads <script dir>/.streamlit/config.toml whatever the working directory, so
    # an installed dashboard binds to loopback too.
    config = tomllib.loads((cli.MAIN_SCRIPT.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["port"] == 8501


def test_unknown_arguments_of_engine_commands_are_still_errors(
    execs: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["describe", "--model", "mlp", "--width", "64", "--server.port", "1"])
    assert exc.value.code == 2
    assert "mutransfer: error: unrecognized arguments: --server.port 1" in capsys.readouterr().err
    assert execs == []
