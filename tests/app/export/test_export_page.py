"""The Export page keeps the user's choices while they visit other pages (AppTest)."""

from __future__ import annotations

from tests.app.test_pages import finished_sweep  # noqa: F401 - the shared trained sweep


def test_target_width_and_export_anyway_survive_a_visit_to_another_page(
        open_page, finished_sweep, monkeypatch):  # noqa: F811
    db, sweep_id = finished_sweep
    monkeypatch.setenv("MUTRANSFER_DB_PATH", str(db))
    at = open_page("views/export.py", current_sweep_id=sweep_id)
    picker = at.selectbox(key="export_target")
    # The default: twice the widest trained width (512 in the quick preset), within 8x.
    assert picker.value == 1024 and max(picker.options, key=lambda o: int(o.split()[0].replace(",", ""))).startswith("8,192")
    picker.set_value(2048).run()
    forced = any(c.key == "export_force" for c in at.checkbox)
    if forced:  # a tiny sweep may not confirm: tick "Export anyway"
        assert any('tick "Export anyway" below' in w.value for w in at.warning)
        at.checkbox(key="export_force").check().run()
        assert not any(w.value.startswith("No bundle yet") for w in at.warning)
    assert any(h.value == "Bundle preview" for h in at.subheader)
    at.switch_page("views/runs.py").run()
    at.switch_page("views/export.py").run()
    assert not at.exception
    assert at.selectbox(key="export_target").value == 2048
    if forced:
        assert at.checkbox(key="export_force").value
    assert any(h.value == "Bundle preview" for h in at.subheader)
    assert any("at width 2,048" in m.value for m in at.markdown)  # the cost before launch


def test_a_batch_ladder_exports_at_a_target_batch_with_the_rule_picked(open_page, tmp_path,
                                                                       monkeypatch):
    """Swept under sqrt, the optimum still rises 0.6 per batch doubling: at batch 32 the
    sweep's own rule is refused (its verdict is not confirmed) and `fitted` exports."""
    import json

    from tests.experiments.bundle.test_bundle_batch_horizon import SPEC, make_store

    spec = {**SPEC, "horizons": None, "base_horizon": None, "widths": [32], "base_width": 32}
    db, sweep_id = make_store(tmp_path, spec, batch_drift=0.6)
    monkeypatch.setenv("MUTRANSFER_DB_PATH", str(db))
    at = open_page("views/export.py", current_sweep_id=int(sweep_id))
    assert at.selectbox(key="export_target_batch").value == 8  # the base
    at.selectbox(key="export_target_batch").set_value(32).run()
    assert any("batch size transfer verdict is not confirmed" in w.value for w in at.warning)
    at.selectbox(key="export_rule_batch").set_value("fitted").run()
    assert not at.exception and not any(w.value.startswith("No bundle yet") for w in at.warning)
    body = json.loads(at.json[0].proto.body)
    assert body["target_batch_size"] == 32 and body["scaling"]["batch"]["chosen"] == "fitted"
    assert body["scaling"]["batch"]["lr_exponent"] > 0.9
    said = " ".join(m.value for m in at.markdown)
    assert "The sweep trained one width" in said
    assert "Batch size verdict: **not confirmed**; LR moved by the exponent the ladder " \
           "measured (k^+1." in said and "at k = 4." in said, said
