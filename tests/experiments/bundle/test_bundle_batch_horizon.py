"""Export and verify at a target batch size and training length: `export --target-batch B
--target-steps S` moves the transferred LR, betas and eps by the sweep's scaling rule at
k = B / base batch and S / base horizon, records the rule, the ratios, the base settings and
the ladders' verdicts, and `verify` trains at batch B for S x base batch / B steps. A target on
an axis the sweep has no ladder on, or off a base whose verdict is not confirmed, is refused
unless --force; a rule the optimizer has no entry for is refused; width-only bundles carry none
of these fields.

The sweep's runs are finished with synthetic losses (no training); verify trains for real.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from experiments.analysis import analyze
from experiments.bundle.build import apply, build_bundle, read_bundle, target_model
from experiments.bundle.training import TRAINING_BUNDLE_FIELDS
from experiments.cli import main
from experiments.errors import UserError
from experiments.spec.run import HParamsConfig, OptimizerConfig, RunConfig
from experiments.spec.sweep import SweepSpec
from experiments.store import Store
from experiments.sweep.submit import create_sweep
from experiments.train import NullReporter, train_run

SPEC: dict[str, Any] = {
    "name": "batch-bundle", "model": {"kind": "mlp", "depth": 2}, "task": {"name": "digits"},
    # Four widths and three rungs per ladder: enough degrees of freedom for each verdict's
    # drift interval to confirm on a flat optimum.
    "widths": [32, 64, 128, 256], "base_width": 32,
    "batch_sizes": [8, 16, 32], "base_batch_size": 8, "horizons": [4, 8, 16], "base_horizon": 4,
    "scaling": {"batch": "sqrt"}, "parametrizations": ["mup"], "optimizer": {"name": "adam"},
    "lr_grid": {"log2_min": -10, "log2_max": -2, "step": 1}, "seeds": [0, 1], "steps": 4,
    "batch_size": 8, "log_every": 1, "device": "cpu",
}
PLAIN = {k: v for k, v in SPEC.items()
         if k not in ("batch_sizes", "base_batch_size", "horizons", "base_horizon", "scaling")}
OPT = -6.3


def make_store(tmp_path: Path, spec: dict[str, Any], batch_drift: float) -> tuple[Path, int]:
    """A store holding the sweep, each run finished on a bowl in log2 (grid) LR whose optimum
    moves by `batch_drift` per batch doubling and not with width or horizon."""
    db = tmp_path / "store.duckdb"
    store = Store(db)
    sweep_id = create_sweep(store, SweepSpec.model_validate(spec))
    rng = torch.Generator().manual_seed(0)
    for claim in store.claim(10_000, "test", sweep_id):
        p = claim.payload
        doublings = math.log2(p["batch_size"] / 8)
        x, opt = math.log2(p["lr"]), OPT + batch_drift * doublings
        loss = 0.1 + 0.05 * (x - opt) ** 2 + 0.002 * float(torch.randn((), generator=rng))
        result = {"state": "done", "final_train_loss": loss, "final_val_loss": loss}
        assert store.finish(claim.run_id, claim.attempt, {**result, "steps_done": p["steps"]})
    return db, sweep_id


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    return make_store(tmp_path_factory.mktemp("batch"), SPEC, batch_drift=0.0)


def export(db: Path, sid: int, out: Path, *extra: str) -> int:
    return main(["export", str(sid), "--target-width", "128", "--out", str(out),
                 "--db", str(db), *extra])


def test_export_moves_lr_betas_and_eps_by_the_sqrt_rule_and_records_it(
        tmp_path: Path, ladder: tuple[Path, int]) -> None:
    db, sid = ladder
    path = tmp_path / "bundle.json"
    assert export(db, sid, path, "--target-batch", "32", "--target-steps", "16") == 0
    bundle = read_bundle(path)
    assert (bundle.base_batch_size, bundle.target_batch_size) == (8, 32)
    assert (bundle.base_horizon, bundle.target_horizon) == (4, 16)
    assert bundle.train_steps == 4  # horizon 16 at base batch 8 is 16 x 8 / 32 steps at 32
    scaling = bundle.scaling
    assert scaling is not None
    assert scaling["batch"]["rule"] == "sqrt" and scaling["batch"]["k"] == 4.0
    assert "Malladi" in scaling["batch"]["citation"]
    assert scaling["horizon"]["rule"] == "none" and scaling["horizon"]["k"] == 4.0
    base = scaling["base"]
    assert base["log2_lr"] == pytest.approx(OPT, abs=0.15)
    assert (base["betas"], base["eps"]) == ([0.9, 0.999], 1e-8)
    # The SDE rule at k = 4: LR x sqrt(4), 1 - beta x 4, eps / sqrt(4).
    assert bundle.lr == pytest.approx(base["lr"] * 2.0, rel=1e-12)
    assert bundle.log2_lr == pytest.approx(base["log2_lr"] + 1.0, abs=1e-12)
    assert bundle.optimizer["betas"] == pytest.approx([1 - 0.1 * 4, 1 - 0.001 * 4], rel=1e-12)
    assert bundle.optimizer["eps"] == pytest.approx(1e-8 / 2, rel=1e-12)
    ev = bundle.evidence
    assert ev.batch is not None and ev.horizon is not None
    assert ev.batch["verdict"] == ev.horizon["verdict"] == "confirmed" and not ev.forced
    # The optimizer a user builds from the bundle trains with the moved settings.
    _, opt = apply(bundle, target_model(bundle), seed=0)
    group = opt.param_groups[0]
    assert group["betas"] == pytest.approx((0.6, 0.996), rel=1e-12)
    assert group["eps"] == pytest.approx(5e-9, rel=1e-12)
    assert "batch 8 -> 32 (sqrt, k=4)" in bundle.summary()


def test_a_ladder_bundle_without_targets_is_for_the_bases(
        tmp_path: Path, ladder: tuple[Path, int]) -> None:
    db, sid = ladder
    path = tmp_path / "base.json"
    assert export(db, sid, path) == 0
    bundle = read_bundle(path)
    assert (bundle.target_batch_size, bundle.target_horizon, bundle.train_steps) == (8, 4, 4)
    assert bundle.scaling is not None and bundle.lr == bundle.scaling["base"]["lr"]
    assert bundle.optimizer["betas"] == [0.9, 0.999] and bundle.optimizer["eps"] == 1e-8


@pytest.mark.parametrize(("flags", "words"), [
    (["--target-batch", "32", "--target-steps", "5"],
     "--target-batch 32 cannot see the examples of 5 steps at the base batch 8 in whole steps"),
    (["--target-batch", "0"], "--target-batch must be >= 1, got 0"),
])
def test_a_target_that_cannot_train_exits_2(
        tmp_path: Path, ladder: tuple[Path, int], capsys: pytest.CaptureFixture[str],
        flags: list[str], words: str) -> None:
    db, sid = ladder
    path = tmp_path / "b.json"
    assert export(db, sid, path, *flags) == 2
    assert words in capsys.readouterr().err
    assert not path.exists()


def test_a_target_without_its_ladder_needs_force_and_width_bundles_keep_their_keys(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, sid = make_store(tmp_path, PLAIN, batch_drift=0.0)
    path = tmp_path / "b.json"
    for flag, words in (("--target-batch", "needs a sweep with a batch size ladder"),
                        ("--target-steps", "needs a sweep with a horizon ladder")):
        assert export(db, sid, path, flag, "16") == 2
        err = capsys.readouterr().err
        assert f"{flag} 16 {words}" in err and "--force" in err and "Traceback" not in err
        assert not path.exists()
    assert export(db, sid, path) == 0
    doc = json.loads(path.read_text())
    assert not TRAINING_BUNDLE_FIELDS & (set(doc) | set(doc["evidence"]))
    first = path.read_bytes()
    assert export(db, sid, path) == 0 and path.read_bytes() == first
    # Forced: the spec's batch_size and steps stand in for the bases; nothing was measured.
    assert export(db, sid, path, "--target-batch", "16", "--force") == 0
    bundle = read_bundle(path)
    assert (bundle.base_batch_size, bundle.target_batch_size, bundle.train_steps) == (8, 16, 2)
    assert bundle.evidence.forced and bundle.evidence.batch is None


def test_a_drifting_batch_optimum_needs_force_off_the_base_batch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, sid = make_store(tmp_path, SPEC, batch_drift=0.6)
    path = tmp_path / "b.json"
    assert export(db, sid, path, "--target-batch", "32") == 2
    assert "batch size transfer verdict is not confirmed" in capsys.readouterr().err
    assert not path.exists()
    assert export(db, sid, path, "--target-steps", "16") == 0  # the horizon is confirmed
    assert not read_bundle(path).evidence.forced
    assert export(db, sid, path, "--target-batch", "32", "--force") == 0
    bundle = read_bundle(path)
    assert bundle.evidence.forced and bundle.evidence.batch is not None
    assert bundle.evidence.batch["verdict"] == "not_confirmed"


def test_a_rule_the_optimizer_has_no_entry_for_is_refused(ladder: tuple[Path, int]) -> None:
    db, sid = ladder
    store = Store(db, read_only=True)
    sweep = store.get_sweep(sid)
    assert sweep is not None
    report = analyze(store.runs_frame(sid), target_width=128)
    spec = {**sweep.spec, "optimizer": {"name": "sgd"}}
    with pytest.raises(UserError, match="scaling rule 'sqrt' has no entry for optimizer sgd"):
        build_bundle(spec, report, 128, target_batch=32)


def test_verify_trains_at_the_target_batch_and_steps(
        tmp_path: Path, ladder: tuple[Path, int]) -> None:
    db, sid = ladder
    path = tmp_path / "bundle.json"
    assert export(db, sid, path, "--target-batch", "16", "--target-steps", "8") == 0
    bundle = read_bundle(path)
    out = tmp_path / "verify.json"
    assert main(["verify", str(path), "--bracket", "1", "--seeds", "0", "--no-sp-baseline",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert (doc["batch_size"], doc["steps"]) == (16, 4)
    assert [p["log2_lr"] for p in doc["points"]] == pytest.approx(
        [bundle.log2_lr + k for k in (-1, 0, 1)])
    assert any("not the target's batch 16" in w for w in doc["warnings"])
    # The transferred point is the run at batch 16, 4 steps, with the moved LR, betas and eps.
    run = RunConfig(sweep_name="ref", model=bundle.model_config_obj(), task=bundle.task_config(),
                    width=128, base_width=32, parametrization="mup",
                    optimizer=OptimizerConfig.model_validate(bundle.optimizer), lr=bundle.lr,
                    hparams=HParamsConfig.model_validate(bundle.hparams), seed=0, steps=4,
                    batch_size=16, log_every=1, device="cpu")
    ref = train_run(run, NullReporter())
    assert doc["points"][1]["loss"] == pytest.approx(getattr(ref, doc["loss"]), rel=1e-5)


def test_export_with_the_fitted_exponent_or_a_named_rule_is_priced_by_its_regret(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Swept under sqrt, the optimum still rises 0.6 per batch doubling: the ladder measures
    the exponent 1.1. `fitted` keeps the sqrt betas/eps moves and the LR goes as k^1.1; `none`
    costs far more than the seed noise at batch 32 and is refused, naming the cheapest rule."""
    db, sid = make_store(tmp_path, SPEC, batch_drift=0.6)
    path = tmp_path / "b.json"
    assert export(db, sid, path, "--target-batch", "32", "--batch-rule", "fitted") == 0
    bundle = read_bundle(path)
    record = bundle.scaling["batch"]
    assert (record["rule"], record["chosen"], record["swept_under"]) == ("sqrt", "fitted", "sqrt")
    assert record["lr_exponent"] == pytest.approx(1.1, abs=0.1)
    base = bundle.scaling["base"]["log2_lr"]
    assert bundle.log2_lr == pytest.approx(base + 2 * record["lr_exponent"], abs=1e-9)
    assert bundle.optimizer["betas"] == pytest.approx([0.6, 0.996], rel=1e-12)  # sqrt's
    assert not bundle.evidence.forced
    # The fitted LR lands on the optimum measured at batch 32 (grid coordinates + sqrt's 1.0).
    batch = bundle.evidence.batch["parametrizations"]["mup"]
    top = batch["batches"][-1]["opt_log2_lr"] + 1.0
    assert bundle.log2_lr == pytest.approx(top, abs=0.25)
    assert export(db, sid, path, "--target-batch", "32", "--batch-rule", "none") == 2
    err = capsys.readouterr().err
    assert "--batch-rule none: its regret at batch 32 is" in err
    assert "the cheapest other rule there is linear" in err and "--force" in err
    assert "the fitted exponent +1.1" in err
    assert export(db, sid, path, "--target-batch", "32", "--batch-rule", "cubic") == 2
    assert "--batch-rule cubic: " in capsys.readouterr().err
    assert export(db, sid, path, "--target-batch", "32", "--batch-rule", "none",
                  "--force") == 0
    assert read_bundle(path).evidence.forced
