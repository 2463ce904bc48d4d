"""Metric chunks into the store, and the run and metric frames the analysis reads."""

from __future__ import annotations

import math
from collections.abc import Callable

import duckdb
import pytest

from experiments.config import GLOBAL_KNOBS
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


def test_rebuild_metrics_keeps_the_old_rows_when_a_chunk_is_bad(
    store: Store, make_rows: Rows
) -> None:
    store.create_sweep("rebuild", {}, make_rows(2))
    good, other = store.claim(2, "owner")
    write_points(good, 10)
    assert store.ingest() == 10
    bad = other.directory / "part-1-000000.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(duckdb.Error):
        store.rebuild_metrics()
    # The DELETEs were rolled back with the failed insert.
    assert store.metric_count() == 10
    with connect(store.path) as con:
        assert con.execute("SELECT count(*) FROM ingested_chunks").fetchone() == (1,)
    bad.unlink()
    assert store.rebuild_metrics() == 10


def test_ingest_of_a_bad_chunk_records_nothing(store: Store, make_rows: Rows) -> None:
    store.create_sweep("bad", {}, make_rows(2))
    good, other = store.claim(2, "owner")
    write_points(good, 4)
    other.directory.mkdir(parents=True)
    (other.directory / "part-1-000000.parquet").write_bytes(b"garbage")
    with pytest.raises(duckdb.Error):
        store.ingest()
    assert store.metric_count() == 0  # not the good chunk's rows without their record
    (other.directory / "part-1-000000.parquet").unlink()
    assert store.ingest() == 4


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
