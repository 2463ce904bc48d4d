"""Store faults as a user meets them: a damaged DuckDB file, a store or folder this user cannot
write. Each is named with exit 2 and what to do, nothing stored is changed, and the commands
that only read (sweep status, runs, analyze, export's reads) work on a store they cannot write.

Permission tests need a user the permissions apply to: the tests here run as root (where chmod
stops nothing), so those commands run as `nobody` through `setpriv` (util-linux); as any other
user they run directly, where chmod is effective.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.errors import StoreError
from experiments.store import Store

ROOT = Path(__file__).resolve().parents[3]
TINY = """name: tiny
model: {kind: mlp, depth: 2}
task: {name: synthetic}
widths: [32, 64]
base_width: 32
parametrizations: [mup]
lrs: [0.00390625, 0.0078125, 0.015625]
seeds: [0]
steps: 20
batch_size: 16
log_every: 5
device: cpu
"""


def finished_store(folder: Path) -> tuple[Path, Path, int]:
    """A store with one finished sweep of the tiny spec (losses written, nothing trained).

    Returns (store path, spec path, sweep id).
    """
    from experiments.spec.sweep import load_spec
    from experiments.sweep.submit import create_sweep

    spec = folder / "tiny.yaml"
    spec.write_text(TINY)
    db = folder / "s.duckdb"
    store = Store(db)
    sid = create_sweep(store, load_spec(spec))
    for claim in store.claim(100, "fixture"):
        lr = float(store.runs_frame(sid).set_index("run_id").loc[claim.run_id, "lr"])
        loss = 2.0 + 0.05 * (math.log2(lr) + 7.0) ** 2  # optimum 2^-7, inside the grid
        assert store.finish(claim.run_id, claim.attempt,
                            {"state": "done", "final_train_loss": loss, "final_val_loss": loss})
    return db, spec, sid


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The CLI's `main` in-process: (exit code, stdout, stderr)."""
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- A damaged store file --------------------------------------------------------------------


def _zero_length(db: Path) -> None:
    db.write_bytes(b"")


def _truncated(db: Path) -> None:
    with open(db, "r+b") as fh:
        fh.truncate(5000)


def _foreign(db: Path) -> None:
    db.write_bytes(b"this is not a database\n" * 1000)


def _damaged_block(db: Path) -> None:
    with open(db, "r+b") as fh:  # the catalog's block: its checksum no longer matches
        fh.seek(100)
        fh.write(b"\xff" * 4000)


@pytest.mark.parametrize("damage", [_zero_length, _truncated, _foreign, _damaged_block],
                         ids=["zero-length", "truncated", "foreign", "damaged-block"])
def test_a_damaged_store_file_is_named_with_exit_2_and_left_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: object
) -> None:
    # Before: a DuckDB traceback ("not a valid DuckDB database file", "Could not read enough
    # bytes", "Corrupt database file") and exit 1, from every command.
    db, spec, sid = finished_store(tmp_path)
    damage(db)  # type: ignore[operator]
    before = db.read_bytes()
    for argv in (["sweep", "status"], ["runs", str(sid)], ["analyze", str(sid)],
                 ["sweep", "cancel", str(sid)], ["sweep", "run", str(spec)]):
        code, _, err = run_main([*argv, "--db", str(db)], capsys)
        assert code == 2, (argv, err)
        assert f"the store {db} is not a readable DuckDB database" in err, (argv, err)
        assert "Restore it from a backup, or move it aside" in err
    assert db.read_bytes() == before  # nothing was written to it


def test_a_damaged_store_gives_no_traceback_from_the_real_cli(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    db.write_bytes(b"")
    r = subprocess.run([sys.executable, "-m", "experiments", "sweep", "status", "--db", str(db)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "is not a readable DuckDB database" in r.stderr


def test_a_store_opened_read_only_reads_and_writes_nothing(tmp_path: Path) -> None:
    db, _, sid = finished_store(tmp_path)
    ro = Store(db, read_only=True)
    assert ro.list_sweeps(sid)[0].counts == {"done": 6}
    assert len(ro.runs_frame(sid)) == 6 and ro.quarantined(sid) == []
    assert ro.ingest() == 0  # reads never ingest in read-only mode
    with pytest.raises(Exception, match="read-only"):
        ro.cancel_sweep(sid)
    assert Store(db).list_sweeps(sid)[0].counts == {"done": 6}
    with pytest.raises(StoreError, match="no µTransfer store"):
        other = tmp_path / "other.duckdb"
        import duckdb

        duckdb.connect(str(other)).close()  # a DuckDB file, but not a store
        Store(other, read_only=True)
    assert not (tmp_path / "other.duckdb.d").exists()  # read-only creates nothing


# --- A store this user cannot write -----------------------------------------------------------

# Runs CLI commands in one process (imports paid once) and prints each one's (code, out, err).
_DRIVER = """
import contextlib, io, json, sys
from experiments.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def as_another_user(commands: list[list[str]]) -> list[tuple[int, str, str]]:
    """Run CLI commands as a user the file permissions apply to (see the module docstring)."""
    prefix = (["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
              if os.geteuid() == 0 else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    r = subprocess.run([*prefix, sys.executable, "-c", _DRIVER, json.dumps(commands)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr  # no command let an exception escape
    return [tuple(x) for x in json.loads(r.stdout.strip().splitlines()[-1])]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder outside pytest's private tmp (0700) that another user can enter."""
    path = Path(tempfile.mkdtemp(prefix="mutransfer-faults-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for p in [path, *path.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                p.chmod(stat.S_IRWXU)
        shutil.rmtree(path)


def test_read_only_store_reads_and_refuses_writes_by_name(shared_dir: Path) -> None:
    # Before: every command attached read-write, so even `sweep status` failed with "Cannot
    # open file ...: Permission denied" (a traceback, exit 1); a new --db in a read-only folder
    # gave a PermissionError traceback.
    folder = shared_dir / "ro"
    folder.mkdir()
    db, spec, sid = finished_store(folder)
    out = shared_dir / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    db.chmod(0o444)
    for p in (db.with_name("s.duckdb.d"), *db.with_name("s.duckdb.d").rglob("*")):
        p.chmod(0o555 if p.is_dir() else 0o444)
    folder.chmod(0o555)
    before = db.read_bytes()
    bundle = out / "bundle.json"
    results = as_another_user([
        ["sweep", "status", str(sid), "--json", "--db", str(db)],
        ["runs", str(sid), "--db", str(db)],
        ["analyze", str(sid), "--db", str(db)],
        ["export", str(sid), "--target-width", "128", "--out", str(bundle), "--force",
         "--db", str(db)],
        ["sweep", "cancel", str(sid), "--db", str(db)],
        ["sweep", "run", str(spec), "--db", str(folder / "new.duckdb")],
    ])
    (status, runs, analyze, export, cancel, new) = results
    assert status[0] == 0, status
    assert json.loads(status[1])[0]["counts"] == {"done": 6}
    assert runs[0] == 0 and runs[1].count("done") == 6, runs
    assert analyze[0] == 0 and "verdict:" in analyze[1], analyze
    assert export[0] == 0, export
    assert json.loads(bundle.read_text())["target_width"] == 128
    assert "the export was not recorded in the store" in export[2]
    assert cancel[0] == 2, cancel
    assert f"the store {db} is not writable by this user" in cancel[2]
    assert "Read-only commands (sweep status, runs, analyze, export) still work" in cancel[2]
    assert new[0] == 2, new
    assert "not writable by this user" in new[2] and "pass --db in a folder you can write to" in new[2]
    assert not (folder / "new.duckdb").exists()
    assert db.read_bytes() == before


def test_a_writable_store_in_a_read_only_folder_is_named(shared_dir: Path) -> None:
    # DuckDB writes its journal (<store>.wal) beside the file: a writable file in a folder this
    # user cannot write fails at the first commit. Before: a TransactionException traceback.
    folder = shared_dir / "ro"
    folder.mkdir()
    db, spec, sid = finished_store(folder)
    db.chmod(0o666)
    folder.chmod(0o555)
    ((run_code, _, err), (status_code, status_out, _)) = as_another_user([
        ["sweep", "run", str(spec), "--db", str(db)],  # its first write: the new sweep
        ["sweep", "status", "--db", str(db)],
    ])
    assert run_code == 2, err
    assert f"the folder {folder} of the store {db} is not writable by this user" in err
    assert f"journal {db}.wal" in err
    assert status_code == 0 and "done" in status_out
    assert [s.id for s in Store(db).list_sweeps()] == [sid]  # the new sweep was not written
