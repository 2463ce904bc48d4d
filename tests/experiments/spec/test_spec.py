"""The sweep spec: every invalid input is refused with a message naming its field; valid specs
round-trip through YAML, expand to the right runs and estimate sane costs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from experiments.errors import UserError
from experiments.models import MLPConfig, count_params
from experiments.spec.sweep import (
    MAX_RUNS,
    SweepSpec,
    check_spec,
    format_validation_error,
    load_spec,
    parse_spec,
    run_key,
    spec_hash,
    spec_log2_lrs,
)
from experiments.tasks import TaskConfig, task_info

CONFIGS = Path(__file__).resolve().parents[3] / "experiments" / "configs"


def valid() -> dict[str, Any]:
    return {
        "name": "t",
        "model": {"kind": "mlp", "depth": 2},
        "task": {"name": "synthetic"},
        "widths": [32, 64, 128],
        "base_width": 32,
        "parametrizations": ["sp", "mup"],
        "lr_grid": {"log2_min": -10, "log2_max": -6, "step": 1},
        "seeds": [0, 1],
        "steps": 20,
        "batch_size": 16,
        "log_every": 5,
        "device": "cpu",
    }


def with_(**changes: Any) -> dict[str, Any]:
    data = valid()
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


# (case id, spec data, field the message must name)
INVALID = [
    ("widths-decrease", with_(widths=[32, 512, 256]), "widths must increase: got 256 after 512"),
    ("widths-repeat", with_(widths=[32, 64, 64]), "widths"),
    ("widths-empty", with_(widths=[]), "widths"),
    ("base-not-in-ladder", with_(base_width=48), "base_width"),
    ("lr-negative", with_(lr_grid=..., lrs=[1e-3, -1e-3]), "lrs"),
    ("lr-nan", with_(lr_grid=..., lrs=[float("nan")]), "lrs"),
    ("lr-inf", with_(lr_grid=..., lrs=[float("inf")]), "lrs"),
    ("grid-empty", with_(lr_grid={"log2_min": -4, "log2_max": -8, "step": 1}), "lr_grid"),
    ("grid-step-zero", with_(lr_grid={"log2_min": -8, "log2_max": -4, "step": 0}), "lr_grid.step"),
    ("grid-step-negative", with_(lr_grid={"log2_min": -8, "log2_max": -4, "step": -1}), "lr_grid.step"),
    ("both-lr-forms", with_(lrs=[1e-3]), "lr_grid"),
    ("neither-lr-form", with_(lr_grid=...), "lr_grid"),
    ("gpt-width-not-heads", with_(model={"kind": "gpt", "head_dim": 16}, task={"name": "synthetic-lm", "seq_len": 8},
                                  widths=[32, 40], base_width=32), "widths"),
    ("model-task-mismatch", with_(model={"kind": "gpt"}), "task"),
    ("unknown-model-kind", with_(model={"kind": "rnn"}), "model"),
    ("unknown-task", with_(task={"name": "imagenet"}), "task.name"),
    ("unknown-parametrization", with_(parametrizations=["sp", "ntk"]), "parametrizations"),
    ("parametrizations-empty", with_(parametrizations=[]), "parametrizations"),
    ("seeds-empty", with_(seeds=[]), "seeds"),
    ("seeds-duplicated", with_(seeds=[0, 0]), "seeds"),
    ("steps-zero", with_(steps=0), "steps"),
    ("batch-negative", with_(batch_size=-4), "batch_size"),
    ("log-every-zero", with_(log_every=0), "log_every"),
    ("log-every-above-steps", with_(log_every=50), "log_every"),
    ("too-big", with_(widths=[32, 64, 1 << 17], batch_size=4096), "widths"),
    ("too-many-runs", with_(lr_grid={"log2_min": -20, "log2_max": 0, "step": 0.01}, seeds=list(range(20))), "too many runs"),
    ("extra-key", with_(learning_rate=1e-3), "learning_rate"),
    ("extra-nested-key", with_(optimizer={"name": "adam", "beta": 0.9}), "optimizer.beta"),
    ("unknown-optimizer", with_(optimizer={"name": "adagrad"}), "optimizer.name"),
    ("hparam-nonpositive", with_(hparams={"init_std": 0}), "hparams.init_std"),
    ("hparam-grid-unknown", with_(hparam_grid={"lr": [1, 2]}), "hparam_grid"),
    ("device-bogus", with_(device="tpu"), "device"),
    ("precision-unknown", with_(precision="fp16"), "precision: Input should be 'fp32' or 'bf16'"),
    ("compile-not-bool", with_(compile="sometimes"), "compile:"),
]


@pytest.mark.parametrize("data,field", [(d, f) for _, d, f in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_spec_is_refused_naming_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate(data)
    text = format_validation_error(info.value)
    assert field in text, text
    # Every line is "field: message" or a whole-spec message; none is pydantic's raw dump.
    assert "For further information" not in text


def test_cuda_without_a_gpu_says_use_auto_or_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    # A machine without a GPU, whatever this one has.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate(with_(device="cuda"))
    text = format_validation_error(info.value)
    assert text.startswith("device:") and "use auto or cpu" in text


def test_memory_refusal_quotes_the_estimate() -> None:
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate(with_(widths=[32, 64, 1 << 17], batch_size=4096))
    text = format_validation_error(info.value)
    assert "estimated memory" in text and "GiB at width 131072" in text


def test_errors_of_several_fields_are_all_reported() -> None:
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate(with_(widths=[64, 32], seeds=[], steps=0))
    text = format_validation_error(info.value)
    assert {line.split(":")[0] for line in text.splitlines()} >= {"widths", "seeds", "steps"}


def test_yaml_round_trip(tmp_path: Path) -> None:
    spec = SweepSpec.model_validate(with_(hparam_grid={"output_mult": [0.5, 2.0]}))
    path = tmp_path / "s.yaml"
    path.write_text(spec.to_yaml())
    again = load_spec(path)
    assert again == spec
    assert spec_hash(again) == spec_hash(spec)
    assert spec_hash(spec.model_copy(update={"name": "other"})) == spec_hash(spec)
    assert spec_hash(spec.model_copy(update={"steps": 21})) != spec_hash(spec)


def test_json_spec_loads(tmp_path: Path) -> None:
    import json

    path = tmp_path / "s.json"
    path.write_text(json.dumps(valid()))
    assert load_spec(path).widths == [32, 64, 128]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nwidths: [64, 128\nsteps: 10\n")
    with pytest.raises(UserError, match=r"YAML syntax error at line \d+"):
        load_spec(path)


def test_load_spec_wraps_validation_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(with_(widths=[128, 64])))
    with pytest.raises(UserError, match="widths: widths must increase: got 64 after 128"):
        load_spec(path)
    with pytest.raises(UserError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")
    path.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="mapping"):
        load_spec(path)


def test_expand_counts_and_contents() -> None:
    spec = SweepSpec.model_validate(with_(hparam_grid={"output_mult": [0.5, 1.0, 2.0]}))
    runs = spec.expand()
    assert spec_log2_lrs(spec) == [-10, -9, -8, -7, -6]
    assert len(runs) == spec.n_runs() == 3 * 2 * 5 * 2 * 3
    keys = {run_key(r) for r in runs}
    assert len(keys) == len(runs)  # unique within the sweep
    assert {r.hparams.output_mult for r in runs} == {0.5, 1.0, 2.0}
    assert {r.lr for r in runs} == {2.0**x for x in range(-10, -5)}
    assert all(r.base_width == 32 and r.steps == 20 and r.device == "cpu" for r in runs)


def test_explicit_lrs_are_sorted_and_used() -> None:
    spec = SweepSpec.model_validate(with_(lr_grid=..., lrs=[1e-2, 1e-3]))
    assert spec.lrs_resolved() == [1e-3, 1e-2]
    assert spec_log2_lrs(spec) == pytest.approx([math.log2(1e-3), math.log2(1e-2)])
    assert spec.n_runs() == 3 * 2 * 2 * 2


def test_half_step_grid_includes_both_ends() -> None:
    spec = SweepSpec.model_validate(with_(lr_grid={"log2_min": -10, "log2_max": -6, "step": 0.5}))
    assert spec_log2_lrs(spec) == [-10 + 0.5 * i for i in range(9)]


def test_estimate_is_sane() -> None:
    spec = SweepSpec.model_validate(valid())
    plan = spec.estimate()
    info = task_info(TaskConfig(name="synthetic"))
    assert plan.n_runs == 60 and plan.total_steps == 60 * 20
    params = [w.params for w in plan.widths]
    assert params == [count_params(MLPConfig(), info, w) for w in (32, 64, 128)]
    assert params[0] < params[1] < params[2]
    # 6 x params x batch per step, summed over the runs of each width.
    expected = sum(6 * p * 16 * 20 * 20 for p in params)
    assert plan.total_flops == pytest.approx(expected)
    widest = plan.widths[-1]
    assert plan.peak_memory_bytes == widest.memory_bytes >= 16 * params[-1]
    assert 0 < plan.est_compute_s < 60
    frame = plan.widths_frame()
    assert list(frame["width"]) == [32, 64, 128] and list(frame["runs"]) == [20, 20, 20]


def test_check_spec_is_empty_for_a_valid_spec() -> None:
    assert check_spec(SweepSpec.model_validate(valid())) == {}


@pytest.mark.parametrize("name", ["quick", "gpt-bytes", "cnn-digits", "mlp-digits-transfer"])
def test_shipped_presets_are_valid(name: str) -> None:
    spec = load_spec(CONFIGS / f"{name}.yaml")
    assert spec.n_runs() <= MAX_RUNS
    lrs = spec_log2_lrs(spec)
    assert lrs == sorted(lrs) and len(lrs) >= 5


def test_quick_preset_shape() -> None:
    spec = load_spec(CONFIGS / "quick.yaml")
    assert set(spec.parametrizations) == {"sp", "mup"}
    assert spec.widths[-1] / spec.widths[0] >= 8
    assert spec.estimate().est_compute_s < 300


def test_precision_and_compile_default_off_and_reach_every_run() -> None:
    spec = SweepSpec.model_validate(valid())
    assert spec.precision == "fp32" and spec.compile is False
    assert all(r.precision == "fp32" and r.compile is False for r in spec.expand())
    fast = SweepSpec.model_validate(with_(precision="bf16", compile=True))
    assert all(r.precision == "bf16" and r.compile is True for r in fast.expand())


def test_new_fields_at_their_defaults_keep_the_spec_hash() -> None:
    # The hash of a spec written before precision/compile (and the later hash-neutral fields:
    # depths, base_depth, ...) existed: the dump without them.
    import hashlib
    import json

    from experiments.spec.run import OPTIMIZER_NEUTRAL_DEFAULTS
    from experiments.spec.sweep import HASH_NEUTRAL_DEFAULTS

    spec = SweepSpec.model_validate(valid())
    old = spec.model_dump(mode="json", exclude={"name", "device", *HASH_NEUTRAL_DEFAULTS})
    for key in OPTIMIZER_NEUTRAL_DEFAULTS:  # Muon's settings, added later
        old["optimizer"].pop(key)
    blob = json.dumps(old, sort_keys=True, separators=(",", ":"))
    assert spec_hash(spec) == hashlib.sha256(blob.encode()).hexdigest()[:16]
    assert spec_hash(spec.model_copy(update={"precision": "bf16"})) != spec_hash(spec)
    assert spec_hash(spec.model_copy(update={"compile": True})) != spec_hash(spec)
    muon = SweepSpec.model_validate(with_(optimizer={"name": "muon"}))
    rms = SweepSpec.model_validate(with_(optimizer={"name": "muon",
                                                    "adjust_lr_fn": "match_rms_adamw"}))
    assert spec_hash(rms) != spec_hash(muon) != spec_hash(spec)


def test_muon_settings_are_validated_with_the_field_named() -> None:
    with pytest.raises(UserError, match="optimizer: adjust_lr_fn and hidden_lr_correction are "
                                        "Muon settings"):
        parse_spec(with_(optimizer={"name": "adam", "hidden_lr_correction": False}))
    with pytest.raises(UserError, match="optimizer.adjust_lr_fn"):
        parse_spec(with_(optimizer={"name": "muon", "adjust_lr_fn": "rms"}))
    spec = parse_spec(with_(optimizer={"name": "muon", "adjust_lr_fn": "match_rms_adamw"}))
    kwargs = spec.optimizer.build_kwargs()
    assert kwargs["adjust_lr_fn"] == "match_rms_adamw" and kwargs["momentum"] == 0.95


def test_precision_and_compile_round_trip_through_yaml(tmp_path: Path) -> None:
    spec = SweepSpec.model_validate(with_(precision="bf16", compile=True))
    path = tmp_path / "s.yaml"
    path.write_text(spec.to_yaml())
    assert load_spec(path) == spec
