"""Form generation helpers: help texts, defaults and error mapping from pydantic models."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator

from app.widgets import form


class Inner(BaseModel):
    """An inner block.

    Attributes:
        depth: how many layers; a longer
            description that wraps.
        act: the nonlinearity.
    """

    depth: int = Field(default=2, ge=1, le=8)
    act: Literal["relu", "tanh"] = "relu"


class Outer(BaseModel):
    name: str = Field(description="what to call it")
    inner: Inner = Field(default_factory=Inner)
    widths: list[int] = Field(default_factory=lambda: [64, 128])
    lr: float | None = None

    @field_validator("widths")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if v != sorted(v):
            raise ValueError("width ladder must increase")
        return v


def test_attribute_docs_join_continuations():
    docs = form.attribute_docs(Inner)
    assert docs["depth"] == "how many layers; a longer description that wraps."
    assert docs["act"] == "the nonlinearity."
    assert form.field_help(Outer, "name") == "what to call it"


def test_defaults_and_simple_fields():
    assert form.default_of(Inner, "depth") == 2
    assert form.default_of(Outer, "widths") == [64, 128]
    assert form.default_of(Outer, "name") is None
    assert form.is_simple(Inner, "act") and form.is_simple(Outer, "lr")
    assert not form.is_simple(Outer, "widths") and not form.is_simple(Outer, "inner")


def test_errors_by_field_and_pop():
    with pytest.raises(ValidationError) as info:
        Outer.model_validate({"name": "x", "inner": {"depth": 0}, "widths": [128, 64]})
    errors = form.errors_by_field(info.value)
    assert set(errors) == {"inner.depth", "widths"}
    assert errors["widths"] == ["width ladder must increase"]
    assert form.pop_errors(errors, "inner") and "inner.depth" not in errors
    assert form.pop_errors(errors, "missing") == []
