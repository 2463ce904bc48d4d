"""`runs_frame` reads each run's depth and base depth from its stored payload: no
schema migration, so a store written before depth ladders (payloads without `base_depth`, rows
whose payload is not a RunConfig at all) reads as before, with NULLs."""

from __future__ import annotations

import math

from experiments.spec.sweep import parse_spec
from experiments.store import RunRow, Store
from experiments.sweep.submit import create_sweep


def test_runs_frame_has_the_depth_of_every_run_of_a_ladder(store: Store) -> None:
    spec = parse_spec({
        "model": {"kind": "mlp", "depth": 2, "residual": True}, "task": {"name": "digits"},
        "widths": [32, 64], "base_width": 32, "depths": [2, 4], "parametrizations": ["mup"],
        "lrs": [0.01], "steps": 2, "log_every": 1})
    frame = store.runs_frame(create_sweep(store, spec))
    assert sorted(zip(frame["width"], frame["depth"], strict=True)) == [
        (32, 2), (32, 4), (64, 2), (64, 4)]
    assert set(frame["base_depth"]) == {2}


def test_a_width_only_sweep_and_an_old_store_read_without_base_depth(store: Store) -> None:
    spec = parse_spec({"model": {"kind": "mlp", "depth": 3}, "task": {"name": "digits"},
                       "widths": [32, 64], "base_width": 32, "parametrizations": ["mup"],
                       "lrs": [0.01], "steps": 2, "log_every": 1})
    frame = store.runs_frame(create_sweep(store, spec))
    assert set(frame["depth"]) == {3}
    assert all(math.isnan(x) for x in frame["base_depth"].astype(float))
    # A payload written before `base_depth` existed, and one that is no RunConfig at all.
    old = {"model": {"kind": "gpt", "depth": 4}, "width": 64}
    rows = [RunRow("old", 64, "mup", 0.01, 0, payload=old, job_fn="m:f"),
            RunRow("other", 64, "mup", 0.02, 0, payload={"loss": 1.0}, job_fn="m:f")]
    frame = store.runs_frame(store.create_sweep("old", {}, rows))
    assert frame["depth"].astype(float).tolist()[0] == 4
    assert math.isnan(float(frame["depth"].astype(float).tolist()[1]))
    assert frame["base_depth"].isna().all()
