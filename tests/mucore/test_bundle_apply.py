"""mucore.load_bundle / apply_bundle on their own (torch only): a bundle dict built from mucore
primitives is applied to a wide toy model; the result must equal what `describe` reports, and
edited bundles or mismatched models are refused with the problem named."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from mucore_toys import ToyMLP

import mucore
from mucore.bundle import BUNDLE_KIND, SCHEMA_VERSION, content_hash

BASE, TARGET = 16, 64
LR = 2.0**-7
HP = mucore.HParams(init_std=0.8, output_mult=2.0)
OPT = {"name": "adamw", "betas": [0.9, 0.95], "eps": 1e-8, "momentum": 0.0,
       "weight_decay": 0.1, "wd_mode": "coupled", "scale_eps": False}


def make_bundle(factory=ToyMLP, width: int = TARGET) -> dict[str, Any]:
    """What experiments.bundle.build exports, reduced to the keys mucore reads."""
    shapes = mucore.infer_base_shapes(factory, BASE)
    with torch.device("meta"):
        model = factory(width)
    setup = mucore.parametrize(model, shapes, "mup", HP, reinit=False)
    rows = [dict(r.to_dict(), lr=LR * r.lr_mult) for r in mucore.describe(setup, OPT["name"])]
    bundle = {
        "kind": BUNDLE_KIND,
        "schema_version": SCHEMA_VERSION,
        "parametrization": "mup",
        "rules_version": mucore.MUP.version,
        "base_shapes": shapes.to_dict(),
        "hparams": HP.to_dict(),
        "lr": LR,
        "optimizer": OPT,
        "target_width": width,
        "param_table": rows,
    }
    bundle["content_hash"] = content_hash(bundle)
    return json.loads(json.dumps(bundle))


def test_apply_matches_describe_at_the_target_width(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(make_bundle()))
    bundle = mucore.load_bundle(path)
    model, opt = mucore.apply_bundle(bundle, ToyMLP(TARGET), seed=3)

    # The reference: parametrize a fresh target by hand and ask describe.
    ref_model = ToyMLP(TARGET)
    shapes = mucore.infer_base_shapes(ToyMLP, BASE)
    ref_setup = mucore.parametrize(ref_model, shapes, "mup", HP, seed=3)
    rows = {r.name: r for r in mucore.describe(ref_setup, "adamw")}

    assert isinstance(opt, torch.optim.AdamW)
    seen = set()
    for group in opt.param_groups:
        assert group["betas"] == (0.9, 0.95)
        for name in group["param_names"]:
            seen.add(name)
            assert group["lr"] == pytest.approx(LR * rows[name].lr_mult, rel=1e-12)
    assert seen == set(rows)
    # Hidden weights under µP with Adam: LR / m, m = 64 / 16 = 4.
    assert rows["hid.weight"].lr_mult == pytest.approx(0.25)
    params = dict(model.named_parameters())
    for name, row in rows.items():
        if row.init == "normal":
            # Same seed, same per-name generator: the weights are bit-identical to the reference.
            assert torch.equal(params[name], dict(ref_model.named_parameters())[name])
            assert params[name].std().item() == pytest.approx(row.init_std, rel=0.15)
    # The readout multiplier alpha_out / m is in force.
    assert model.readout.forward_mult == pytest.approx(2.0 / 4)
    # Training works with it.
    x = torch.randn(8, 12, generator=torch.Generator().manual_seed(0))
    loss = model(x).square().mean()
    loss.backward()
    opt.step()
    assert math.isfinite(loss.item())


def test_tampered_bundle_is_refused(tmp_path: Path) -> None:
    bundle = make_bundle()
    bundle["lr"] = bundle["lr"] * 2
    with pytest.raises(mucore.BundleError, match="content hash mismatch: the file was edited "
                                                 "after export; re-export it"):
        mucore.load_bundle(bundle)
    path = tmp_path / "b.json"
    path.write_text("{not json")
    with pytest.raises(mucore.BundleError, match="not readable JSON"):
        mucore.load_bundle(path)
    with pytest.raises(mucore.BundleError, match="is YAML"):
        mucore.load_bundle(tmp_path / "b.yaml")
    with pytest.raises(mucore.BundleError, match="not an HP bundle"):
        mucore.load_bundle({"kind": "something"})


class OtherMLP(ToyMLP):
    """Same family with an extra layer: the names differ."""

    def __init__(self, width: int) -> None:
        super().__init__(width)
        self.extra = torch.nn.Linear(width, width)


class WideHead(ToyMLP):
    """Same names, but the readout's fan_out grows with width (a different role)."""

    def __init__(self, width: int) -> None:
        super().__init__(width)
        self.readout = mucore.Readout(width, width)


def test_mismatched_models_are_refused_with_the_mismatch_named() -> None:
    bundle = make_bundle()
    with pytest.raises(mucore.BundleError, match=r"parameters the bundle lacks: \['extra.weight', "
                                                 r"'extra.bias'\]"):
        mucore.apply_bundle(bundle, OtherMLP(TARGET))
    with pytest.raises(mucore.BundleError, match=r"'hid.weight' has shape \[32, 32\] but \[64, 64\]"
                                                 r".*target width"):
        mucore.apply_bundle(bundle, ToyMLP(32))
    with pytest.raises(mucore.BundleError, match=r"'readout.weight' has shape \[64, 64\] but "
                                                 r"\[5, 64\].*role here hidden, in the bundle "
                                                 r"output"):
        mucore.apply_bundle(bundle, WideHead(TARGET))


def test_rules_version_change_is_refused() -> None:
    bundle = make_bundle()
    bundle["rules_version"] = "mup-old"
    bundle["content_hash"] = content_hash(bundle)
    with pytest.raises(mucore.BundleError, match="exported with rules 'mup-old'"):
        mucore.apply_bundle(bundle, ToyMLP(TARGET))


def rehashed(bundle: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`bundle` with `changes` and a matching content hash (a well-formed, edited bundle)."""
    out = {**bundle, **changes}
    out["content_hash"] = content_hash(out)
    return out


def test_unknown_schema_and_bad_optimizer_settings_are_refused() -> None:
    bundle = make_bundle()
    newer = rehashed(bundle, schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(mucore.BundleError, match=rf"schema_version {SCHEMA_VERSION + 1}; this "
                                                 rf"mucore reads version {SCHEMA_VERSION}"):
        mucore.load_bundle(newer)
    with pytest.raises(mucore.BundleError, match=f"kind must be '{BUNDLE_KIND}'"):
        mucore.load_bundle(rehashed(bundle, kind="hp-bundle"))
    sideways = rehashed(bundle, optimizer={**OPT, "wd_mode": "sideways"})
    with pytest.raises(mucore.BundleError, match="bundle optimizer settings: wd_mode"):
        mucore.apply_bundle(sideways, ToyMLP(TARGET))
