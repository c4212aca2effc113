"""Step-input validation shared by the regressors."""

import pytest
import torch

from femsnn.snn.base import check_step_input

SPEC = {"layer0.membrane": (3,), "decoder.membrane1": (2,)}


def state(batch):
    return {k: torch.zeros(batch, *s) for k, s in SPEC.items()}


def test_valid_input_passes():
    check_step_input(torch.zeros(4, 2), state(4), 2, SPEC)


@pytest.mark.parametrize(
    "x, st, match",
    [
        (torch.zeros(4, 3), state(4), r"input must have shape \(B, 2\)"),
        (torch.zeros(4), state(4), "input must have shape"),
        (torch.zeros(4, 2), state(1), "layer0.membrane' must have shape"),  # would broadcast silently
        (torch.zeros(4, 2), {"layer0.membrane": torch.zeros(4, 3)}, "missing"),
        (torch.zeros(4, 2), state(4) | {"extra": torch.zeros(4)}, "unexpected"),
    ],
)
def test_bad_input_is_named(x, st, match):
    with pytest.raises(ValueError, match=match):
        check_step_input(x, st, 2, SPEC)
