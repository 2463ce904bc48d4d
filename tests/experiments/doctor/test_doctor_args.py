"""The doctor request takes any registered parametrization, not a hard-coded pair."""

from __future__ import annotations

import pytest

from experiments.doctor.launch import doctor_args
from experiments.errors import UserError
from mucore.parametrizations import parametrization_names


def test_every_registered_parametrization_can_be_diagnosed() -> None:
    for name in parametrization_names():
        args = doctor_args(["--model", "mlp"], name, [32, 64])
        assert args[args.index("--param") + 1] == name


def test_an_unknown_parametrization_is_refused_with_the_choices() -> None:
    with pytest.raises(UserError, match="parametrization must be one of .*mup.*got 'mupp'"):
        doctor_args(["--model", "mlp"], "mupp", [32, 64])
