"""The Setup page with Muon and Lion (real app, AppTest): the optimizer select offers them from
the registry, and an uploaded Muon spec (match_rms_adamw) shows its settings and launches
exactly the uploaded spec; the inspector shows Muon's rows (which optimizer, which LR)."""

from __future__ import annotations

import yaml
from test_coord_depth_page import _wait_table
from test_setup_upload import LAUNCH, UPLOADED, as_the_browser_sends, upload, widget_values

from experiments.spec.sweep import SweepSpec
from experiments.store import Store

MUON = {**UPLOADED, "name": "uploaded-muon", "parametrizations": ["mup"],
        "optimizer": {"name": "muon", "adjust_lr_fn": "match_rms_adamw"}}


def test_setup_offers_muon_and_lion_and_launches_an_uploaded_muon_spec(open_page, db_path,
                                                                        no_runner):
    at = open_page("views/setup.py")
    (box,) = [w for w in at.selectbox if w.key == "setup.optimizer.name"]
    assert {"muon", "lion"} <= set(box.options)
    held = widget_values(at)
    upload(at, yaml.safe_dump(MUON))
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = widget_values(at)
    assert shown["setup.optimizer.name"] == "muon"
    assert shown["setup.optimizer.adjust_lr_fn"] == "match_rms_adamw"
    as_the_browser_sends(at, held)
    at.button(key=LAUNCH).click().run()
    assert not at.exception
    (sweep,) = Store(db_path).list_sweeps()
    record = Store(db_path).get_sweep(sweep.id)
    assert record is not None
    assert SweepSpec.model_validate(record.spec) == SweepSpec.model_validate(MUON)


def test_the_inspector_shows_which_optimizer_trains_each_parameter_under_muon(open_page):
    at = open_page("views/inspector.py", insp_model="mlp", insp_param="mup",
                   insp_optimizer="muon", insp_muon_adjust="match_rms_adamw", insp_base=64,
                   insp_target=256)
    table = _wait_table(at).set_index("name")
    assert table.loc["hidden.0.weight", "update"] == "muon"
    assert table.loc["hidden.0.weight", "lr_mult"] == 0.5  # m = 4: / sqrt(m)
    assert table.loc["readout.weight", "update"] == "adamw"
