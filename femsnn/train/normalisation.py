"""Standardisation of network inputs and stress targets, fitted on the training split only.

Networks work in standardised units: x_std = (x - input_mean) / input_std and
y_std = (y - target_mean) / target_std. Two fits:

* ``"component"`` (default): one mean/std per input feature and per stress component;
* ``"scalar"``: one mean/std over all input entries and one over all stress entries, as the
  authors coded it (``torch.std_mean`` of the whole training tensor).

Stds are the unbiased estimate (ddof = 1, like ``torch.std_mean``). A constant component (std = 0,
e.g. the zero e_zz of plane strain) gets std = 1, so it maps to x - mean instead of NaN. The four
vectors are plain arrays so that a consumer (the spiking material) can apply them without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

NormalisationMode = Literal["component", "scalar"]


@dataclass(frozen=True)
class Normalisation:
    """Means and stds (float64 vectors) of the inputs (n_inputs,) and stress targets (n_outputs,)."""

    input_mean: np.ndarray
    input_std: np.ndarray
    target_mean: np.ndarray
    target_std: np.ndarray
    mode: NormalisationMode = "component"

    @classmethod
    def fit(cls, inputs: np.ndarray, targets: np.ndarray, mode: NormalisationMode = "component") -> Normalisation:
        """Fit on training inputs (P, T, n_in) and targets (P, T, n_out)."""
        if mode not in ("component", "scalar"):
            raise ValueError(f"normalisation mode must be 'component' or 'scalar', got {mode!r}")
        in_mean, in_std = _mean_std(inputs, mode)
        out_mean, out_std = _mean_std(targets, mode)
        return cls(in_mean, in_std, out_mean, out_std, mode)

    @property
    def n_inputs(self) -> int:
        return self.input_mean.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.target_mean.shape[0]

    def encode_inputs(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Physical inputs (..., n_inputs) -> standardised."""
        return (x - _like(self.input_mean, x)) / _like(self.input_std, x)

    def decode_inputs(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Standardised inputs (..., n_inputs) -> physical."""
        return x * _like(self.input_std, x) + _like(self.input_mean, x)

    def encode_targets(self, y: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Stress (..., n_outputs) in MPa -> standardised."""
        return (y - _like(self.target_mean, y)) / _like(self.target_std, y)

    def decode_targets(self, y: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Standardised network outputs (..., n_outputs) -> stress in MPa."""
        return y * _like(self.target_std, y) + _like(self.target_mean, y)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The four vectors by name (for files)."""
        return {
            "input_mean": self.input_mean,
            "input_std": self.input_std,
            "target_mean": self.target_mean,
            "target_std": self.target_std,
        }

    @classmethod
    def from_arrays(cls, arrays: dict, mode: NormalisationMode) -> Normalisation:
        """Inverse of to_arrays (arrays or tensors), checking shapes and positivity of the stds."""
        vecs = {k: np.asarray(torch.as_tensor(arrays[k]).cpu(), dtype=np.float64) for k in cls._fields()}
        for name, vec in vecs.items():
            if vec.ndim != 1 or not np.all(np.isfinite(vec)):
                raise ValueError(f"normalisation '{name}' must be a finite vector, got shape {vec.shape}")
        if vecs["input_mean"].shape != vecs["input_std"].shape or vecs["target_mean"].shape != vecs["target_std"].shape:
            raise ValueError("normalisation means and stds differ in length")
        if np.any(vecs["input_std"] <= 0) or np.any(vecs["target_std"] <= 0):
            raise ValueError("normalisation stds must be positive")
        return cls(mode=mode, **vecs)

    @staticmethod
    def _fields() -> tuple[str, ...]:
        return ("input_mean", "input_std", "target_mean", "target_std")


def _mean_std(values: np.ndarray, mode: NormalisationMode) -> tuple[np.ndarray, np.ndarray]:
    """Mean and guarded unbiased std over all but the last axis (component) or over everything (scalar)."""
    arr = np.asarray(values, dtype=np.float64)
    n = arr.shape[-1]
    flat = arr.reshape(-1, n) if mode == "component" else arr.reshape(-1, 1)
    if flat.shape[0] < 2:
        raise ValueError("standardisation needs at least two training values per component")
    mean = flat.mean(axis=0)
    std = flat.std(axis=0, ddof=1)
    scale = np.maximum(np.abs(flat).max(axis=0), 1e-300)
    std = np.where(std <= 1e-12 * scale, 1.0, std)
    if mode == "scalar":
        mean, std = np.full(n, mean[0]), np.full(n, std[0])
    return mean, std


def _like(vec: np.ndarray, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """vec as the same kind (numpy or torch, dtype, device) as x, ready to broadcast."""
    if isinstance(x, torch.Tensor):
        return torch.as_tensor(vec, dtype=x.dtype, device=x.device)
    return vec
