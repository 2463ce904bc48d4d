"""The doctor's dynamic checks and ablation: a library of deliberately
broken setups, one per µP ingredient, each failing the right dynamic check with the ablation
naming the right culprit and fix; the healthy µP toys pass every check and SP is reported as
SP (warnings, no ablation). The broken setups are µP's own table with one ingredient switched
(`mucore.Parametrization` is data), or a user's plain nn.Linear head."""

from __future__ import annotations

from dataclasses import replace

import pytest
from doctor_toys import lm_trial, mlp_trial

import mucore
from experiments.doctor.ablation import with_rule
from experiments.doctor.diagnose import dynamic_findings
from experiments.doctor.dynamic import run_trial
from mucore.parametrizations import MUP, InitRule, OptimizerFamily
from mucore.roles import Role

# µP with one ingredient at a value users get wrong.
READOUT_MULT_1 = with_rule(MUP, Role.OUTPUT, forward_exp=0.0)  # no alpha_out / m
HIDDEN_LR_UNSCALED = with_rule(  # Adam LR of hidden weights not divided by m
    MUP, Role.HIDDEN, lr_exp={**MUP.rules[Role.HIDDEN].lr_exp, OptimizerFamily.ADAM: 0.0})
HIDDEN_FIXED_STD = with_rule(MUP, Role.HIDDEN, init=InitRule.BASE_FAN_IN)  # GPT-2's 0.02
SQRT_D_ATTENTION = replace(MUP, attention_inverse=False)  # 1/sqrt(d_head), d_head grows
SQRT_D_EMBEDDING = with_rule(MUP, Role.INPUT, forward_exp=0.5)  # embeddings x sqrt(d_model)


def _by_check(findings: list[mucore.Finding]) -> dict[str, mucore.Finding]:
    return {f.check: f for f in findings}


@pytest.mark.parametrize("trial", [mlp_trial, lm_trial], ids=["mlp", "lm"])
def test_healthy_mup_passes_every_dynamic_check_with_its_own_readout_init(trial):
    t = trial()
    assert not t.hparams.zero_readout  # the readout keeps a non-zero init: output shrinks at t=1
    checks = _by_check(dynamic_findings(t, "mup"))
    assert [f.status for f in checks.values()] == ["pass"] * 5, checks
    # No ablation when healthy; parametrize kept every vector-like init; nothing is dead.
    assert set(checks) == {"coord_check", "update_size", "update_norm", "init_kept", "dead"}
    judged = {j["param"]: j for j in checks["update_size"].evidence["judgements"]}
    hidden = [j for j in judged.values() if j["role"] == "hidden"]
    assert hidden and all(abs(j["slope"] + 0.5) <= 0.25 for j in hidden)  # ~1/sqrt(width)


def test_sp_is_reported_as_sp_not_as_broken_mup():
    checks = _by_check(dynamic_findings(mlp_trial("sp"), "sp"))
    assert checks["coord_check"].status == "warn" and "SP" in checks["coord_check"].message
    assert checks["update_size"].status == "warn"
    assert "ablation" not in checks


# name -> (trial, the dynamic check that must fail, the culprit's words, the fix's words)
BROKEN = {
    "plain_linear_readout": (lambda: mlp_trial(READOUT_MULT_1, plain_head=True), "coord_check",
                             "`head` is not a readout: logits grow by x", "mucore.Readout"),
    "readout_multiplier_held_at_1": (lambda: mlp_trial(READOUT_MULT_1), "coord_check",
                                     "logits grow by x", "mucore.Readout"),
    "unscaled_hidden_lr": (lambda: mlp_trial(HIDDEN_LR_UNSCALED), "update_size",
                           "hidden weights train with an LR that is not scaled",
                           "hidden Adam LR = lr / m"),
    "sp_init_on_hidden_weights": (lambda: mlp_trial(HIDDEN_FIXED_STD), "update_size",
                                  "width-independent std", "sigma/sqrt(fan_in)"),
    "sqrt_d_attention": (lambda: lm_trial(SQRT_D_ATTENTION), "coord_check",
                         "scaled by 1/sqrt(d_head) while d_head grows: attention scores",
                         "mucore.attention_scale"),
    "width_dependent_input_multiplier": (lambda: lm_trial(SQRT_D_EMBEDDING), "coord_check",
                                         "input multiplier changes with width",
                                         "mucore.InputScale"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_ingredient_fails_and_the_ablation_names_it(name):
    make, check, culprit, fix = BROKEN[name]
    checks = _by_check(dynamic_findings(make(), "mup"))
    assert checks[check].status == "fail", checks[check].message
    ablation = checks["ablation"]
    assert ablation.status == "fail"
    assert culprit in ablation.message and fix in ablation.fix, ablation.message
    restored = [t["key"] for t in ablation.evidence["tried"] if t["healthy"]]
    assert len(restored) == 1  # exactly one ingredient was switched, and it restored µP


def test_output_growth_that_appears_only_after_the_first_step_is_caught():
    """A zero-initialised plain head: the output is exactly 0 at every width at step 1, so a
    check at init sees nothing; the logits grow once the head has learned."""
    trial = mlp_trial(READOUT_MULT_1, plain_head=True,
                      hparams=mucore.HParams(zero_readout=True))
    coord = run_trial(trial).coord
    head = {s.step: s.slope for s in coord.slopes if s.module == "head"}
    assert head[1] == 0.0 and max(head.values()) > 0.5
    assert "head" in coord.offenders
    ablation = _by_check(dynamic_findings(trial, "mup"))["ablation"]
    assert "`head` is not a readout" in ablation.message


def test_update_sizes_judge_against_mup_not_against_zero():
    """Unscaled hidden LR: the activation verdict may see growth, but the update check alone
    names the hidden weights, whose slope sits near +1/2 where µP prescribes -1/2."""
    result = run_trial(mlp_trial(HIDDEN_LR_UNSCALED))
    failed = {j.param: j for j in result.updates.failed}
    assert {"fc1.weight", "fc2.weight"} <= set(failed)
    assert all(failed[p].slope > 0 and failed[p].expected == -0.5
               for p in ("fc1.weight", "fc2.weight"))


def test_a_cause_no_ingredient_explains_is_a_warning_pointing_at_the_models_code():
    """Every table ingredient is µP's, yet a hand-written x sqrt(width) constant makes the
    features grow: the checks fail, and the ablation says no switch applies."""
    checks = _by_check(dynamic_findings(mlp_trial(width_constant=True), "mup"))
    assert checks["coord_check"].status == "fail"
    assert checks["ablation"].status == "warn" and checks["ablation"].evidence["tried"] == []
    assert "the cause is in the model's own code" in checks["ablation"].message
