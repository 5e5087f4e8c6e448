"""Reset schemes as pure functions: what each starts the pruned network from."""

from __future__ import annotations

import pytest
import torch

from prunetui import schemes


def state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((3,), value), "b": torch.full((1,), value)}


THETA0, TRAINED, AT_K, FRESH = state(0.0), state(1.0), state(2.0), state(3.0)


def start(scheme: str) -> dict[str, torch.Tensor]:
    return schemes.start_weights(scheme, theta0=THETA0, trained=TRAINED,
                                 rewind_points={100: AT_K}, fresh=lambda: state(3.0))


@pytest.mark.parametrize("scheme, expected", [
    ("keep", TRAINED), ("rewind", THETA0), ("random-mask", THETA0), ("rewind:100", AT_K),
    ("reinit", FRESH),
])
def test_scheme_start_weights(scheme, expected):
    out = start(scheme)
    assert out.keys() == expected.keys()
    assert all(torch.equal(out[k], expected[k]) for k in out)


def test_start_weights_are_copies_not_aliases():
    out = start("rewind")
    out["w"].add_(5)
    assert torch.equal(THETA0["w"], torch.zeros(3))


def test_unknown_scheme_raises():
    with pytest.raises(ValueError):
        start("lottery")
