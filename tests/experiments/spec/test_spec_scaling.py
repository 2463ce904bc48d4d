"""The spec's `scaling` block, `base_batch_size` / `base_horizon` and the wsd schedule: specs
without them keep their keys, hash, YAML and payloads; a rule the optimizer has no entry for,
or a schedule that does not fit, is refused at its field (CLI: exit 2, nothing stored); and a
run trains with its grid LR moved by the rules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from experiments.errors import UserError
from experiments.spec.run import RunConfig
from experiments.spec.sweep import parse_spec, run_key, spec_hash
from experiments.train import NullReporter, train_run

ROOT = Path(__file__).resolve().parents[3]

SPEC: dict[str, Any] = {
    "name": "rules", "model": {"kind": "mlp", "depth": 2}, "task": {"name": "synthetic"},
    "widths": [32, 64], "base_width": 32, "parametrizations": ["mup"],
    "lrs": [2.0**-8, 2.0**-6], "seeds": [0], "steps": 20, "batch_size": 16, "log_every": 5,
    "device": "cpu",
}


def test_specs_without_scaling_keep_their_hash_keys_yaml_and_payloads() -> None:
    spec = parse_spec(SPEC)
    explicit = parse_spec({**SPEC, "scaling": {"batch": "none", "horizon": "none"},
                           "base_batch_size": None, "base_horizon": None})
    assert spec_hash(spec) == spec_hash(explicit)
    assert [run_key(r) for r in spec.expand()] == [run_key(r) for r in explicit.expand()]
    assert "scaling:" not in spec.to_yaml() and "decay_fraction" not in spec.to_yaml()
    payload = spec.expand()[0].model_dump(mode="json")
    assert not {"scaling", "base_batch_size", "base_horizon"} & set(payload)
    assert "decay_fraction" not in payload["optimizer"]
    # A rule, a base or a wsd schedule changes what is trained, so it changes the hash.
    for change in ({"scaling": {"batch": "sqrt"}}, {"batch_sizes": [16, 32]},
                   {"scaling": {"horizon": {"power": -0.5}}}, {"horizons": [20, 40]},
                   {"optimizer": {"schedule": "wsd", "decay_fraction": 0.3}}):
        assert spec_hash(parse_spec({**SPEC, **change})) != spec_hash(spec), change
    swept = parse_spec({**SPEC, "scaling": {"batch": "sqrt"}})  # a rule alone: same runs
    assert [run_key(r) for r in swept.expand()] == [run_key(r) for r in spec.expand()]
    assert parse_spec(yaml.safe_load(swept.to_yaml())) == swept


def test_runs_carry_the_rules_and_train_at_the_moved_settings() -> None:
    spec = parse_spec({**SPEC, "scaling": {"batch": "sqrt", "horizon": {"power": -0.5}},
                       "batch_sizes": [4, 16], "horizons": [8, 32], "log_every": 1})
    [run] = [r for r in spec.expand() if (r.batch_size, r.horizon) == (16, 32)][:1]
    assert (run.base_batch_size, run.base_horizon, run.lr) == (4, 8, 2.0**-8)
    assert run.steps == 8  # horizon 32 at the base batch 4 = 8 steps at batch 16
    base_run = [r for r in spec.expand() if (r.batch_size, r.horizon) == (4, 8)][0]
    assert base_run.effective_optimizer()[1].betas == pytest.approx((0.9, 0.999), rel=1e-12)
    lr, opt = run.effective_optimizer()
    # batch x 4: LR x 2, 1 - beta x 4, eps / 2; horizon x 4: LR x 1/2.
    assert lr == pytest.approx(2.0**-8, rel=1e-12)
    assert opt.betas == pytest.approx((0.6, 0.996), rel=1e-12)
    assert opt.eps == pytest.approx(0.5e-8, rel=1e-12)
    linear_runs = parse_spec({**SPEC, "optimizer": {"name": "sgd"}, "scaling": {"batch": "linear"},
                         "batch_sizes": [8, 16], "steps": 32}).expand()
    [linear] = [r for r in linear_runs if r.batch_size == 16 and r.lr == 2.0**-8][:1]
    assert linear.effective_optimizer()[0] == pytest.approx(2.0**-7, rel=1e-12)


@pytest.mark.parametrize(("change", "words"), [
    ({"optimizer": {"name": "sgd"}, "scaling": {"batch": "sqrt"}},
     "scaling.batch: batch scaling rule 'sqrt' has no entry for optimizer sgd"),
    ({"scaling": {"batch": "linear"}},
     "scaling.batch: batch scaling rule 'linear' has no entry for optimizer adam"),
    ({"scaling": {"batch": "cubic"}}, "scaling.batch: scaling.batch 'cubic' is not a rule"),
    ({"scaling": {"horizon": "sqrt"}}, "scaling.horizon: scaling.horizon 'sqrt' is not a rule"),
    ({"scaling": {"batch": {"power": "x"}}}, "scaling.batch"),
    ({"scaling": {"batch": "sqrt"}, "batch_sizes": [1, 16], "steps": 32},
     "scaling.batch: batch scaling rule 'sqrt' at k = 16 gives beta1"),
    ({"base_batch_size": 0}, "base_batch_size"),
    ({"optimizer": {"schedule": "wsd", "decay_fraction": 0.0}},
     "optimizer.decay_fraction must be in (0, 1]"),
    ({"optimizer": {"schedule": "wsd", "decay_fraction": 1.5}},
     "optimizer.decay_fraction must be in (0, 1]"),
    ({"optimizer": {"schedule": "cosine", "decay_fraction": 0.2}},
     "optimizer.decay_fraction is set but optimizer.schedule is cosine"),
    ({"optimizer": {"schedule": "wsd", "warmup_steps": 20}},
     "optimizer.warmup_steps: optimizer.warmup_steps 20 must be < steps 20"),
    ({"optimizer": {"schedule": "wsd", "warmup_steps": 15, "decay_fraction": 0.5}},
     "optimizer.decay_fraction: optimizer.decay_fraction 0.5 decays over the last 10"),
    ({"optimizer": {"schedule": "wsd", "warmup_steps": 5}, "horizons": [5, 20]},
     "base_horizon: base_horizon 5 is not longer than optimizer.warmup_steps 5"),
])
def test_bad_scaling_and_schedules_are_refused_at_their_field(change: dict[str, Any],
                                                              words: str) -> None:
    with pytest.raises(UserError) as err:
        parse_spec({**SPEC, **change})
    assert words in str(err.value)


def test_sweep_run_with_a_rule_the_optimizer_lacks_exits_2_and_stores_nothing(
        tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({**SPEC, "optimizer": {"name": "sgd"},
                                         "scaling": {"batch": "sqrt"}}))
    db = tmp_path / "store.duckdb"
    r = subprocess.run([sys.executable, "-m", "experiments", "sweep", "run", str(spec_path),
                        "--db", str(db)], cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "scaling.batch" in r.stderr and "'sqrt' has no entry for optimizer sgd" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    if db.exists():
        from experiments.store import Store

        assert Store(db).list_sweeps() == []


def _run(**changes: Any) -> RunConfig:
    data = {"model": {"kind": "mlp", "depth": 2}, "task": {"name": "synthetic"}, "width": 32,
            "base_width": 32, "lr": 2.0**-6, "seed": 0, "steps": 8, "batch_size": 16,
            "log_every": 4, "device": "cpu"}
    return RunConfig.model_validate({**data, **changes})


class _Losses(NullReporter):
    def __init__(self) -> None:
        self.train: list[float] = []

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.train += [v for k, v in values.items() if k == "train_loss"]


def _losses(run: RunConfig) -> list[float]:
    reporter = _Losses()
    result = train_run(run, reporter)
    return [*reporter.train, result.final_val_loss or 0.0]


def test_a_scaled_run_trains_exactly_as_the_settings_written_out() -> None:
    scaled = _run(scaling={"batch": "sqrt"}, base_batch_size=4, lr=2.0**-7)
    by_hand = _run(lr=2.0**-6, optimizer={"betas": (0.6, 0.996), "eps": 0.5e-8})
    assert _losses(scaled) == pytest.approx(_losses(by_hand), rel=1e-5)
    assert _losses(scaled) != pytest.approx(_losses(_run(lr=2.0**-7)), rel=1e-3)


def test_a_wsd_run_differs_from_constant_only_once_the_decay_starts() -> None:
    wsd = _losses(_run(optimizer={"schedule": "wsd", "decay_fraction": 0.5}))
    constant = _losses(_run())
    assert wsd[0] == pytest.approx(constant[0], rel=1e-6)  # steps 1-4: the stable phase
    assert wsd[1] != pytest.approx(constant[1], rel=1e-4)  # steps 5-8 decay
