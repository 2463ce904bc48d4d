"""The project as a library: `pip install .` gives `mucore`, `experiments`, `app` and the
`mutransfer` command, with the pins of the requirement files and the files the code reads.

The fast tests read pyproject.toml; the slow one installs the package into a fresh virtual
environment (pip's configured index; torch is a local wheel here) and uses it the way a user
does, from a directory outside the checkout: the command, a sweep into the default store, an
export, the bundle applied in user code, the dashboard served and rendered.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mucore", "experiments", "app")
# What a build reads besides the packages (pyproject's readme and dynamic requirement files).
BUILD_FILES = ("pyproject.toml", "README.md", "requirements.txt", "requirements-ray.txt",
               "requirements-hf.txt")
TORCH_PIN = "torch==2.13.0"


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def requirement_lines(path: Path) -> list[str]:
    """A requirement file's requirements, as setuptools reads them (comments and blanks out)."""
    lines = (ln.strip() for ln in path.read_text().splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


# --- fast: the packaging metadata ----------------------------------------------------------------


def test_dependencies_are_read_from_the_requirement_files() -> None:
    project = _pyproject()["project"]
    dynamic = _pyproject()["tool"]["setuptools"]["dynamic"]
    assert {"version", "dependencies", "optional-dependencies"} <= set(project["dynamic"])
    assert "dependencies" not in project and "optional-dependencies" not in project
    assert dynamic["dependencies"] == {"file": ["requirements.txt"]}
    assert dynamic["optional-dependencies"] == {"ray": {"file": ["requirements-ray.txt"]},
                                                "hf": {"file": ["requirements-hf.txt"]}}


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-ray.txt", "requirements-hf.txt"])
def test_requirement_files_hold_only_exact_pins(name: str) -> None:
    # setuptools reads these as the package's dependencies: a `-r` or other pip option, or an
    # inline comment, would break the build; an unpinned torch pulls a multi-GB CUDA build.
    for line in requirement_lines(ROOT / name):
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{name}: pin {line!r} with =="
    if name == "requirements.txt":
        assert TORCH_PIN in requirement_lines(ROOT / name)


def test_the_dockerfile_pins_the_same_torch() -> None:
    pins = re.findall(r"torch==[\w.+]+", (ROOT / "Dockerfile").read_text())
    assert pins and set(pins) == {TORCH_PIN}, pins


def test_package_data_covers_every_non_python_file_in_the_packages() -> None:
    package_data: dict[str, list[str]] = _pyproject()["tool"]["setuptools"]["package-data"]
    missing = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*")):
            rel = path.relative_to(ROOT / pkg).as_posix()
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in rel:
                continue
            if not any(fnmatch.fnmatch(rel, pat) for pat in package_data.get(pkg, [])):
                missing.append(f"{pkg}/{rel}")
    assert missing == [], f"not shipped by `pip install .`: add to package-data: {missing}"


def test_the_console_command_is_the_app_cli() -> None:
    assert _pyproject()["project"]["scripts"] == {"mutransfer": "app.cli:main"}


def test_the_checkout_keeps_its_store_in_the_checkout() -> None:
    from experiments import settings

    assert settings.IS_SOURCE_CHECKOUT
    assert settings.DEFAULT_DATA_DIR == ROOT / "data"


# --- slow: a real install, used from outside the checkout ----------------------------------------

TINY_SPEC = {
    "name": "tiny", "model": {"kind": "mlp", "depth": 2}, "task": {"name": "synthetic"},
    "widths": [32, 64], "base_width": 32, "parametrizations": ["mup"],
    "lrs": [2.0**-9, 2.0**-7, 2.0**-5], "seeds": [0], "steps": 20, "batch_size": 16,
    "log_every": 5, "device": "cpu",
}

# User code: the installed packages, a bundle applied to a model, one training step.
USER_SCRIPT = """
import json
from pathlib import Path

import torch

import app, experiments, mucore
from app.setup import presets
from experiments.bundle.build import read_bundle, target_model
from experiments.settings import get_settings

bundle = mucore.load_bundle("bundle.json")
model, optimizer = mucore.apply_bundle(bundle, target_model(read_bundle("bundle.json")), seed=0)
first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
loss = model(torch.randn(8, first.in_features)).square().mean()
loss.backward()
optimizer.step()
print(json.dumps({
    "files": {m.__name__: m.__file__ for m in (app, experiments, mucore)},
    "quick_preset": presets.QUICK_SPEC_PATH.is_file(),
    "streamlit_config": (Path(app.__file__).parent / ".streamlit" / "config.toml").is_file(),
    "db_path": str(get_settings().db_path),
    "loss": float(loss),
}))
"""

# The dashboard's home page rendered headless from the installed package.
APPTEST_SCRIPT = """
from pathlib import Path

from streamlit.testing.v1 import AppTest

import app

at = AppTest.from_file(str(Path(app.__file__).parent / "main.py"), default_timeout=90).run()
assert not at.exception, [e.value for e in at.exception]
print(at.title[0].value)
"""


def _clean_env() -> dict[str, str]:
    """The environment without anything that would import the checkout or pick its store."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("MUTRANSFER_")}
    return {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run(cmd: list[str | Path], cwd: Path, timeout: float = 300) -> str:
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_clean_env(), capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def _copy_sources(dest: Path) -> Path:
    """What the build reads, copied: a build writes build/ and *.egg-info beside its sources,
    which must not land in (or race over) the checkout."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=ignore)
    for name in BUILD_FILES:
        shutil.copy2(ROOT / name, dest / name)
    return dest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_dashboard(mutransfer: Path, db: Path, cwd: Path) -> str:
    """Start `mutransfer dashboard`, wait for Streamlit's health check, stop it; its log."""
    port = _free_port()
    log_path = cwd / "dashboard.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(mutransfer), "dashboard", "--db", str(db), "--server.port", str(port)],
            cwd=cwd, env=_clean_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        url = f"http://127.0.0.1:{port}/_stcore/health"
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if urllib.request.urlopen(url, timeout=2).read().strip() == b"ok":
                    break
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        else:
            pytest.fail(f"dashboard did not come up:\n{log_path.read_text()}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return log_path.read_text()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pip_install_gives_the_packages_the_command_and_the_dashboard(tmp_path: Path) -> None:
    src = _copy_sources(tmp_path / "src")
    venv = tmp_path / "venv"
    work = tmp_path / "work"  # the user's directory, outside the checkout
    work.mkdir()
    try:
        _run([sys.executable, "-m", "venv", venv], cwd=work)
        python, mutransfer = venv / "bin" / "python", venv / "bin" / "mutransfer"
        # --no-compile: byte-compiling all of torch is most of the install time on a busy machine.
        _run([python, "-m", "pip", "install", "--quiet", "--no-compile", src], cwd=work,
             timeout=600)

        help_text = _run([mutransfer, "--help"], cwd=work)
        assert help_text.startswith("usage: mutransfer ")
        assert all(c in help_text for c in ("dashboard", "sweep", "export", "verify"))
        assert _run([mutransfer, "sweep", "--help"], cwd=work).startswith("usage: mutransfer sweep")
        assert "python -m experiments" in _run([python, "-m", "experiments", "--help"], cwd=work)
        requires = _run([python, "-c", "import importlib.metadata as m, json; "
                         "print(json.dumps(m.requires('mutransfer')))"], cwd=work)
        assert [r for r in json.loads(requires) if "extra ==" not in r] == requirement_lines(
            ROOT / "requirements.txt")

        # A sweep into the default store (data/ under the working directory), then an export.
        (work / "tiny.yaml").write_text(yaml.safe_dump(TINY_SPEC))
        _run([mutransfer, "sweep", "run", "tiny.yaml", "--workers", "1"], cwd=work)
        assert (work / "data" / "mutransfer.duckdb").is_file()
        _run([mutransfer, "export", "1", "--target-width", "128", "--out", "bundle.json",
              "--force"], cwd=work)

        report = json.loads(_run([python, "-c", USER_SCRIPT], cwd=work).strip().splitlines()[-1])
        for name, file in report["files"].items():
            path = Path(file).resolve()
            assert path.is_relative_to(venv.resolve()), f"{name} imported from {path}"
            assert not path.is_relative_to(ROOT), f"{name} imported from the checkout"
        assert report["quick_preset"] and report["streamlit_config"]
        assert Path(report["db_path"]) == work.resolve() / "data" / "mutransfer.duckdb"

        db = tmp_path / "dash-store" / "mutransfer.duckdb"
        log = _serve_dashboard(mutransfer, db, cwd=work)
        assert f"store {db}" in log
        # app/.streamlit/config.toml was applied: loopback only, no "Network URL".
        assert "http://127.0.0.1:" in log and "Network URL" not in log, log
        assert "µTransfer dashboard" in _run([python, "-c", APPTEST_SCRIPT], cwd=work)
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # ~1.7 GB
