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
