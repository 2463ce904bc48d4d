"""Sweeps over depth: a spec's `depths` ladder and `base_depth` expand into
widths x depths x parametrizations x LRs x seeds runs keyed by depth; width-only specs keep
their keys and hashes; a bad ladder is refused at its field (CLI: exit 2, nothing stored); and
a run of a ladder trains with the depth rules measured against the base depth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from experiments.errors import UserError
from experiments.spec.ladder import model_depth
from experiments.spec.run import RunConfig
from experiments.spec.sweep import parse_spec, run_key, spec_hash
from experiments.train import NullReporter, base_shapes_for, train_run

ROOT = Path(__file__).resolve().parents[3]

GPT: dict[str, Any] = {
    "name": "depth", "model": {"kind": "gpt", "depth": 2, "head_dim": 16},
    "task": {"name": "bytes", "seq_len": 16}, "widths": [32, 64], "base_width": 32,
    "depths": [2, 4, 8], "parametrizations": ["mup", "completep"], "lrs": [2.0**-8, 2.0**-6],
    "seeds": [0], "steps": 4, "batch_size": 4, "log_every": 2, "device": "cpu",
}


def test_a_ladder_crosses_every_axis_and_keys_runs_by_depth() -> None:
    spec = parse_spec(GPT)
    runs = spec.expand()
    assert spec.n_runs() == len(runs) == 2 * 3 * 2 * 2
    assert {(r.width, model_depth(r.model)) for r in runs} == {(w, d) for w in (32, 64) for d in (2, 4, 8)}
    assert {r.base_depth for r in runs} == {2}
    keys = [run_key(r) for r in runs]
    assert len(set(keys)) == len(keys)
    assert keys[0] == "w32-d2-mup-lr2^-8-s0"
    assert "w64-d8-completep-lr2^-6-s0" in keys


def test_base_depth_defaults_to_the_models_depth_and_can_be_given() -> None:
    assert parse_spec({**GPT, "model": {**GPT["model"], "depth": 4}}).expand()[0].base_depth == 4
    assert parse_spec({**GPT, "base_depth": 8}).expand()[0].base_depth == 8


def test_width_only_specs_keep_their_keys_hash_and_payload_depth() -> None:
    plain = {k: v for k, v in GPT.items() if k != "depths"}
    spec = parse_spec(plain)
    runs = spec.expand()
    assert [run_key(r) for r in runs][:1] == ["w32-mup-lr2^-8-s0"]
    assert all(r.base_depth is None and model_depth(r.model) == 2 for r in runs)
    # The hash ignores the new fields at their defaults (every stored spec keeps its hash)...
    assert spec_hash(spec) == spec_hash(parse_spec({**plain, "depths": None}))
    # ...and counts a ladder, which changes what is trained.
    assert spec_hash(spec) != spec_hash(parse_spec({**plain, "depths": [2, 4]}))
    assert "depths" not in spec.to_yaml()


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"depths": [4, 2]}, "depths", "depths must increase: got 2 after 4"),
    ({"depths": [2, 2, 4]}, "depths", "depths must increase: got 2 after 2"),
    ({"depths": []}, "depths", "depths is empty"),
    ({"depths": [0, 2]}, "depths", "depths must be in [1, 64]: got 0"),
    ({"depths": [2, 4], "base_depth": 3}, "base_depth", "base_depth 3 is not in depths [2, 4]"),
    ({"depths": [4, 8]}, "base_depth", "the model's depth (model.depth) 2 is not in depths"),
    ({"depths": None, "base_depth": 2}, "base_depth", "base_depth 2 is set but depths is not"),
    ({"model": {"kind": "cnn"}, "task": {"name": "digits"}}, "depths",
     "model 'cnn' has no depth to scale"),
    ({"model": {"kind": "mlp", "depth": 2}, "task": {"name": "digits"}}, "depths",
     "model 'mlp' has no residual branches: set model.residual: true"),
])
def test_a_bad_ladder_is_refused_at_its_field(change: dict[str, Any], field: str,
                                              words: str) -> None:
    with pytest.raises(UserError) as err:
        parse_spec({**GPT, **change})
    assert f"{field}: {words}" in str(err.value)


def test_the_plan_counts_every_depth_and_sizes_the_deepest() -> None:
    plain = parse_spec({k: v for k, v in GPT.items() if k != "depths"}).estimate()
    ladder = parse_spec(GPT).estimate()
    deep = parse_spec({**GPT, "depths": None, "model": {**GPT["model"], "depth": 8}})
    assert ladder.n_runs == 3 * plain.n_runs
    assert plain.total_flops < ladder.total_flops < 3 * deep.estimate().total_flops
    assert [w.params for w in ladder.widths] == [w.params for w in deep.estimate().widths]


def test_a_residual_mlp_and_a_llama_take_a_ladder() -> None:
    mlp = parse_spec({**GPT, "model": {"kind": "mlp", "depth": 2, "residual": True},
                      "task": {"name": "digits"}})
    assert [model_depth(r.model) for r in mlp.expand()][::4] == [2, 4, 8, 2, 4, 8]
    llama = parse_spec({**GPT, "model": {"kind": "llama", "depth": 2, "head_dim": 16,
                                         "head_mode": "fixed_dim"}})
    assert llama.n_runs() == 24


def test_sweep_run_with_a_bad_ladder_exits_2_and_stores_nothing(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({**GPT, "depths": [2, 8, 4]}))
    db = tmp_path / "store.duckdb"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "experiments", "sweep", "run", str(spec_path),
                        "--db", str(db)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, r.stderr
    assert "depths: depths must increase: got 4 after 8" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    if db.exists():
        from experiments.store import Store

        assert Store(db).list_sweeps() == []


def _run(param: str, depth: int, base_depth: int | None = 2) -> RunConfig:
    return RunConfig.model_validate({
        "model": {"kind": "mlp", "depth": depth, "residual": True},
        "task": {"name": "synthetic"}, "width": 32, "base_width": 32, "base_depth": base_depth,
        "parametrization": param, "lr": 2.0**-6, "seed": 0, "steps": 6, "batch_size": 8,
        "log_every": 3, "device": "cpu"})


def test_a_ladder_run_at_the_base_width_and_depth_reproduces_sp_exactly() -> None:
    sp = train_run(_run("sp", 2, base_depth=None), NullReporter()).final_train_loss
    for param in ("mup", "completep", "depth-mup"):
        assert train_run(_run(param, 2), NullReporter()).final_train_loss == sp, param


def test_a_deeper_run_is_measured_against_the_base_depth() -> None:
    # Base shapes know the base depth, whatever the run's own depth: m_L = 8 / 2 = 4.
    shapes = base_shapes_for(_run("completep", 8))
    assert shapes.base_depth == 2
    assert shapes is base_shapes_for(_run("completep", 4))
    # At depth 8 the branch multiplier and block LRs act: CompleteP departs from µP, which
    # has no depth rule; at the base depth the two agree (above).
    mup = train_run(_run("mup", 8), NullReporter()).final_train_loss
    completep = train_run(_run("completep", 8), NullReporter()).final_train_loss
    assert mup is not None and completep is not None and mup != completep


def test_the_memory_check_sizes_the_deepest_rung_of_the_ladder() -> None:
    # A batch that fits at the model's own depth (2) but not 64 layers deep: the ladder's
    # deepest run is the one that must fit, and the refusal says so.
    from experiments.device import memory_limit
    from experiments.models.zoo import count_params
    from experiments.spec.estimate import memory_bytes
    from experiments.tasks.loading import task_info

    base = {**GPT, "widths": [32, 64], "depths": None}
    shallow = parse_spec(base)
    info = task_info(shallow.task)
    limit, _ = memory_limit("cpu")

    def need(depth: int, batch: int) -> int:
        spec = shallow.model_copy(update={"batch_size": batch,
                                          "model": shallow.model.model_copy(update={"depth": depth})})
        return memory_bytes(spec, info, 64, count_params(spec.model, info, 64))

    per_example_deep = need(64, 2) - need(64, 1)  # activations grow linearly with the batch
    batch = int(1.5 * limit / per_example_deep)
    assert need(2, batch) < limit < need(64, batch)
    assert parse_spec({**base, "batch_size": batch}).batch_size == batch
    with pytest.raises(UserError) as err:
        parse_spec({**base, "batch_size": batch, "depths": [2, 64], "base_depth": 2})
    assert "estimated memory" in str(err.value) and "width 64, depth 64" in str(err.value)
