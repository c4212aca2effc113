"""Strain-driven material-point driver: probe any material along prescribed strain paths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from femsnn.materials.base import History, Material, MaterialInputError


@dataclass(frozen=True)
class DriveResult:
    """Stress (P, T, n), optional tangent (P, T, n, n) and history {name: (P, T, *shape)} along paths."""

    stress: np.ndarray
    tangent: np.ndarray | None
    history: History


def drive(
    material: Material,
    strain_paths: np.ndarray,
    dt: float | np.ndarray = 1.0,
    *,
    tangent: bool = False,
    keep_history: bool = True,
) -> DriveResult:
    """Run (P paths, T steps, n components) strain histories through a material from rest.

    Step t takes every path from strain[:, t-1] (zero strain, initial history before t = 0)
    to strain[:, t]; dt is a scalar or one value per step. All P paths are one batch per step.
    """
    paths = np.asarray(strain_paths)
    if paths.ndim != 3 or paths.shape[2] != material.size:
        raise MaterialInputError(
            f"strain_paths must have shape (paths, steps, {material.size}) for a "
            f"{material.stress_state.value} material, got {paths.shape}"
        )
    if not np.all(np.isfinite(paths)):
        raise MaterialInputError("strain_paths contain NaN or inf")
    n_paths, n_steps, n = paths.shape
    steps = np.asarray(dt, dtype=float)
    if steps.ndim > 1 or steps.size not in (1, n_steps):
        raise MaterialInputError(f"dt must be a scalar or one value per step ({n_steps}), got shape {steps.shape}")
    steps = np.broadcast_to(steps.reshape(-1), (n_steps,))
    history = material.initial_history(n_paths)
    stress = np.empty((n_paths, n_steps, n))
    tangents = np.empty((n_paths, n_steps, n, n)) if tangent else None
    kept = {k: np.empty((n_paths, n_steps, *s), material.history_dtype) for k, s in material.history_spec.items()} if keep_history else {}
    for t in range(n_steps):
        response = material.update(paths[:, t], history, float(steps[t]), tangent=tangent)
        stress[:, t] = response.stress
        if tangents is not None:
            tangents[:, t] = response.tangent
        history = response.history
        for k in kept:
            kept[k][:, t] = history[k]
    return DriveResult(stress=stress, tangent=tangents, history=kept)
