"""The static µP doctor (`mucore.check`): a library of deliberately broken setups, each diagnosed
with the right check failing and the right fix named, and healthy setups (toys, zoo models, SP
and µP, compiled, copied, reloaded) with no failure."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from mucore_toys import D_IN, N_OUT, VOCAB, ToyMLP, ToyTransformer, mlp_batch
from torch import Tensor, nn

import mucore
from mucore.check import Diagnosis, _stepped_copy

BASE, WIDTH = 64, 256  # m = 4: the width rules show


def _setup(factory=ToyMLP, param: str = "mup", width: int = WIDTH,
           **hp: object) -> tuple[nn.Module, mucore.MuSetup]:
    shapes = mucore.infer_base_shapes(factory, BASE)
    model = factory(width)
    return model, mucore.parametrize(model, shapes, param, mucore.HParams(**hp))


def _fails(d: Diagnosis) -> dict[str, str]:
    return {f.check: f.fix for f in d.failed()}


# -- healthy ------------------------------------------------------------------------------------

@pytest.mark.parametrize("factory", [ToyMLP, ToyTransformer])
@pytest.mark.parametrize("param", ["mup", "sp"])
def test_a_mucore_setup_is_healthy(factory, param):
    model, setup = _setup(factory, param)
    opt = mucore.build_optimizer(model, setup, "adamw", 1e-2, weight_decay=0.1, scale_eps=True)
    sched = mucore.relative_schedule(opt, mucore.warmup_cosine(2, 10))
    d = mucore.check(model, opt, sched)
    assert d.verdict == "healthy", d.failed()
    assert [f for f in d.findings if f.status == "warn"] == []
    assert d.parametrization == param
    eps = ["eps"] if param == "mup" else []  # SP's eps is SP's business
    assert [f.check for f in d.findings] == [
        "metadata", "tied", "parametrization", "readout", "multipliers", "attention",
        "optimizer", "weight_decay", *eps, "lr_schedule"]
    assert d.finding("lr_schedule").status == "pass"
    # The check changes nothing: the scheduler and the optimizer were not stepped.
    assert [g["lr"] for g in opt.param_groups] == [1e-2 * g["lr_mult"] * 0.5
                                                   for g in opt.param_groups]
    json.dumps(d.to_dict())  # plain JSON


def test_sp_is_reported_as_sp_not_as_broken_mup():
    model, setup = _setup(param="sp")
    d = mucore.check(model, torch.optim.Adam(model.parameters(), lr=1e-3))  # SP's one LR: right
    assert d.verdict == "healthy"
    assert "SP" in d.finding("parametrization").message
    assert d.finding("optimizer").status == "pass"


def test_metadata_survives_deepcopy_state_dict_and_compile():
    model, setup = _setup(ToyTransformer)
    opt = mucore.build_optimizer(model, setup, "adam", 1e-2)
    assert mucore.check(copy.deepcopy(model)).verdict == "healthy"  # the setup is copied along
    fresh = ToyTransformer(WIDTH)
    fresh.load_state_dict(model.state_dict())
    stale = mucore.check(fresh, setup=setup)  # multipliers are module constants, not state
    assert _fails(stale).keys() == {"multipliers"}
    assert "reinit=False" in _fails(stale)["multipliers"]
    mucore.parametrize(fresh, setup.base_shapes, "mup", reinit=False)
    assert mucore.check(fresh).verdict == "healthy"
    compiled = torch.compile(model)  # wraps lazily: names gain '_orig_mod.', nothing compiles
    assert mucore.check(compiled, opt).verdict == "healthy"
    assert mucore.setup_of(compiled) is setup


# -- broken, one per ingredient -----------------------------------------------------------------

def test_no_parametrize_call():
    model = ToyMLP(WIDTH)
    d = mucore.check(model, torch.optim.Adam(model.parameters()))
    assert d.verdict == "problems" and "metadata" in _fails(d)
    assert "mucore.parametrize" in _fails(d)["metadata"]
    assert d.finding("optimizer").status == "warn"  # nothing to compare its groups with


class PlainHead(nn.Module):
    """A user's MLP whose head is a plain nn.Linear."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(D_IN, width), nn.ReLU(), nn.Linear(width, width))
        self.head = nn.Linear(width, N_OUT)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.relu(self.body(x)))


def test_plain_linear_readout():
    d = mucore.check(PlainHead(WIDTH))
    fixes = _fails(d)
    assert "readout" in fixes and "'head'" in fixes["readout"] and "mucore.Readout" in fixes[
        "readout"]
    # With metadata (SP's, which needs no multiplier) a plain head is fine: SP stays SP.
    model, setup = _setup(PlainHead, "sp")
    assert mucore.check(model).verdict == "healthy"
    # The same tensors under µP's table (built without parametrize, which refuses the head).
    mup = mucore.MuSetup(setup.info, mucore.MUP, setup.hparams, setup.base_shapes)
    d = mucore.check(model, setup=mup)
    assert "readout" in _fails(d) and "'head'" in d.finding("readout").message


def test_plain_adam_over_all_parameters():
    model, _ = _setup()
    d = mucore.check(model, torch.optim.Adam(model.parameters(), lr=1e-2))
    assert _fails(d).keys() == {"optimizer"}
    f = d.finding("optimizer")
    assert "model.parameters()" in f.message and "mucore.build_optimizer" in f.fix
    assert f.evidence["param"] == "hid.weight" and f.evidence["expected_ratio"] == 0.25


def test_sgd_groups_without_the_sgd_multipliers():
    model, setup = _setup()
    adam_groups = mucore.param_groups(model, setup, "adam", 0.1)  # Adam's rules, SGD optimizer
    d = mucore.check(model, torch.optim.SGD(adam_groups, lr=0.1))
    assert "optimizer" in _fails(d) and "(sgd)" in d.finding("optimizer").message


class OneLR(torch.optim.lr_scheduler.LRScheduler):
    """Sets every group's LR to one value from step 2 on (absolute, not relative)."""

    def get_lr(self) -> list[float]:
        if self.last_epoch < 2:
            return [g["lr"] for g in self.optimizer.param_groups]
        return [1e-3 for _ in self.optimizer.param_groups]


def test_schedulers_that_set_absolute_lrs():
    model, setup = _setup()
    opt = mucore.build_optimizer(model, setup, "adam", 1e-2)
    d = mucore.check(model, opt, OneLR(opt))
    assert _fails(d).keys() == {"lr_schedule"} and "relative_schedule" in _fails(d)["lr_schedule"]
    assert opt.param_groups[0]["lr"] == 1e-2 * opt.param_groups[0]["lr_mult"]  # untouched
    # OneCycleLR with one max_lr overwrites the groups as it is built.
    opt = mucore.build_optimizer(model, setup, "adam", 1e-2)
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=10)
    d = mucore.check(model, opt, one_cycle)
    assert "lr_schedule" in _fails(d) and "overwritten" in d.finding("lr_schedule").message
    # A relative schedule keeps the ratios.
    opt = mucore.build_optimizer(model, setup, "adam", 1e-2)
    step = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    assert mucore.check(model, opt, step).verdict == "healthy"


def test_weight_decay_coupled_to_the_group_lr():
    model, setup = _setup()
    groups = mucore.param_groups(model, setup, "adamw", 1e-2)
    for g in groups:
        g["weight_decay"] = 0.1  # one wd for all: hidden groups (lr / m) decay m times slower
    d = mucore.check(model, torch.optim.AdamW(groups, lr=1e-2))
    assert _fails(d).keys() == {"weight_decay"}
    assert "wd_mode" in _fails(d)["weight_decay"]
    assert d.finding("weight_decay").evidence["ratio"] == pytest.approx(0.25)
    for mode in ("coupled", "independent"):
        opt = mucore.build_optimizer(model, setup, "adamw", 1e-2, weight_decay=0.1, wd_mode=mode)
        assert mucore.check(model, opt).finding("weight_decay").status == "pass"


def test_fixed_and_inconsistent_adam_eps():
    model, setup = _setup()
    fixed = mucore.check(model, mucore.build_optimizer(model, setup, "adam", 1e-2))
    assert fixed.finding("eps").status == "warn" and "scale_eps=True" in fixed.finding("eps").fix
    groups = mucore.param_groups(model, setup, "adam", 1e-2)
    for i, g in enumerate(groups):
        g["eps"] = 1e-8 * (i + 1)  # differs between groups, but not by the table's divisor
    d = mucore.check(model, torch.optim.Adam(groups))
    assert _fails(d).keys() == {"eps"}


class SharedHead(nn.Module):
    """A tied LM written the common way: the head's weight *is* the embedding's."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, width)
        self.hid = nn.Linear(width, width)
        self.head = nn.Linear(width, VOCAB, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, idx: Tensor) -> Tensor:
        return self.head(torch.relu(self.hid(self.emb(idx))))


class TiedLM(nn.Module):
    """The same model, tied the mucore way."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, width)
        self.hid = nn.Linear(width, width)
        self.head = mucore.TiedReadout(self.emb)

    def forward(self, idx: Tensor) -> Tensor:
        return self.head(torch.relu(self.hid(self.emb(idx))))


def test_tied_weights_unhandled_and_handled():
    d = mucore.check(SharedHead(WIDTH))
    assert "tied" in _fails(d) and "TiedReadout" in _fails(d)["tied"]
    assert d.finding("tied").evidence["shared"] == [["emb.weight", "head.weight"]]
    model, setup = _setup(TiedLM)
    d = mucore.check(model, mucore.build_optimizer(model, setup, "adam", 1e-2, scale_eps=True))
    assert d.verdict == "healthy" and "TiedReadout" in d.finding("tied").message


def test_a_wrapper_that_renames_parameters():
    model, setup = _setup()

    class Wrapper(nn.Module):  # what DDP does to names
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

    d = mucore.check(Wrapper(model), setup=setup)
    assert "metadata" in _fails(d) and "DDP" in d.finding("metadata").message


class MHAModel(nn.Module):
    """nn.MultiheadAttention with fixed heads: its head dim grows, its scale stays 1/sqrt(d)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, width)
        self.attn = nn.MultiheadAttention(width, num_heads=2, batch_first=True)
        self.readout = mucore.Readout(width, VOCAB)

    def forward(self, idx: Tensor) -> Tensor:
        x = self.emb(idx)
        return self.readout(self.attn(x, x, x)[0])


class FixedDimMHAModel(MHAModel):
    """nn.MultiheadAttention adding heads of a fixed dim (16) as width grows: µP-correct."""

    def __init__(self, width: int) -> None:
        super().__init__(width)
        self.attn = nn.MultiheadAttention(width, num_heads=width // 16, batch_first=True)


def test_attention_that_cannot_take_the_mup_scale():
    model, setup = _setup(MHAModel)
    f = mucore.check(model).finding("attention")
    # Its head dim grows (the two builds show it) and it cannot take 1/d_head: a failure.
    assert f.status == "fail" and f.evidence["module"] == "attn"
    assert (f.evidence["base_head_dim"], f.evidence["head_dim"]) == (BASE // 2, WIDTH // 2)
    assert "head dim fixed" in f.fix and "mucore.attention_scale" in f.fix
    # SP keeps 1/sqrt(d_head) on purpose; a fixed head dim is µP-correct under µP.
    sp = MHAModel(WIDTH)
    mucore.parametrize(sp, setup.base_shapes, "sp", seed=0)
    assert mucore.check(sp).finding("attention").status == "pass"
    fixed, _ = _setup(FixedDimMHAModel)
    assert mucore.check(fixed).finding("attention").status == "pass"
    model, setup = _setup(ToyTransformer)
    assert mucore.check(model).finding("attention").evidence["configured"] == ["attn"]


def test_stale_multiplier_after_a_hand_edit():
    model, setup = _setup()
    model.readout.forward_mult = 1.0  # SP's readout rule (alpha_out), not alpha_out / m
    d = mucore.check(model)
    assert _fails(d).keys() == {"multipliers"}
    assert d.finding("multipliers").evidence["stale"][0] == {
        "module": "readout", "attribute": "forward_mult", "has": 1.0, "expected": 0.25}
    assert model.readout.forward_mult == 1.0  # the check restores what it re-computed


def test_the_model_trains_unchanged_after_a_check():
    model, setup = _setup()
    before = model(mlp_batch(4)[0])
    mucore.check(model, mucore.build_optimizer(model, setup, "adam", 1e-2))
    assert torch.equal(model(mlp_batch(4)[0]), before)


def test_mucore_check_stays_callable_after_importing_the_submodule():
    import mucore.check as check_module

    model, _ = _setup()
    assert check_module(model).verdict == "healthy"
    assert mucore.check(model).verdict == "healthy"


def test_the_scheduler_check_shares_parameters_and_optimizer_state():
    model, setup = _setup()
    opt = mucore.build_optimizer(model, setup, "adam", 1e-2)
    model(mlp_batch(4)[0]).sum().backward()
    opt.step()  # now the optimizer has state (exp_avg, exp_avg_sq)
    sched = mucore.relative_schedule(opt, mucore.warmup_cosine(2, 10))
    state = {id(t) for s in opt.state.values() for t in s.values()}
    twin = _stepped_copy(model, opt, sched)
    assert twin is not None and twin is not opt
    assert {id(t) for s in twin.state.values() for t in s.values()} == state
    assert {id(p) for g in twin.param_groups for p in g["params"]} == {
        id(p) for p in model.parameters()}
    assert twin.param_groups[0]["lr"] != opt.param_groups[0]["lr"]  # only the copy stepped


def test_a_scheduler_that_cannot_step_bare_is_a_warning_not_a_failure():
    model, setup = _setup()
    opt = mucore.build_optimizer(model, setup, "adam", 1e-2)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)  # step() needs a metric
    f = mucore.check(model, opt, plateau).finding("lr_schedule")
    assert f.status == "warn" and "ReduceLROnPlateau" in f.message
