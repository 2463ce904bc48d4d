"""The store file itself: schema versions, old files, transactions and the shared attachment."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from experiments.errors import StoreError
from experiments.store import RunRow, RunState, Store, transaction
from experiments.store.db import connect
from experiments.store.schema import SCHEMA_V1, SCHEMA_VERSION, STATE_CHECK

Rows = Callable[..., list[RunRow]]


def test_new_store_is_at_the_current_version(store: Store) -> None:
    assert store.schema_version() == SCHEMA_VERSION == 4
    assert all(f"'{s}'" in STATE_CHECK for s in RunState)  # the CHECK lists the enum


def test_old_v1_store_is_migrated_in_place_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))  # a store as version 1 of the code left it: no CHECK
    con.execute(SCHEMA_V1.replace(STATE_CHECK, ""))
    con.execute("INSERT INTO schema_version VALUES (1)")
    con.execute("INSERT INTO sweeps VALUES (7, 'old', '{\"lrs\": [0.1]}', 'h', now())")
    con.execute(
        """INSERT INTO runs (run_id, sweep_id, run_key, width, parametrization, lr, seed,
               hparams, payload, job_fn, state) VALUES
           (1, 7, 'k', 64, 'mup', 0.5, 0, '{"init_std": 2.0}', '{}', 'm:f', 'done')"""
    )
    con.close()
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION
    assert [s.id for s in store.list_sweeps()] == [7]
    assert store.get_sweep(7).spec == {"lrs": [0.1]}  # type: ignore[union-attr]
    frame = store.runs_frame(7)
    assert (frame["state"].tolist(), frame["init_std"].tolist()) == (["done"], [2.0])
    store.record_verification(7, {"target_width": 512}, "abc")  # the v2 table is there
    assert store.list_verifications(7)[0].target_width == 512
    assert store.quarantined(7) == [] and frame["note"].isna().all()  # v3: quarantined chunks
    store.register_runner("host:1:abc", sweep_id=7)  # v4: each runner's sweep
    assert [r.sweep_id for r in store.live_runners()] == [7]
    assert Store(path).schema_version() == SCHEMA_VERSION  # and reopening changes nothing


def test_newer_store_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    Store(path)
    with duckdb.connect(str(path)) as con:
        con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION + 1])
    with pytest.raises(StoreError, match="newer than this code") as info:
        Store(path)
    assert info.value.kind == "too_new"
    with pytest.raises(StoreError, match="newer than this code"):
        Store(path, read_only=True)


def test_transaction_commits_or_rolls_back_everything(store: Store, make_rows: Rows) -> None:
    sid = store.create_sweep("tx", {}, make_rows(2))
    with connect(store.path) as con:
        with pytest.raises(ZeroDivisionError), transaction(con):
            con.execute("UPDATE runs SET state = 'cancelled' WHERE run_key = 'r0'")
            _ = 1 / 0
        with pytest.raises(duckdb.ConstraintException), transaction(con):
            con.execute("UPDATE runs SET state = 'done' WHERE run_key = 'r0'")
            con.execute("UPDATE runs SET state = 'bogus' WHERE run_key = 'r1'")
        with transaction(con):
            con.execute("UPDATE runs SET state = 'failed' WHERE run_key = 'r1'")
    assert store.list_sweeps(sid)[0].counts == {"queued": 1, "failed": 1}


def test_store_operations_share_one_attachment_and_roll_back_on_error(
    store: Store, make_rows: Rows
) -> None:
    sid = store.create_sweep("batch", {}, make_rows(3))
    with store.batch() as outer:
        claims = store.claim(2, "owner")
        with connect(store.path) as inner:
            assert inner is outer  # reused, not re-attached
        assert store.finish(claims[0].run_id, claims[0].attempt, {"state": "done"})
    with pytest.raises(duckdb.Error), connect(store.path) as con:
        con.execute("BEGIN TRANSACTION")
        con.execute("UPDATE runs SET state = 'cancelled'")
        con.execute("SELECT * FROM no_such_table")
    # The failed transaction left nothing behind, and the file is free for another process.
    assert store.list_sweeps(sid)[0].counts == {"done": 1, "running": 1, "queued": 1}
    probe = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
             "print(c.execute('SELECT count(*) FROM runs').fetchone()[0])")
    out = subprocess.run([sys.executable, "-c", probe, str(store.path)], capture_output=True,
                         text=True)
    assert out.returncode == 0 and out.stdout.strip() == "3", out.stderr
