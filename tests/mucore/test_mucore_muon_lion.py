"""Muon and Lion in mucore: the registry entries, their µP groups (which parameters Muon owns and
at what LR, per adjustment), the one-object Muon + AdamW optimizer against bare torch, Lion's
update rule, weight decay modes, the checker and apply_bundle."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import torch
from mucore_toys import ToyCNN, ToyMLP, mlp_batch
from torch import nn

import mucore
import mucore.parametrizations as tables
from mucore.bundle import BUNDLE_KIND, SCHEMA_VERSION, content_hash
from mucore.parametrizations import OptimizerFamily

BASE, WIDE = 16, 64  # m = 4
LR = 0.01


def _setup(width: int = WIDE, factory: Any = ToyMLP, seed: int = 0
           ) -> tuple[nn.Module, mucore.MuSetup]:
    torch.manual_seed(seed)
    model = factory(width)
    shapes = mucore.infer_base_shapes(factory, BASE)
    return model, mucore.parametrize(model, shapes, "mup", seed=seed)


def _by_name(groups: list[dict]) -> dict[str, dict]:
    return {n: g for g in groups for n in g["param_names"]}


def _train(model: nn.Module, opt: torch.optim.Optimizer, steps: int,
           sched: Any = None) -> None:
    x, y = mlp_batch()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if sched is not None:
            sched.step()


def test_registry_lists_muon_and_lion_with_their_families() -> None:
    assert {"muon", "lion"} <= set(mucore.optimizer_names())
    assert mucore.optimizer_family("lion") is OptimizerFamily.ADAM
    assert mucore.rule_family("muon") is OptimizerFamily.MUON
    assert mucore.rule_family("muon", "match_rms_adamw") is OptimizerFamily.MUON_RMS
    assert mucore.rule_family("muon", "match_rms_adamw", False) is OptimizerFamily.MUON
    with pytest.raises(ValueError, match="Muon settings"):
        mucore.rule_family("adam", "match_rms_adamw")
    with pytest.raises(ValueError, match="adjust_lr_fn must be one of"):
        mucore.rule_family("muon", "rms")


@pytest.mark.parametrize(("options", "hidden_mult"), [
    ({}, 1.0),  # "original": width-constant hidden LR
    ({"adjust_lr_fn": "match_rms_adamw"}, 4 ** -0.5),  # / sqrt(m)
    ({"adjust_lr_fn": "match_rms_adamw", "hidden_lr_correction": False}, 1.0),  # the diagnostic
])
def test_muon_owns_the_hidden_matrix_at_its_rule_and_adamw_the_rest(
        options: dict[str, Any], hidden_mult: float) -> None:
    model, setup = _setup()
    groups = _by_name(mucore.param_groups(model, setup, "muon", LR, **options))
    assert groups["hid.weight"]["update"] == "muon"
    assert groups["hid.weight"]["lr_mult"] == pytest.approx(hidden_mult)
    assert "eps" not in groups["hid.weight"]  # Muon's eps is its own Newton-Schulz guard
    for name in ("inp.weight", "readout.weight", "hid.bias", "norm.weight"):
        assert groups[name]["update"] == "adamw"
        assert groups[name]["lr_mult"] == 1.0  # µP's Adam rule for input, output, vectors


def test_muon_leaves_conv_kernels_to_adamw_with_adams_hidden_rule() -> None:
    model, setup = _setup(factory=ToyCNN)
    groups = _by_name(mucore.param_groups(model, setup, "muon", LR))
    assert groups["conv.weight"]["update"] == "adamw"
    assert groups["conv.weight"]["lr_mult"] == pytest.approx(1 / 4)  # Adam: hidden LR / m
    opt = mucore.build_optimizer(model, setup, "muon", LR)
    assert opt.muon is None  # no 2-D hidden weight: nothing for Muon
    _train_cnn(model, opt)


def _train_cnn(model: nn.Module, opt: torch.optim.Optimizer) -> None:
    x = torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    before = model.conv.weight.detach().clone()
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    opt.step()
    assert not torch.equal(before, model.conv.weight)


def test_lion_follows_adams_table_and_takes_no_eps() -> None:
    model, setup = _setup()
    lion = _by_name(mucore.param_groups(model, setup, "lion", LR))
    adam = _by_name(mucore.param_groups(model, setup, "adam", LR))
    assert {n: g["lr_mult"] for n, g in lion.items()} == {n: g["lr_mult"] for n, g in adam.items()}
    assert lion["hid.weight"]["lr_mult"] == pytest.approx(1 / 4)
    assert all("eps" not in g for g in lion.values())


def test_depth_tables_refuse_muon_and_a_table_without_a_muon_rule_says_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = _setup()
    shapes = mucore.infer_base_shapes(ToyMLP, BASE)
    for name in ("completep", "depth-mup"):
        with pytest.raises(ValueError, match="Muon"):
            mucore.get_parametrization(name).check_family(OptimizerFamily.MUON)
    hidden = mucore.MUP.rules[mucore.Role.HIDDEN]
    adam_only = {OptimizerFamily.ADAM: -1.0, OptimizerFamily.SGD: 0.0}
    table = mucore.Parametrization(
        "mine", "mine-1", {**mucore.MUP.rules, mucore.Role.HIDDEN: mucore.RoleRule(
            hidden.init, hidden.forward_exp, adam_only)}, attention_inverse=True)
    # A registry of this test's own: the throwaway table must not leak into later tests.
    monkeypatch.setattr(tables, "_REGISTRY", dict(tables._REGISTRY))
    mucore.register_parametrization(table)  # Muon rules are optional
    setup = mucore.parametrize(model, shapes, table)
    assert mucore.build_optimizer(model, setup, "adam", LR)  # still trains with Adam
    with pytest.raises(ValueError, match="no hidden-weight rule for Muon"):
        mucore.build_optimizer(model, setup, "muon", LR)


def _bare_torch(model: nn.Module, setup: mucore.MuSetup, adjust: str) -> list[Any]:
    """torch.optim.Muon + AdamW by hand over the groups mucore computes."""
    groups = mucore.param_groups(model, setup, "muon", LR, weight_decay=0.1,
                                 adjust_lr_fn=adjust)
    muon = [g for g in groups if g["update"] == "muon"]
    rest = [g for g in groups if g["update"] == "adamw"]
    return [torch.optim.Muon(muon, lr=LR, adjust_lr_fn=adjust),
            torch.optim.AdamW(rest, lr=LR)]


class _Pair:
    def __init__(self, opts: list[Any]) -> None:
        self.opts = opts

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.opts:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.opts:
            o.step()


@pytest.mark.parametrize("adjust", ["original", "match_rms_adamw"])
def test_muon_adamw_steps_exactly_as_bare_torch_muon_and_adamw(adjust: str) -> None:
    ours, setup = _setup(seed=1)
    theirs, setup2 = _setup(seed=1)
    opt = mucore.build_optimizer(ours, setup, "muon", LR, weight_decay=0.1, adjust_lr_fn=adjust)
    assert isinstance(opt, mucore.MuonAdamW)
    _train(ours, opt, 4)
    _train(theirs, _Pair(_bare_torch(theirs, setup2, adjust)), 4)  # type: ignore[arg-type]
    for (n, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=n)


def test_muon_adamw_schedules_and_saves_like_one_optimizer() -> None:
    # Uninterrupted: 3 steps under a schedule that halves every group's LR.
    ref, setup = _setup(seed=2)
    opt = mucore.build_optimizer(ref, setup, "muon", LR)
    sched = mucore.relative_schedule(opt, lambda step: 0.5 ** step)
    _train(ref, opt, 3, sched)
    # The scheduler reaches the inner optimizers' groups, ratios kept.
    lrs = {g["param_names"][0]: g["lr"] for g in opt.muon.param_groups + opt.adamw.param_groups}
    assert lrs["hid.weight"] == pytest.approx(LR * 0.125)
    # Interrupted after 2 steps, saved, loaded into a fresh optimizer, one more step.
    model, setup2 = _setup(seed=2)
    first = mucore.build_optimizer(model, setup2, "muon", LR)
    sched1 = mucore.relative_schedule(first, lambda step: 0.5 ** step)
    _train(model, first, 2, sched1)
    state, sched_state = first.state_dict(), sched1.state_dict()
    # torch's resume order: optimizer and scheduler built, then both states loaded.
    second = mucore.build_optimizer(model, setup2, "muon", LR)
    sched2 = mucore.relative_schedule(second, lambda step: 0.5 ** step)
    second.load_state_dict(state)
    sched2.load_state_dict(sched_state)
    _train(model, second, 1, sched2)
    assert len(second.state) == len(list(model.parameters()))
    for (n, a), (_, b) in zip(ref.named_parameters(), model.named_parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=n)
    with pytest.raises(ValueError, match="MuonAdamW.state_dict"):
        second.load_state_dict(torch.optim.AdamW(model.parameters()).state_dict())


def test_muon_adamw_refuses_groups_that_do_not_say_their_optimizer() -> None:
    model, _ = _setup()
    with pytest.raises(ValueError, match="param_groups"):
        mucore.MuonAdamW([{"params": list(model.parameters())}])


def test_lion_step_is_the_signed_interpolation_with_decoupled_decay() -> None:
    p = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = mucore.Lion([p], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    grads = [torch.tensor([0.3, -0.1, 0.0]), torch.tensor([-1.0, 0.2, 0.4])]
    m = torch.zeros(3)
    expected = p.detach().clone()
    for g in grads:
        p.grad = g.clone()
        opt.step()
        expected = expected * (1 - 0.1 * 0.5) - 0.1 * torch.sign(0.9 * m + 0.1 * g)
        m = 0.99 * m + 0.01 * g
    torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="betas"):
        mucore.Lion([p], betas=(0.9, 1.0))


@pytest.mark.parametrize("optimizer", ["muon", "lion"])
@pytest.mark.parametrize("mode", ["coupled", "independent"])
def test_weight_decay_modes_hold_for_muon_and_lion(optimizer: str, mode: str) -> None:
    model, setup = _setup()
    wd = 0.1
    groups = mucore.param_groups(model, setup, optimizer, LR, weight_decay=wd, wd_mode=mode,
                                 adjust_lr_fn="match_rms_adamw" if optimizer == "muon" else None)
    shrink = {g["param_names"][0]: g["lr"] * g["weight_decay"] for g in groups
              if g["weight_decay"]}
    want = LR * wd if mode == "coupled" else wd  # per-step shrink: lr * wd, or wd
    assert shrink and all(v == pytest.approx(want) for v in shrink.values())


def _check(model: nn.Module, setup: mucore.MuSetup, opt: torch.optim.Optimizer
           ) -> dict[str, mucore.Finding]:
    return {f.check: f for f in mucore.check(model, opt, setup=setup).findings}


def test_checker_passes_mucores_muon_and_lion_and_fails_the_uncorrected_match_rms() -> None:
    model, setup = _setup()
    for name, options in [("muon", {}), ("muon", {"adjust_lr_fn": "match_rms_adamw"}),
                          ("lion", {})]:
        found = _check(model, setup, mucore.build_optimizer(model, setup, name, LR, **options))
        assert found["optimizer"].status == "pass", (name, options, found["optimizer"])
        assert "eps" not in found or found["eps"].status == "pass"
    wrong = mucore.build_optimizer(model, setup, "muon", LR, adjust_lr_fn="match_rms_adamw",
                                   hidden_lr_correction=False)
    finding = _check(model, setup, wrong)["optimizer"]
    assert finding.status == "fail"
    assert "match_rms_adamw" in finding.fix and "sqrt(m)" in finding.fix


def test_describe_says_which_optimizer_trains_each_parameter() -> None:
    _, setup = _setup()
    rows = {r.name: r for r in mucore.describe(setup, "muon", {"adjust_lr_fn": "match_rms_adamw"})}
    assert rows["hid.weight"].update == "muon"
    assert rows["hid.weight"].lr_mult == pytest.approx(0.5)
    assert rows["inp.weight"].update == "adamw"
    assert "update" not in mucore.describe(setup, "adam")[0].to_dict()  # other tables unchanged


def test_apply_bundle_builds_muon_with_the_bundles_adjustment() -> None:
    opt_block = {"name": "muon", "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1,
                 "wd_mode": "coupled", "scale_eps": False, "adjust_lr_fn": "match_rms_adamw",
                 "muon_momentum": 0.9}
    shapes = mucore.infer_base_shapes(ToyMLP, BASE)
    with torch.device("meta"):
        meta = ToyMLP(WIDE)
    setup = mucore.parametrize(meta, shapes, "mup", reinit=False)
    rows = [dict(r.to_dict(), lr=LR * r.lr_mult) for r in mucore.describe(setup, "muon", opt_block)]
    bundle: dict[str, Any] = {
        "kind": BUNDLE_KIND, "schema_version": SCHEMA_VERSION, "parametrization": "mup",
        "rules_version": mucore.MUP.version, "base_shapes": shapes.to_dict(),
        "hparams": mucore.HParams().to_dict(), "lr": LR, "optimizer": opt_block,
        "target_width": WIDE, "param_table": rows}
    bundle["content_hash"] = content_hash(bundle)
    model, opt = mucore.apply_bundle(json.loads(json.dumps(bundle)), ToyMLP(WIDE))
    assert isinstance(opt, mucore.MuonAdamW) and opt.adjust_lr_fn == "match_rms_adamw"
    groups = _by_name(opt.param_groups)
    assert groups["hid.weight"]["lr"] == pytest.approx(LR / 2)
    assert groups["hid.weight"]["momentum"] == 0.9
    assert math.isclose(groups["inp.weight"]["lr"], LR)
    assert _check(model, mucore.setup_of(model), opt)["optimizer"].status == "pass"
