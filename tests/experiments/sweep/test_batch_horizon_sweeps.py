"""Sweeps over batch size and training length: `batch_sizes` (at fixed examples seen) and
`horizons` (at fixed batch) cross with widths and depths, key runs by batch and steps, cost
each rung at its own batch and steps, and reach the store's runs frame; specs without them keep
their keys and hashes; a bad ladder is refused at its field (CLI: exit 2, nothing stored)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from experiments.errors import UserError
from experiments.spec.ladder import model_depth
from experiments.spec.sweep import load_spec, parse_spec, run_key, spec_hash
from experiments.store import Store
from experiments.sweep.adaptive import group_label
from experiments.sweep.submit import create_sweep
from experiments.train import NullReporter, train_run

ROOT = Path(__file__).resolve().parents[3]
PRESET = ROOT / "experiments" / "configs" / "batch-horizon-gpt.yaml"

GPT: dict[str, Any] = {
    "name": "batch", "model": {"kind": "gpt", "depth": 2, "head_dim": 16},
    "task": {"name": "bytes", "seq_len": 16}, "widths": [32, 64], "base_width": 32,
    "batch_sizes": [4, 8, 16], "horizons": [8, 16], "parametrizations": ["mup"],
    "lrs": [2.0**-8, 2.0**-6], "seeds": [0], "steps": 8, "batch_size": 4, "log_every": 2,
    "device": "cpu",
}
PLAIN = {k: v for k, v in GPT.items() if k not in ("batch_sizes", "horizons")}


def test_the_ladders_cross_every_axis_at_fixed_examples_and_key_runs_by_batch_and_steps() -> None:
    spec = parse_spec({**GPT, "depths": [2, 4]})
    runs = spec.expand()
    assert spec.n_runs() == len(runs) == 2 * 2 * 3 * 2 * 2
    # Steps = horizon x base batch (4) / batch: every batch of a horizon sees the same examples.
    cells = {(r.width, model_depth(r.model), r.batch_size, r.horizon, r.steps) for r in runs}
    assert cells == {(w, d, b, h, h * 4 // b) for w in (32, 64) for d in (2, 4)
                     for b in (4, 8, 16) for h in (8, 16)}
    assert {(r.base_batch_size, r.base_horizon) for r in runs} == {(4, 8)}
    keys = [run_key(r) for r in runs]
    assert len(set(keys)) == len(keys)
    assert keys[0] == "w32-d2-b4-s8-mup-lr2^-8-s0"
    assert "w64-d4-b16-s4-mup-lr2^-6-s0" in keys  # horizon 16 at batch 16: 16 x 4 / 16 steps


def test_one_ladder_alone_keys_only_its_axis_and_bases_can_be_given() -> None:
    batch_only = parse_spec({**PLAIN, "batch_sizes": [4, 8, 16], "base_batch_size": 8})
    runs = batch_only.expand()
    assert {(r.batch_size, r.steps) for r in runs} == {(4, 16), (8, 8), (16, 4)}
    assert {r.horizon for r in runs} == {None} and {r.base_batch_size for r in runs} == {8}
    assert run_key(runs[0]) == "w32-b4-mup-lr2^-8-s0"
    horizon_only = parse_spec({**PLAIN, "horizons": [8, 16, 32], "base_horizon": 16})
    runs = horizon_only.expand()
    assert {(r.batch_size, r.steps, r.horizon) for r in runs} == {(4, 8, 8), (4, 16, 16),
                                                                   (4, 32, 32)}
    assert {r.base_horizon for r in runs} == {16} and {r.base_batch_size for r in runs} == {None}
    assert run_key(runs[0]) == "w32-s8-mup-lr2^-8-s0"


def test_specs_without_ladders_keep_their_keys_hash_and_payload() -> None:
    quick = load_spec(ROOT / "experiments" / "configs" / "quick.yaml")
    # The quick preset's hash as stored before batch/horizon ladders existed.
    assert spec_hash(quick) == "be35fee3418332d0"
    assert run_key(quick.expand()[0]) == "w64-sp-lr2^-12-s0" and quick.n_runs() == 240
    spec = parse_spec(PLAIN)
    runs = spec.expand()
    assert all((r.batch_size, r.steps, r.base_batch_size, r.horizon) == (4, 8, None, None)
               for r in runs)
    assert spec_hash(spec) == spec_hash(parse_spec({**PLAIN, "batch_sizes": None,
                                                    "horizons": None}))
    assert spec_hash(spec) != spec_hash(parse_spec({**PLAIN, "batch_sizes": [4, 8]}))
    assert spec_hash(spec) != spec_hash(parse_spec({**PLAIN, "horizons": [8, 16]}))
    assert "batch_sizes" not in spec.to_yaml() and "horizons" not in spec.to_yaml()


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"batch_sizes": [8, 4]}, "batch_sizes", "batch_sizes must increase: got 4 after 8"),
    ({"batch_sizes": []}, "batch_sizes", "batch_sizes is empty"),
    ({"batch_sizes": [0, 4]}, "batch_sizes", "batch_sizes must be in [1, 1,000,000]: got 0"),
    ({"base_batch_size": 6}, "base_batch_size", "base_batch_size 6 is not in batch_sizes"),
    ({"batch_sizes": None, "base_batch_size": 4}, "base_batch_size",
     "base_batch_size 4 is set but batch_sizes is not"),
    ({"horizons": [16, 16]}, "horizons", "horizons must increase: got 16 after 16"),
    ({"base_horizon": 12}, "base_horizon", "base_horizon 12 is not in horizons [8, 16]"),
    ({"horizons": None, "base_horizon": 8}, "base_horizon",
     "base_horizon 8 is set but horizons is not"),
    ({"batch_sizes": [4, 12]}, "batch_sizes",
     "batch 12 cannot see the examples of 8 steps at base_batch_size 4 in whole steps"),
    ({"horizons": [8, 16], "optimizer": {"schedule": "cosine", "warmup_steps": 4}}, "horizons",
     "optimizer.warmup_steps 4 must be < steps 2 (the shortest run, at batch 16, horizon 8)"),
    ({"horizons": [1, 16], "batch_sizes": None}, "log_every", "log_every 2 is larger than steps 1"),
])
def test_a_bad_ladder_is_refused_at_its_field(change: dict[str, Any], field: str,
                                              words: str) -> None:
    with pytest.raises(UserError) as err:
        parse_spec({**GPT, **change})
    assert f"{field}: {words}" in str(err.value)


def test_without_ladders_the_length_checks_read_as_before() -> None:
    with pytest.raises(UserError) as err:
        parse_spec({**PLAIN, "optimizer": {"schedule": "cosine", "warmup_steps": 8}})
    assert "optimizer.warmup_steps: optimizer.warmup_steps 8 must be < steps 8" in str(err.value)
    with pytest.raises(UserError) as err:
        parse_spec({**PLAIN, "log_every": 9})
    assert "log_every: log_every 9 is larger than steps 8: use log_every <= steps" in str(err.value)


def test_the_plan_costs_every_rung_at_its_own_batch_and_steps() -> None:
    plain = parse_spec(PLAIN).estimate()
    batch = parse_spec({**PLAIN, "batch_sizes": [4, 8, 16]}).estimate()
    # Fixed examples: FLOPs scale with batch x steps, the same at every batch rung.
    assert batch.n_runs == 3 * plain.n_runs
    assert batch.total_flops == pytest.approx(3 * plain.total_flops, rel=1e-9)
    assert batch.total_steps == plain.total_steps * (1 + 1 / 2 + 1 / 4)
    # Memory and the per-step cost are the largest batch's.
    big = parse_spec({**PLAIN, "batch_size": 16}).estimate()
    assert batch.peak_memory_bytes == big.peak_memory_bytes > plain.peak_memory_bytes
    horizon = parse_spec({**PLAIN, "horizons": [8, 16, 32]}).estimate()
    assert horizon.total_flops == pytest.approx(7 * plain.total_flops, rel=1e-9)
    assert horizon.total_steps == 7 * plain.total_steps


def test_the_store_runs_frame_has_each_runs_batch_steps_and_rungs(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    frame = store.runs_frame(create_sweep(store, parse_spec(GPT)))
    assert sorted(set(zip(frame["batch_size"], frame["horizon"], frame["steps"],
                          frame["steps_total"], strict=True))) == [
        (4, 8, 8, 8), (4, 16, 16, 16), (8, 8, 4, 4), (8, 16, 8, 8), (16, 8, 2, 2),
        (16, 16, 4, 4)]
    assert set(frame["base_batch_size"]) == {4} and set(frame["base_horizon"]) == {8}
    plain = store.runs_frame(create_sweep(store, parse_spec(PLAIN)))
    assert set(plain["batch_size"]) == {4} and set(plain["steps"]) == {8}
    assert plain[["base_batch_size", "horizon", "base_horizon"]].isna().all().all()


def test_a_rung_trains_exactly_its_batch_and_steps() -> None:
    spec = parse_spec({**PLAIN, "model": {"kind": "mlp", "depth": 2}, "task": {"name": "digits"},
                       "batch_sizes": [4, 16], "widths": [32], "lrs": [2.0**-6]})
    small, large = spec.expand()
    out_small = train_run(small, NullReporter())
    out_large = train_run(large, NullReporter())
    assert (out_small.steps_done, out_large.steps_done) == (8, 2)
    assert out_small.final_train_loss != out_large.final_train_loss
    # Throughput counts examples: 4x the batch per step is 4x the examples per step.
    assert out_small.samples_per_s > 0 and out_large.samples_per_s > 0


def test_the_adaptive_search_searches_each_rung_on_its_own() -> None:
    # Several widths: the search walks them, once per (batch, horizon) rung, labelled by the
    # rungs (the horizon's, not the steps a batch rung trains).
    spec = parse_spec(GPT)
    labels = {group_label(r) for r in spec.expand()}
    assert labels == {f"mup b{b} s{h}" for b in (4, 8, 16) for h in (8, 16)}


def test_the_batch_horizon_preset_validates_and_estimates() -> None:
    spec = load_spec(PRESET)
    assert spec.batch_sizes == [8, 16, 32, 64] and spec.horizons == [200, 400, 800]
    assert len(spec.log2_lrs()) >= 7 and len(spec.seeds) == 2
    plan = spec.estimate()
    assert plan.n_runs == 4 * 3 * len(spec.log2_lrs()) * 2
    runs = spec.expand()
    # Fixed tokens per horizon: batch x steps is horizon x 8 on every batch rung.
    assert {(r.horizon, r.batch_size * r.steps) for r in runs} == {
        (h, h * 8) for h in (200, 400, 800)}
    assert min(r.steps for r in runs) >= spec.log_every
    assert math.isfinite(plan.est_compute_s) and plan.est_compute_s < 3600


def test_sweep_run_with_a_bad_ladder_exits_2_and_stores_nothing(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({**GPT, "batch_sizes": [4, 16, 8]}))
    db = tmp_path / "store.duckdb"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "experiments", "sweep", "run", str(spec_path),
                        "--db", str(db)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, r.stderr
    assert "batch_sizes: batch_sizes must increase: got 8 after 16" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    if db.exists():
        assert Store(db).list_sweeps() == []
