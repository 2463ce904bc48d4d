"""`kind: hf` in the zoo: real transformers architectures built at each width of the ladder,
their sizes from the width and the task, their head a `mucore.Readout`; listed by `models`,
taken by the CLI with `--option`, refused (exit 2, the install command) without transformers,
and exported + applied at 4x the base width like any zoo model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mucore
from experiments.bundle.build import read_bundle
from experiments.cli import main
from experiments.errors import UserError
from experiments.models import HFConfig, build_model, check_task, model_factory
from experiments.models.catalog import model_config
from experiments.spec.sweep import SweepSpec, parse_spec
from experiments.store import Store
from experiments.sweep.submit import create_sweep
from experiments.tasks import TaskConfig, load_task, task_info

ROOT = Path(__file__).resolve().parents[3]
BYTES = TaskConfig(name="bytes", seq_len=16)
DIGITS = TaskConfig(name="digits")


def test_no_config_builds_a_small_llama_sized_by_width_and_task():
    info = task_info(BYTES)
    model = build_model(HFConfig(), info, 64)
    net = model.net
    assert type(net).__name__ == "LlamaForCausalLM"
    c = net.config
    assert (c.hidden_size, c.num_hidden_layers, c.vocab_size) == (64, 2, 256)
    assert (c.num_attention_heads, c.num_key_value_heads, c.head_dim) == (4, 4, 16)
    assert c.intermediate_size == round(64 * 11008 / 4096)  # LLaMA's own MLP ratio
    assert isinstance(net.lm_head, mucore.Readout) and net.lm_head.weight.shape == (256, 64)
    x, _ = load_task(BYTES).batch("train", 3, torch.Generator().manual_seed(0))
    assert model(x).shape == (3, 16, 256)  # logits, not transformers' output object


def test_widths_fixed_heads_and_the_mlp_ratio_follow_the_config():
    info = task_info(BYTES)
    cfg = HFConfig(architecture="Qwen2ForCausalLM", head_mode="fixed_heads", n_heads=2,
                   config={"hidden_size": 100, "intermediate_size": 300,
                           "num_hidden_layers": 1})
    for width in (32, 128):
        net = build_model(cfg, info, width).net
        c = net.config
        assert (c.hidden_size, c.intermediate_size, c.num_hidden_layers) == (width, 3 * width, 1)
        assert c.num_attention_heads == 2
        assert net.model.layers[0].self_attn.head_dim == width // 2  # the heads widen


def test_gpt2_takes_the_width_as_n_embd_and_keeps_its_tied_head():
    info = task_info(BYTES)
    model = build_model(HFConfig(architecture="GPT2LMHeadModel"), info, 32)
    c = model.net.config
    assert (c.n_embd, c.n_head, c.n_inner, c.n_positions, c.vocab_size) == (32, 2, 128, 16, 256)
    head = model.net.lm_head
    assert isinstance(head, mucore.TiedReadout)
    assert head.weight is model.net.transformer.wte.weight
    assert c.resid_pdrop == c.embd_pdrop == c.attn_pdrop == 0.0  # small defaults: no dropout


def test_an_image_classifier_takes_sizes_from_the_task():
    info = task_info(DIGITS)  # (1, 8, 8) images, 10 classes
    model = build_model(HFConfig(architecture="ViTForImageClassification"), info, 32)
    c = model.net.config
    assert (c.num_labels, c.num_channels, c.image_size, c.patch_size) == (10, 1, 8, 2)
    assert isinstance(model.net.classifier, mucore.Readout)
    x, _ = load_task(DIGITS).batch("train", 4, torch.Generator().manual_seed(0))
    assert model(x).shape == (4, 10)


def test_roles_come_from_two_widths_with_the_head_as_readout():
    shapes = mucore.infer_base_shapes(model_factory(HFConfig(), task_info(BYTES)), 32, 64)
    roles = {n: b.role for n, b in shapes.params.items()}
    assert roles["net.model.embed_tokens.weight"] is mucore.Role.INPUT
    assert roles["net.model.layers.0.self_attn.q_proj.weight"] is mucore.Role.HIDDEN
    assert roles["net.model.layers.0.input_layernorm.weight"] is mucore.Role.VECTOR
    assert roles["net.lm_head.weight"] is mucore.Role.OUTPUT


@pytest.mark.parametrize(("cfg", "task", "want"), [
    (HFConfig(), DIGITS, "needs a language-modelling task"),
    (HFConfig(architecture="ViTForImageClassification"), BYTES, "needs an image classification"),
    (HFConfig(architecture="NoSuchForCausalLM"), BYTES, "has no class 'NoSuchForCausalLM'"),
    (HFConfig(architecture="BertModel"), BYTES, "neither a causal LM nor an image classifier"),
])
def test_a_model_task_mismatch_is_named(cfg, task, want):
    errors = check_task(cfg, task_info(task))
    assert len(errors) == 1 and want in errors[0], errors


@pytest.mark.parametrize(("block", "want"), [
    ({"config": {"num_attention_heads": 4}}, "config.num_attention_heads is set by"),
    ({"config": {"vocab_size": 10}}, "config.vocab_size is set by the task"),
    ({"head_mode": "fixed_heads"}, "needs n_heads"),
])
def test_keys_the_ladder_owns_are_refused_in_the_spec(block, want):
    spec = {"name": "hf", "model": {"kind": "hf", **block}, "task": {"name": "bytes"},
            "widths": [32, 64], "base_width": 32, "lr_grid": {"log2_min": -8, "log2_max": -7},
            "steps": 2, "batch_size": 2, "log_every": 1}
    with pytest.raises(UserError, match=want):
        parse_spec(spec)


def test_a_misspelled_config_key_or_a_width_the_heads_do_not_divide_is_refused():
    info = task_info(BYTES)
    with pytest.raises(UserError, match="LlamaConfig has no field 'num_layers'"):
        build_model(HFConfig(config={"num_layers": 2}), info, 32)
    with pytest.raises(UserError, match="width 40 is not a multiple of head_dim 16"):
        build_model(HFConfig(), info, 40)
    with pytest.raises(UserError, match="give both hidden_size and the MLP size"):
        build_model(HFConfig(config={"intermediate_size": 64}), info, 32)


def test_the_cli_lists_hf_and_takes_its_config_as_json(tmp_path, capsys):
    out = tmp_path / "models.json"
    assert main(["models", "--json", str(out)]) == 0
    entry = {m["name"]: m for m in json.loads(out.read_text())["models"]}["hf"]
    assert entry["kind"] == "zoo"
    assert {o["name"] for o in entry["options"]} >= {"architecture", "config", "head_dim"}
    cfg = model_config("hf", {"architecture": "GPT2LMHeadModel",
                              "config": {"n_layer": 1, "activation_function": "relu"}})
    assert isinstance(cfg, HFConfig) and cfg.config["n_layer"] == 1
    desc = tmp_path / "describe.json"
    rc = main(["describe", "--model", "hf", "--option", "architecture=GPT2LMHeadModel",
               "--option", 'config={"n_layer": 1}', "--task", "bytes", "--param", "mup",
               "--width", "128", "--base-width", "32", "--json", str(desc)])
    assert rc == 0, capsys.readouterr().err
    rows = {r["name"]: r for r in json.loads(desc.read_text())["rows"]}
    assert rows["net.transformer.wte.weight"]["role"] == "input"
    assert rows["net.transformer.h.0.attn.c_attn.weight"]["role"] == "hidden"
    assert "net.transformer.h.1.attn.c_attn.weight" not in rows  # n_layer 1 came through


def test_without_transformers_a_spec_naming_hf_exits_2_with_the_install_command(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: hf\nmodel: {kind: hf, architecture: LlamaForCausalLM}\n"
                    "task: {name: bytes}\nwidths: [32, 64]\nbase_width: 32\n"
                    "lr_grid: {log2_min: -8, log2_max: -7}\nsteps: 2\nbatch_size: 2\n"
                    "log_every: 1\n")
    code = ("import sys; sys.modules['transformers'] = None\n"  # as if it were not installed
            "from experiments.cli import main\n"
            f"sys.exit(main(['sweep', 'run', {str(spec)!r}, '--db', "
            f"{str(tmp_path / 's.duckdb')!r}]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 2, r.stderr
    assert "pip install '.[hf]'" in r.stderr and "Traceback" not in r.stderr


def test_the_spec_module_imports_without_transformers():
    code = ("import sys, experiments.spec.sweep, experiments.models.configs\n"
            "from experiments.models.catalog import zoo_classes; zoo_classes()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'transformers'))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=300, check=True)
    assert r.stdout.strip() == "[]"


SPEC = {
    "name": "hf-bundle",
    "model": {"kind": "hf", "architecture": "LlamaForCausalLM",
              "config": {"num_hidden_layers": 1}},
    "task": {"name": "bytes", "seq_len": 16},
    "widths": [32, 64],
    "base_width": 32,
    "parametrizations": ["mup"],
    "optimizer": {"name": "adam"},
    "lr_grid": {"log2_min": -10, "log2_max": -4, "step": 1},
    "seeds": [0],
    "steps": 10,
    "batch_size": 4,
    "log_every": 5,
    "device": "cpu",
}


def test_export_and_apply_bundle_at_4x_the_base_width(tmp_path):
    """The runs are finished with a synthetic bowl in log2 LR (optimum -7): the path under
    test is the hf model through export and apply, not training (covered by the sweep)."""
    db = tmp_path / "store.duckdb"
    store = Store(db)
    sweep_id = create_sweep(store, SweepSpec.model_validate(SPEC))
    for claim in store.claim(1000, "test", sweep_id):
        loss = 2.0 + 0.05 * (math.log2(claim.payload["lr"]) + 7.0) ** 2
        result = {"state": "done", "final_train_loss": loss, "final_val_loss": loss}
        assert store.finish(claim.run_id, claim.attempt, {**result, "steps_done": 10})
    path = tmp_path / "bundle.json"
    rc = main(["export", str(sweep_id), "--target-width", "128", "--out", str(path), "--db",
               str(db), "--force"])
    assert rc == 0
    bundle = read_bundle(path)
    assert bundle.target_width == 128 and bundle.model_config_obj() == HFConfig(
        config={"num_hidden_layers": 1})
    target = build_model(HFConfig(config={"num_hidden_layers": 1}), task_info(SPEC_TASK), 128)
    model, opt = mucore.apply_bundle(mucore.load_bundle(path), target, seed=0)
    assert model.net.lm_head.forward_mult == pytest.approx(32 / 128)  # alpha_out / m
    lrs = {n: g["lr"] for g in opt.param_groups for n in g["param_names"]}
    q = "net.model.layers.0.self_attn.q_proj.weight"
    assert lrs[q] == pytest.approx(bundle.lr * 32 / 128)  # hidden Adam LR / m
    assert lrs["net.model.embed_tokens.weight"] == pytest.approx(bundle.lr)
    gains = model.net.model.layers[0].input_layernorm.weight
    assert torch.equal(gains, torch.ones_like(gains))  # its own init: µP keeps it


SPEC_TASK = TaskConfig(name="bytes", seq_len=16)
