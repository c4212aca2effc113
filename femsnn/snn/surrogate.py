"""The spike nonlinearity with the arctan surrogate gradient (paper eq. 9, snnTorch ``surrogate.atan``).

Forward: the Heaviside step H(x > 0) (strictly greater, so a membrane exactly at threshold is
silent). Backward: the derivative of (1/π) arctan(π α x / 2), i.e. (α/2) / (1 + (π α x / 2)²);
the slope α = 2 gives the paper's 1 / (1 + (π x)²).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

DEFAULT_SLOPE = 2.0


class ArcTanSpike(torch.autograd.Function):
    """Heaviside forward, arctan-derivative backward; spikes keep the input's dtype."""

    @staticmethod
    def forward(ctx, x: Tensor, slope: float) -> Tensor:  # noqa: D102 (torch API)
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_spikes: Tensor) -> tuple[Tensor, None]:  # noqa: D102 (torch API)
        (x,) = ctx.saved_tensors
        return grad_spikes * surrogate_derivative(x, ctx.slope), None


def surrogate_derivative(x: Tensor, slope: float = DEFAULT_SLOPE) -> Tensor:
    """d/dx of (1/π) arctan(π slope x / 2): the gradient the spike passes back."""
    return (slope / 2) / (1 + (math.pi * slope / 2 * x) ** 2)


def spike(x: Tensor, slope: float = DEFAULT_SLOPE) -> Tensor:
    """Spikes H(x > 0) of a shifted membrane x = U - U_thr, differentiable through the arctan surrogate."""
    if not slope > 0:
        raise ValueError(f"surrogate slope must be positive, got {slope}")
    return ArcTanSpike.apply(x, slope)
