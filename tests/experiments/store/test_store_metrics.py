"""Metric chunks into the store, and the run and metric frames the analysis reads."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiments.spec.run import GLOBAL_KNOBS
from experiments.store import ChunkWriter, Claim, RunRow, Store
from experiments.store.db import connect

Rows = Callable[..., list[RunRow]]


def write_points(claim: Claim, n: int, flush_every: int = 10**9) -> None:
    writer = ChunkWriter(claim.directory, claim.run_id, claim.attempt, flush_every=flush_every)
    for step in range(n):
        writer.add(step, {"train_loss": step * 0.5})
    writer.flush()


def test_chunks_are_atomic_and_ingest_is_idempotent(store: Store, make_rows: Rows) -> None:
    sid = store.create_sweep("demo", {}, make_rows(1))
    claim = store.claim(1, "test-owner")[0]
    # A half-written file under a temp name must never be picked up.
    claim.directory.mkdir(parents=True)
    (claim.directory / f".tmp-999-part-{claim.attempt}-999999.parquet").write_bytes(b"PAR1 half")
    write_points(claim, 1000)
    assert store.ingest() == 1000
    assert store.ingest() == 0  # idempotent
    assert store.metric_count() == 1000
    assert store.rebuild_metrics() == 1000  # the DB can be rebuilt from the chunks alone
    assert store.metric_count() == 1000
    m = store.metrics_frame(sid)
    assert len(m) == 1000 and m["value"].max() == 499.5
    thin = store.metrics_frame(sid, max_points=50)
    assert 45 <= len(thin) <= 60 and thin["step"].max() == 999
    assert store.metrics_frame(sid, run_ids=[]).empty


def test_ingest_of_chosen_run_folders_leaves_the_others(store: Store, make_rows: Rows) -> None:
    store.create_sweep("two", {}, make_rows(2))
    a, b = store.claim(2, "owner")
    write_points(a, 1)
    write_points(b, 1)
    assert store.ingest([a.directory]) == 1
    assert store.ingest([a.directory]) == 0
    assert store.ingest() == 1  # the full scan finds b's chunk
    assert store.metric_count() == 2


def test_metrics_frame_reads_only_the_latest_attempt(store: Store, make_rows: Rows) -> None:
    sid = store.create_sweep("again", {}, make_rows(1))
    first = store.claim(1, "owner")[0]
    write_points(first, 5)
    store.fail(first.run_id, first.attempt, "lost", requeue=True)
    second = store.claim(1, "owner")[0]
    write_points(second, 3)
    assert store.metrics_frame(sid)["step"].tolist() == [0, 1, 2]
    assert store.metric_count() == 8  # both attempts are kept


def test_rebuild_metrics_quarantines_a_bad_chunk_and_recovers_the_rest(
    store: Store, make_rows: Rows
) -> None:
    sid = store.create_sweep("rebuild", {}, make_rows(2))
    good, other = store.claim(2, "owner")
    write_points(good, 10)
    assert store.ingest() == 10
    bad = other.directory / "part-1-000000.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not parquet at all")
    assert store.rebuild_metrics() == 10  # the readable chunk's rows, not an exception
    assert not bad.exists()  # moved aside, not deleted
    [q] = store.quarantined(sid)
    assert q.run_id == other.run_id and q.moved_to is not None
    assert Path(q.moved_to).read_bytes() == b"not parquet at all"
    with connect(store.path) as con:
        assert con.execute("SELECT count(*) FROM ingested_chunks").fetchone() == (1,)


def test_rebuild_metrics_keeps_the_old_rows_when_the_insert_fails(
    store: Store, make_rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_sweep("rebuild", {}, make_rows(1))
    [run] = store.claim(1, "owner")
    write_points(run, 10)
    assert store.ingest() == 10

    def broken(con: object, files: list[str]) -> int:
        raise duckdb.IOException("disk went away mid-insert")

    monkeypatch.setattr("experiments.store.metrics._insert_chunks", broken)
    with pytest.raises(duckdb.Error):
        store.rebuild_metrics()
    # The DELETEs were rolled back with the failed insert.
    assert store.metric_count() == 10
    with connect(store.path) as con:
        assert con.execute("SELECT count(*) FROM ingested_chunks").fetchone() == (1,)


def write_table(path: Path, **columns: list[object]) -> None:
    """A Parquet file with exactly these columns (a chunk of the wrong shape)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def test_unreadable_chunks_are_quarantined_and_the_rest_ingested(
    store: Store, make_rows: Rows
) -> None:
    sid = store.create_sweep("bad", {}, make_rows(3))
    good, other, third = store.claim(3, "owner")
    write_points(good, 4)
    write_points(other, 3)  # a healthy chunk beside the bad ones of the same run
    garbage = other.directory / "part-1-000007.parquet"
    garbage.write_bytes(b"garbage")
    # Valid Parquet that cannot be ingested: a step that is text, a column missing.
    text_step = third.directory / "part-1-000000.parquet"
    write_table(text_step, run_id=[third.run_id], attempt=[1], step=["abc"], name=["x"],
                value=[1.0])
    no_value = third.directory / "part-1-000001.parquet"
    write_table(no_value, run_id=[third.run_id], attempt=[1], step=[1], name=["x"])
    assert store.ingest() == 4 + 3  # before: the whole batch failed, nothing ingested
    assert store.ingest() == 0
    q = {Path(c.path).name + f"@{c.run_id}": c for c in store.quarantined(sid)}
    assert set(q) == {f"part-1-000007.parquet@{other.run_id}",
                      f"part-1-000000.parquet@{third.run_id}",
                      f"part-1-000001.parquet@{third.run_id}"}
    for chunk in q.values():
        assert chunk.sweep_id == sid and chunk.attempt == 1 and chunk.error
        assert not Path(chunk.path).exists() and Path(str(chunk.moved_to)).exists()
        assert Path(str(chunk.moved_to)).parent == store.root / "quarantine" / str(sid) / str(
            chunk.run_id)
    assert "too small" in q[f"part-1-000007.parquet@{other.run_id}"].error
    assert "abc" in q[f"part-1-000000.parquet@{third.run_id}"].error
    notes = store.runs_frame(sid).set_index("run_id")["note"]
    assert pd.isna(notes[good.run_id])
    assert "part-1-000007.parquet unreadable, quarantined" in notes[other.run_id]
    assert notes[third.run_id].count("quarantined") == 2
    assert store.metrics_frame(sid)["run_id"].value_counts().to_dict() == {
        good.run_id: 4, other.run_id: 3}
    # A repaired chunk moved back is ingested like a new one, and no longer quarantined.
    write_table(garbage, run_id=[other.run_id], attempt=[1], step=[99], name=["x"], value=[2.0])
    assert store.ingest() == 1
    assert len(store.quarantined(sid)) == 2


def test_a_chunk_that_cannot_be_moved_is_skipped_where_it_lies(
    store: Store, make_rows: Rows
) -> None:
    sid = store.create_sweep("stuck", {}, make_rows(1))
    claim = store.claim(1, "owner")[0]
    write_points(claim, 2)
    bad = claim.directory / "part-1-000001.parquet"
    bad.write_bytes(b"garbage")
    (store.root / "quarantine").write_text("a file where the folder would go")
    assert store.ingest() == 2
    (chunk,) = store.quarantined(sid)
    assert chunk.moved_to is None and bad.exists()
    assert "left in place" in chunk.note()
    assert store.ingest() == 0  # recorded: not read again at every ingest


def test_a_store_fault_is_not_blamed_on_the_chunks(store: Store, make_rows: Rows) -> None:
    store.create_sweep("fault", {}, make_rows(1))
    write_points(store.claim(1, "owner")[0], 3)
    with connect(store.path) as con:
        con.execute("ALTER TABLE metrics RENAME TO metrics_gone")
    with pytest.raises(duckdb.CatalogException):
        store.ingest()  # every chunk reads alone: the batch's failure is the store's
    assert store.quarantined() == []


def test_runs_frame_has_a_column_per_global_knob(store: Store, make_rows: Rows) -> None:
    rows = make_rows(4)
    # The runs differ only in attn_mult and input_mult (same width, lr, seed).
    for row, (attn, inp) in zip(rows, [(1.0, 1.0), (2.0, 1.0), (1.0, 4.0), (2.0, 4.0)],
                                strict=True):
        row.width, row.lr = 64, 0.01
        row.hparams = {"init_std": 0.02, "output_mult": 1.0, "attn_mult": attn, "input_mult": inp}
    rows.append(RunRow("no-knobs", 64, "mup", 0.01, 0, job_fn="m:f"))
    sid = store.create_sweep("knobs", {}, rows)
    frame = store.runs_frame(sid).set_index("run_key")
    assert set(GLOBAL_KNOBS) <= set(frame.columns)
    assert {"attn_mult", "input_mult"} <= set(GLOBAL_KNOBS)
    assert frame["attn_mult"].head(4).tolist() == [1.0, 2.0, 1.0, 2.0]
    assert frame["input_mult"].head(4).tolist() == [1.0, 1.0, 4.0, 4.0]
    assert frame["init_std"].head(4).tolist() == [0.02] * 4
    assert all(math.isnan(frame.loc["no-knobs", k]) for k in GLOBAL_KNOBS)  # absent -> NULL
    assert frame["log2_lr"].head(4).tolist() == pytest.approx([math.log2(0.01)] * 4)
