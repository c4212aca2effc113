"""The arctan spike: Heaviside forward (strict), eq. 9 backward, same as snnTorch's atan."""

import math

import pytest
import torch
from snntorch import surrogate

from femsnn.snn.surrogate import spike, surrogate_derivative


def test_forward_is_strict_heaviside_in_input_dtype():
    x = torch.tensor([-1.0, -1e-300, 0.0, 1e-300, 2.0], dtype=torch.float64)
    s = spike(x)
    assert s.dtype == torch.float64
    assert s.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("slope", [2.0, 0.5, 7.0])
def test_backward_equals_arctan_derivative(slope):
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(41, dtype=torch.float64)
    (spike(x, slope) * weights).sum().backward()
    expected = weights * (slope / 2) / (1 + (math.pi * slope / 2 * x.detach()) ** 2)
    torch.testing.assert_close(x.grad, expected, rtol=1e-14, atol=0)


def test_default_slope_is_the_papers_derivative():
    x = torch.linspace(-1, 1, 11, dtype=torch.float64)
    torch.testing.assert_close(surrogate_derivative(x), 1 / (1 + (math.pi * x) ** 2), rtol=1e-14, atol=0)


def test_matches_snntorch_atan():
    x = torch.randn(100, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    spike(x, 3.0).sum().backward()
    surrogate.atan(alpha=3.0)(x_ref).sum().backward()
    assert torch.equal(spike(x.detach(), 3.0), surrogate.atan(alpha=3.0)(x_ref.detach()).double())
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-14, atol=0)


@pytest.mark.parametrize("slope", [0.0, -1.0])
def test_non_positive_slope_is_rejected(slope):
    with pytest.raises(ValueError, match="slope"):
        spike(torch.zeros(3), slope)
