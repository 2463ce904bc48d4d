"""The Coord check page over depth and the µP inspector's depth multipliers: a depth check run
end to end from the page, a bad ladder refused beside the form with nothing started, and the
inspector's branch and depth multipliers under CompleteP."""

from __future__ import annotations

import time

SUBMIT = "FormSubmitter:coord_form-Run coordinate check"


def _depth_form(at, model: str, depths: str, steps: int = 2):
    at.selectbox(key="coord_model").set_value(model).run()
    at.radio(key="coord_axis").set_value("depth").run()
    at.text_input(key="coord_depths").set_value(depths)
    at.selectbox(key="coord_depth_width").set_value(32)
    at.number_input(key="coord_steps").set_value(steps)
    return at.button(key=SUBMIT).click().run()


def test_a_depth_check_runs_from_the_page_and_charts_against_depth(open_page):
    at = open_page("views/coord_check.py")
    assert at.radio(key="coord_param_width").value == "mup"
    at = _depth_form(at, "mlp", "2,4,8", steps=3)  # the residual mlp: the cheapest depth
    assert at.radio(key="coord_param_depth").value == "completep"  # depth tables lead
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (at.success or at.error):
        time.sleep(0.5)
        at.run()
    assert not at.error, [e.value for e in at.error]
    assert "CompleteP: pass" in at.success[0].value and "blocks are added" in at.success[0].value
    assert any("vs log2 depth" in s.value for s in at.subheader)
    assert at.dataframe[0].value.index.str.startswith("blocks.last").any()


def test_a_bad_depth_ladder_is_refused_beside_the_form_and_starts_nothing(open_page):
    at = _depth_form(open_page("views/coord_check.py"), "gpt", "4,2")
    assert any("--depths" in e.value and "increase" in e.value for e in at.error)
    assert "coord_key" not in at.session_state
    at = _depth_form(open_page("views/coord_check.py"), "cnn", "2,4")
    assert any("no residual blocks" in e.value for e in at.error)
    assert "coord_key" not in at.session_state


def _wait_table(at):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not at.dataframe and not at.error:
        time.sleep(0.5)
        at.run()
    assert not at.error, [e.value for e in at.error]
    return at.dataframe[0].value


def test_the_inspector_shows_depth_multipliers_under_completep(open_page):
    # Chosen before the first run, so only this pair of describe jobs starts (default depths 2 -> 16).
    at = open_page("views/inspector.py", insp_model="gpt", insp_param="completep", insp_base=64,
                   insp_target=256)
    table = _wait_table(at).set_index("name")
    block, outside = table.loc["blocks.15.attn.qkv.weight"], table.loc["tok_emb.weight"]
    # m_L = 16 / 2 = 8: branch x 1/8 (alpha = 1); hidden Adam LR / m_N only (m_L^0), m_N = 4.
    assert block["depth_mult"] == 8 and block["branch_mult"] == 0.125
    assert block["lr_mult"] == 0.25
    assert outside[["depth_mult", "branch_mult"]].isna().all()  # outside the blocks: no depth
    assert any("depth 2 → 16" in s.value for s in at.subheader)
