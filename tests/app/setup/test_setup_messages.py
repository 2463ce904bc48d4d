"""Setup's messages in the form's words, beside their field and next to the Launch button."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.setup import messages, presets
from experiments.spec.sweep import SweepSpec

LAUNCH = "FormSubmitter:setup_launch-Launch sweep"


def errors_of(**overrides: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate({**presets.quick_spec_data(), **overrides})
    return messages.errors_by_field(info.value)


def test_pydantic_errors_are_rewritten_in_the_forms_terms():
    # A bad entry of the ladder: which entry, what it is, what to type (no pydantic wording).
    (text,) = errors_of(widths=[64, 128, "abc"])["widths"]
    assert text == ("Entry 3 of width ladder is 'abc', not a whole number: type numbers "
                    "separated by commas, e.g. 64, 128, 256")
    (text,) = errors_of(widths=[64, 128.5])["widths"]
    assert text.startswith("Entry 2 of width ladder is 128.5, not a whole number")
    # The spec's own check: code names become the labels the form shows.
    (text,) = errors_of(lr_grid={"log2_min": -2, "log2_max": -8, "step": 1})["lr_grid"]
    assert "log2 min -2 > log2 max -8" in text and text.startswith("Learning rates: ")
    assert "lr_grid" not in text and "log2_min" not in text
    (text,) = errors_of(steps=0)["steps"]
    assert text == "Steps must be at least 1, got 0: type at least 1"
    (text,) = errors_of(name="")["name"]
    assert text.startswith("Sweep name is empty")
    (text,) = errors_of(parametrizations=[])["parametrizations"]
    assert "SP and µP" in text and "[sp, mup]" not in text
    (text,) = errors_of(base_width=100)["base_width"]
    assert text.startswith("Base width 100 is not in width ladder")


def walk(node: Any, parents: tuple[Any, ...] = ()) -> list[tuple[Any, tuple[Any, ...]]]:
    """Every element of an AppTest tree in page order, with its chain of parent blocks."""
    out = [(node, parents)]
    for child in getattr(node, "children", {}).values():
        out += walk(child, (*parents, node))
    return out


def beside(at: Any, key: str, group: str) -> str | None:
    """The first error drawn after widget `key` in page order, provided no widget of another
    field (a key outside `group`) comes between them: its error slot."""
    nodes = [n for n, _ in walk(at.main)]
    i = next(i for i, n in enumerate(nodes) if getattr(n, "key", None) == key)
    for node in nodes[i + 1:]:
        if getattr(node, "type", "") == "error":
            return str(node.value)
        other = getattr(node, "key", None)
        if isinstance(other, str) and other.startswith("setup.") and not other.startswith(group):
            return None
    return None


def next_to_launch(at: Any) -> list[str]:
    """Error texts in the column of the Launch button, below its form."""
    nodes = walk(at.main)
    (i, parents) = next((i, p) for i, (n, p) in enumerate(nodes) if getattr(n, "key", None) == LAUNCH)
    column = parents[-2]  # the form's parent
    return [n.value for n, p in nodes[i + 1:] if column in p and getattr(n, "type", "") == "error"]


@pytest.mark.parametrize(("key", "typed", "label_words"), [
    ("setup.widths", "64, 128, abc", "Entry 3 of width ladder is 'abc'"),
    ("setup.lr_grid.log2_min", -2.0, "log2 min -2 > log2 max"),
    ("setup.base_width", 100, "Base width 100 is not in width ladder"),
    ("setup.seeds", "", "Seeds is empty"),
])
def test_each_bad_input_is_named_beside_its_field_and_next_to_launch(
        open_page, db_path, no_runner, key, typed, label_words):
    at = open_page("views/setup.py")
    widget = at.text_input(key=key) if isinstance(typed, str) else at.number_input(key=key)
    widget.set_value(typed).run()
    if key == "setup.lr_grid.log2_min":
        at.number_input(key="setup.lr_grid.log2_max").set_value(-8.0).run()
    group = "setup.lr_grid." if "lr_grid" in key else key
    assert label_words in (beside(at, key, group) or ""), [e.value for e in at.error]
    at.button(key=LAUNCH).click().run()
    launched = next_to_launch(at)
    assert any("Nothing was launched" in m and label_words in m for m in launched), launched
    from experiments.store import Store

    assert Store(db_path).list_sweeps() == [] and no_runner == []
