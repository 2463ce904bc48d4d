"""The LR exponent a batch or horizon ladder measures, and what each candidate rule costs.

Synthetic runs frames with a known exponent: loss = 1 + 0.05 (log2 LR - optimum)^2 + noise,
where the optimum moves by `true_exp - e_rule` per doubling of the batch (the sweep's LR is in
the rule's coordinates). The section must recover the exponent (under `none` and under `sqrt`,
where the drift is what the rule leaves), price the candidate nearest the truth cheapest, say
why a candidate off the trained LRs has no number, and keep width and depth sections free of
these keys.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import analyze
from experiments.analysis.exponent import swept_rule

GRID = [float(x) for x in range(-12, -1)]
BATCHES = [8, 16, 32, 64]


def batch_ladder(true_exp: float, scaling: str | None = None, rule_exp: float = 0.0,
                 seeds: tuple[int, ...] = (0, 1), grid: list[float] = GRID) -> pd.DataFrame:
    """Runs like Store.runs_frame of a µP batch ladder at width 64 (base batch 8)."""
    rng = np.random.default_rng(0)
    rows: list[dict[str, object]] = []
    for batch in BATCHES:
        opt = -9.0 + (true_exp - rule_exp) * math.log2(batch / 8)
        for seed in seeds:
            for x in grid:
                loss = 1.0 + 0.05 * (x - opt) ** 2 + rng.normal(0.0, 0.002)
                rows.append({"run_id": len(rows) + 1, "width": 64, "batch_size": batch,
                             "base_batch_size": 8, "parametrization": "mup", "lr": 2.0**x,
                             "log2_lr": x, "seed": seed, "init_std": 1.0, "output_mult": 1.0,
                             "state": "done", "final_train_loss": loss, "final_val_loss": loss,
                             "optimizer": "adam", "scaling": scaling})
    return pd.DataFrame(rows)


def candidates(section: dict[str, object]) -> dict[str, dict[str, object]]:
    mup = section["parametrizations"]["mup"]  # type: ignore[index]
    return {c["rule"]: c for c in mup["candidates"]}


def test_the_raw_sweep_measures_the_exponent_and_prices_sqrt_cheapest() -> None:
    doc = analyze(batch_ladder(0.5), n_bootstrap=50).to_contract_json()
    batch = doc["batch"]
    assert batch["rule"] == "none" and batch["rule_exponent"] == 0.0
    mup = batch["parametrizations"]["mup"]
    assert mup["exponent"] == pytest.approx(0.5, abs=0.05)
    assert mup["exponent_ci"][0] <= mup["exponent"] <= mup["exponent_ci"][1]
    assert mup["exponent_ci"][0] > 0.3 and mup["exponent_ci"][1] < 0.7
    assert mup["candidates_at"] == 64
    c = candidates(batch)
    assert list(c) == ["none", "sqrt", "linear", "fitted"]
    # At batch 64 (3 doublings): `none` sits 1.5 log2 below the optimum, `linear` 1.5 above,
    # `sqrt` on it: regret 0.05 x 1.5^2 = 0.1125 for both wrong rules.
    assert c["sqrt"]["abs"] < 0.005 and c["fitted"]["abs"] < 0.005
    for wrong in ("none", "linear"):
        assert c[wrong]["abs"] == pytest.approx(0.1125, rel=0.15)
        assert c[wrong]["abs_ci_low"] <= c[wrong]["abs"] <= c[wrong]["abs_ci_high"]
    assert c["none"]["log2_lr"] == pytest.approx(-9.0, abs=0.1)
    assert c["linear"]["log2_lr"] == pytest.approx(-6.0, abs=0.1)
    json.dumps(doc, allow_nan=False)


def test_under_a_rule_the_exponent_is_the_rules_plus_what_it_leaves() -> None:
    # The truth is linear (1.0); swept under sqrt, the optimum still rises 0.5 per doubling.
    runs = batch_ladder(1.0, scaling='{"batch": "sqrt"}', rule_exp=0.5)
    batch = analyze(runs, n_bootstrap=50).to_contract_json()["batch"]
    assert batch["rule"] == "sqrt" and batch["rule_exponent"] == 0.5
    mup = batch["parametrizations"]["mup"]
    assert mup["drift_slope"] == pytest.approx(0.5, abs=0.05)
    assert mup["exponent"] == pytest.approx(1.0, abs=0.05)
    c = candidates(batch)
    assert c["linear"]["abs"] < 0.005 and c["sqrt"]["abs"] > 0.05
    # `none` undoes the rule: 1.5 log2 below the sweep's base optimum, outside the grid?
    # No: -9 - 0.5 x 3 = -10.5, trained; its regret is 0.05 x 3^2 = 0.45.
    assert c["none"]["abs"] == pytest.approx(0.45, rel=0.15)


def test_a_candidate_off_the_trained_lrs_has_no_number_and_says_why() -> None:
    # LRs stop at 2^-7: linear puts batch 64 at 2^-6, beyond them (no extrapolation).
    grid = [float(x) for x in range(-12, -6)]
    batch = analyze(batch_ladder(0.5, grid=grid), n_bootstrap=20).to_contract_json()["batch"]
    c = candidates(batch)
    assert c["linear"]["status"] == "outside_grid" and c["linear"]["abs"] is None
    assert "batch size 64" in c["linear"]["note"] and "width" not in c["linear"]["note"]
    assert c["sqrt"]["status"] == "ok" and c["sqrt"]["abs"] < 0.005


def test_width_and_depth_sections_carry_no_exponent() -> None:
    runs = batch_ladder(0.5).assign(batch_size=8, base_batch_size=None)
    runs = pd.concat([runs.assign(width=64), runs.assign(width=128)], ignore_index=True)
    doc = analyze(runs, n_bootstrap=10).to_contract_json()
    assert "batch" not in doc and "exponent" not in json.dumps(doc)


def test_runs_swept_under_two_rules_are_refused() -> None:
    runs = pd.concat([batch_ladder(0.5), batch_ladder(0.5, scaling='{"batch": "sqrt"}')])
    with pytest.raises(ValueError, match="different scaling rules"):
        swept_rule(runs, "batch")
    assert swept_rule(batch_ladder(0.5, scaling='{"batch": {"power": 0.25}}'), "batch")[:2] == (
        "power(0.25)", 0.25)


def test_a_moving_batch_optimum_points_at_a_scaling_rule_not_the_doctor() -> None:
    batch = analyze(batch_ladder(0.9), n_bootstrap=50).to_contract_json()["batch"]
    assert batch["verdict"] == "not_confirmed"
    step = batch["next_step"]
    assert "doctor" not in step and "`--batch-rule fitted`" in step, step
    assert "as batch size^+0.9" in step and "linear costs least" in step


def test_a_one_width_ladder_sweep_is_not_told_to_add_widths() -> None:
    doc = analyze(batch_ladder(0.5), n_bootstrap=10).to_contract_json()
    assert not any("width(s) with an optimum" in w for w in doc["warnings"]), doc["warnings"]
    one_width = batch_ladder(0.5).query("batch_size == 8").assign(base_batch_size=None)
    plain = analyze(one_width, n_bootstrap=10).to_contract_json()
    assert any("only 1 width(s) with an optimum" in w for w in plain["warnings"])
