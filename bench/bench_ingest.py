"""Metric ingest: rows/s through the store against a raw DuckDB Arrow insert of the same rows.

    .venv/bin/python bench/bench_ingest.py [--runs 200] [--rows 5000] [--flush-every 5000]
                                           [--repeats 3]

Store side: `runs` runs' metrics are written the way workers write them (`ChunkWriter`, one
atomic Parquet chunk per `flush-every` rows), then `Store.ingest()` batches every chunk into the
DuckDB file in one transaction (the runner's path, file bookkeeping included). Raw side: the
same rows as one in-memory Arrow table inserted into a fresh DuckDB file's table of the same
schema (`INSERT INTO metrics SELECT * FROM arrow_table`), the fastest bulk path DuckDB has.
Both sides write to a file, not to memory. The chunk size
defaults to the workers' (`FLUSH_EVERY_ROWS`); DuckDB pays a fixed cost per file opened, so
smaller chunks (`--flush-every 200`) show that cost. Prints rows/s of each, best of `repeats`, and the
ratio of times (store / raw; target within 2x). The worker-side chunk writing is timed and
printed separately: it happens in the workers, in parallel with training, not in the ingester.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from experiments.store import Store  # noqa: E402
from experiments.store.chunks import (  # noqa: E402
    CHUNK_SCHEMA,
    FLUSH_EVERY_ROWS,
    ChunkWriter,
    run_dir,
)

COMMAND = ".venv/bin/python bench/bench_ingest.py " + " ".join(sys.argv[1:])
SWEEP_ID = 1
NAMES = ("train_loss", "lr", "grad_norm", "samples_per_s")


def write_chunks(root: Path, runs: int, rows: int, flush_every: int) -> float:
    """Write `rows` metric rows per run as workers do; returns the seconds it took."""
    rng = np.random.default_rng(0)
    values = rng.random(rows).tolist()
    t0 = time.perf_counter()
    for run_id in range(1, runs + 1):
        writer = ChunkWriter(run_dir(root, SWEEP_ID, run_id), run_id, 1,
                             flush_every=flush_every, flush_s=1e9)
        for i in range(0, rows, len(NAMES)):
            batch = {n: values[i + k] for k, n in enumerate(NAMES) if i + k < rows}
            writer.add(i // len(NAMES), batch)
        writer.flush()
    return time.perf_counter() - t0


def same_rows_as_arrow(runs: int, rows: int) -> pa.Table:
    """The rows `write_chunks` writes, as one Arrow table (built outside the timed region)."""
    rng = np.random.default_rng(0)
    values = rng.random(rows)
    idx = np.arange(rows)
    return pa.table(
        {
            "run_id": pa.array(np.repeat(np.arange(1, runs + 1), rows), pa.int64()),
            "attempt": pa.array(np.ones(runs * rows, dtype=np.int32)),
            "step": pa.array(np.tile(idx // len(NAMES), runs).astype(np.int32)),
            "name": pa.array(np.tile(np.array(NAMES)[idx % len(NAMES)], runs), pa.string()),
            "value": pa.array(np.tile(values, runs), pa.float64()),
        },
        schema=CHUNK_SCHEMA,
    )


def time_store_ingest(scratch: Path, runs: int, rows: int, flush_every: int) -> tuple[float, float, int]:
    """(chunk-writing seconds, ingest seconds, rows ingested) into a fresh store."""
    db = scratch / "store.duckdb"
    store = Store(db)
    t_write = write_chunks(store.root, runs, rows, flush_every)
    t0 = time.perf_counter()
    added = store.ingest()
    t_ingest = time.perf_counter() - t0
    if store.metric_count() != runs * rows or added != runs * rows:
        raise SystemExit(f"store ingested {added} rows, expected {runs * rows}")
    return t_write, t_ingest, added


def time_raw_insert(scratch: Path, table: pa.Table) -> float:
    """Seconds for one Arrow-table insert into a fresh DuckDB file (connect and commit included)."""
    arrow_table = table  # noqa: F841 - DuckDB finds it by name (replacement scan)
    t0 = time.perf_counter()
    con = duckdb.connect(str(scratch / "raw.duckdb"))
    con.execute(
        "CREATE TABLE metrics (run_id BIGINT NOT NULL, attempt INTEGER NOT NULL, "
        "step INTEGER NOT NULL, name VARCHAR NOT NULL, value DOUBLE)"
    )
    con.execute("INSERT INTO metrics SELECT * FROM arrow_table")
    con.close()
    return time.perf_counter() - t0


def main() -> int:
    """Run both sides `repeats` times and print the best of each and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rows", type=int, default=5000, help="metric rows per run")
    parser.add_argument("--flush-every", type=int, default=FLUSH_EVERY_ROWS,
                        help="rows per Parquet chunk (default: the workers' default)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    table = same_rows_as_arrow(args.runs, args.rows)
    n = table.num_rows
    print(f"$ {COMMAND}")
    print(f"rows: {n:,} ({args.runs} runs x {args.rows}), chunk files: "
          f"{args.runs * -(-args.rows // args.flush_every):,}")
    best_store = best_raw = best_write = float("inf")
    for rep in range(args.repeats):
        scratch = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
        try:
            # Alternate the order so neither side always runs on a warmer cache.
            if rep % 2 == 0:
                t_write, t_store, _ = time_store_ingest(scratch, args.runs, args.rows, args.flush_every)
                t_raw = time_raw_insert(scratch, table)
            else:
                t_raw = time_raw_insert(scratch, table)
                t_write, t_store, _ = time_store_ingest(scratch, args.runs, args.rows, args.flush_every)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(f"  repeat {rep + 1}: store ingest {t_store:.3f} s, raw Arrow insert {t_raw:.3f} s, "
              f"ratio {t_store / t_raw:.2f}")
        best_store, best_raw = min(best_store, t_store), min(best_raw, t_raw)
        best_write = min(best_write, t_write)
    ratio = best_store / best_raw
    print(f"store ingest (Parquet chunks -> DuckDB): {n / best_store:>12,.0f} rows/s  ({best_store:.3f} s)")
    print(f"raw DuckDB Arrow insert:                 {n / best_raw:>12,.0f} rows/s  ({best_raw:.3f} s)")
    print(f"ratio store/raw: {ratio:.2f}  ({'within' if ratio <= 2.0 else 'OVER'} the 2x target)")
    print(f"worker side, chunk writing (not in the ingester): {n / best_write:,.0f} rows/s "
          f"({best_write:.3f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
