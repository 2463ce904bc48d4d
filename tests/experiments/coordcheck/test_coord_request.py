"""The dashboard's coordinate-check request: `Service.coord_check_command`
turns a width or depth request into the CLI's arguments, which the CLI's own parser accepts,
and refuses a bad depth request with the field named before any process starts."""

from __future__ import annotations

import pytest

from experiments.cli import build_parser
from experiments.service import CoordCheckRequest, Service, ServiceError


@pytest.fixture
def service(tmp_path) -> Service:
    return Service(tmp_path / "store.duckdb")


def test_a_depth_request_becomes_the_clis_depth_flags(service):
    args = service.coord_check_command(CoordCheckRequest(
        model="mlp", param="completep", axis="depth", depths=(2, 4, 8), width=32, residual=True,
        steps=3))
    parsed = build_parser().parse_args([*args, "--json", "x.json"])
    assert parsed.depths == "2,4,8" and parsed.width == 32 and parsed.param == "completep"
    assert "residual=true" in parsed.option and parsed.steps == 3


def test_a_width_request_keeps_the_width_ladder(service):
    args = service.coord_check_command(CoordCheckRequest(model="gpt", param="mup",
                                                         widths=(64, 128)))
    parsed = build_parser().parse_args(args)
    assert parsed.widths == "64,128" and parsed.depths is None


@pytest.mark.parametrize(
    ("request_fields", "named"),
    [
        ({"model": "gpt", "depths": (4, 2)}, "--depths"),
        ({"model": "gpt", "depths": (4,)}, "--depths"),
        ({"model": "gpt", "depths": (0, 2)}, "--depths"),
        ({"model": "cnn"}, "--model"),
        ({"model": "tiny_mixer"}, "--model"),
        ({"model": "mlp", "residual": False}, "residual=true"),
        ({"model": "gpt", "optimizer": "sgd"}, "--optimizer"),
        ({"model": "gpt", "width": 0}, "--width"),
        ({"model": "gpt", "param": "ntk"}, "--param"),
    ],
)
def test_a_bad_depth_request_is_refused_naming_the_field(service, request_fields, named):
    fields = {"param": "completep", "axis": "depth", **request_fields}
    with pytest.raises(ServiceError, match=named):
        service.coord_check_command(CoordCheckRequest(**fields))


def test_sgd_stays_allowed_for_a_depth_check_under_mup(service):
    """The refusal is the depth tables' (Adam rules only), not the depth axis's."""
    args = service.coord_check_command(CoordCheckRequest(model="gpt", param="mup", axis="depth",
                                                         optimizer="sgd"))
    assert args[args.index("--optimizer") + 1] == "sgd"
