"""Shared helpers of the material tests: central-difference tangents and a committed state after plastic loading."""

from __future__ import annotations

import numpy as np

from femsnn.materials import Material, drive
from femsnn.materials.base import History


def central_difference_tangent(material: Material, strain: np.ndarray, history: History, h: float) -> np.ndarray:
    """d stress / d strain (N, n, n) by central differences of width h around strain, from the same history."""
    n_points, n = strain.shape
    out = np.empty((n_points, n, n))
    for j in range(n):
        step = np.zeros(n)
        step[j] = h
        plus = material.update(strain + step, history, tangent=False).stress
        minus = material.update(strain - step, history, tangent=False).stress
        out[:, :, j] = (plus - minus) / (2.0 * h)
    return out


def relative_error(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per-point Frobenius relative error of (N, ...) arrays."""
    diff = (actual - expected).reshape(len(actual), -1)
    return np.linalg.norm(diff, axis=1) / np.linalg.norm(expected.reshape(len(expected), -1), axis=1)


def loaded_state(material: Material, n_points: int, peak: float, seed: int) -> tuple[np.ndarray, History]:
    """Strain and committed history after driving random proportional paths out to |e| ~ peak and partly back."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(n_points, material.size))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    ramp = np.concatenate([np.linspace(0.0, 1.0, 6)[1:], [0.8, 0.9]])
    paths = peak * ramp[None, :, None] * direction[:, None, :]
    result = drive(material, paths)
    return paths[:, -1], {k: v[:, -1] for k, v in result.history.items()}
