"""The Runs page says when part of a run's metrics could not be read (a quarantined chunk)."""

from __future__ import annotations

from app.setup import presets
from experiments.spec.sweep import SweepSpec
from experiments.store import Store
from experiments.sweep.submit import create_sweep


def test_a_quarantined_metrics_chunk_is_named_on_the_runs_page(open_page, db_path):
    store = Store(db_path)
    sweep_id = int(create_sweep(store, SweepSpec.model_validate(presets.quick_spec_data())))
    (claim,) = store.claim(1, "test-owner")
    claim.directory.mkdir(parents=True, exist_ok=True)
    (claim.directory / "part-1-000000.parquet").write_bytes(b"not parquet")
    store.ingest()  # what every runner does at start
    at = open_page("views/runs.py", current_sweep_id=sweep_id)
    warnings = " ".join(w.value for w in at.warning)
    assert "could not be read" in warnings and f"run #{claim.run_id}" in warnings, warnings
    (table,) = [d.value for d in at.dataframe if "note" in d.value.columns]
    noted = table[table["run_id"] == claim.run_id]["note"].iloc[0]
    assert "quarantined" in noted
    assert table[table["run_id"] != claim.run_id]["note"].isna().all()
