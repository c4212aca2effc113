"""Tangent stiffnesses for Newton's method when a material's own derivative is useless or unknown.

Both helpers work on batches of Mandel matrices and bound the stiffness in C_e's energy norm (the
eigenvalues of L^-1 C L^-T, C_e = L L^T, of the symmetric part):

* :func:`secant_tangent`: the chord over the load step, C = C_e - (1 - s) (C_e d)(C_e d)^T / (d.C_e d)
  with s = (Δσ.d) / (d.C_e d) clipped to [min_ratio, 1], d the strain increment and Δσ the stress
  change since the committed state. It does the stress change's work along d (d.C d = Δσ.d) and is
  elastic across d, which is the shape of the J2 consistent tangent under radial loading. A zero
  increment gives C_e.
* :func:`bounded_tangent`: any tangent (e.g. a network's surrogate derivative) with the energy-norm
  eigenvalues of its symmetric part clipped to [min_ratio, max_ratio]; its skew part is kept, so the
  exact derivative of a smooth network stays exact wherever it lies within the bounds and Newton keeps
  its quadratic convergence. Measured on the cylinder (38k points, shipped surrogate, first 17 load
  steps, benchmarks/bench_spiking_fe.py): 4.41 Newton iterations per step when symmetrised and clipped
  at C_e, 4.18 symmetrised and clipped at 100 C_e, 2.82 with the skew part kept and clipped at 2 C_e
  (the same at 100 C_e); the exact tangent alone: 2.47. The network is locally a little stiffer than
  C_e, which is why the upper bound sits above it.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

#: how a network material builds its tangent (femsnn.materials.spiking): d stress / d strain through the
#: network's surrogate gradients, the elastic stiffness, the chord over the step, or the bounded surrogate
TangentStrategy = Literal["surrogate", "elastic", "secant", "bounded"]
TANGENT_STRATEGIES: tuple[str, ...] = get_args(TangentStrategy)

#: default lower bound on a tangent's stiffness relative to the elastic one (energy norm)
MIN_STIFFNESS_RATIO = 1e-3
#: upper bound of bounded_tangent relative to the elastic stiffness: above it no material's tangent lies
MAX_STIFFNESS_RATIO = 2.0


def check_ratio(min_ratio: float) -> float:
    """A stiffness ratio in (0, 1]; ValueError otherwise."""
    if not 0.0 < min_ratio <= 1.0:
        raise ValueError(f"min_ratio must lie in (0, 1], got {min_ratio}")
    return float(min_ratio)


def secant_tangent(
    elastic: np.ndarray, strain_increment: np.ndarray, stress_increment: np.ndarray, min_ratio: float = MIN_STIFFNESS_RATIO
) -> np.ndarray:
    """Chord stiffness (N, n, n) of N points from their strain (N, n) and stress (N, n) changes over the step."""
    min_ratio = check_ratio(min_ratio)
    d = np.asarray(strain_increment, dtype=np.float64)
    work_direction = d @ elastic  # C_e d (elastic is symmetric)
    energy = np.einsum("pi,pi->p", work_direction, d)  # d.C_e d >= 0
    moving = energy > 0.0
    ratio = np.ones_like(energy)
    np.divide(np.einsum("pi,pi->p", stress_increment, d), energy, out=ratio, where=moving)
    ratio = np.clip(ratio, min_ratio, 1.0)
    weight = np.zeros_like(energy)
    np.divide(1.0 - ratio, energy, out=weight, where=moving)
    return elastic - weight[:, None, None] * np.einsum("pi,pj->pij", work_direction, work_direction)


def bounded_tangent(
    elastic: np.ndarray, tangent: np.ndarray, min_ratio: float = MIN_STIFFNESS_RATIO, max_ratio: float = MAX_STIFFNESS_RATIO
) -> np.ndarray:
    """Tangents (N, n, n) whose symmetric part has energy-norm eigenvalues in [min_ratio, max_ratio] of C_e; skew part kept."""
    min_ratio = check_ratio(min_ratio)
    if not max_ratio >= 1.0:
        raise ValueError(f"max_ratio must be at least 1 (the elastic stiffness itself), got {max_ratio}")
    factor = np.linalg.cholesky(elastic)  # C_e = L L^T
    inverse = np.linalg.inv(factor)
    symmetric = 0.5 * (tangent + np.swapaxes(tangent, 1, 2))
    relative = inverse @ symmetric @ inverse.T  # L^-1 C L^-T
    extremes = np.linalg.eigvalsh(relative)[:, [0, -1]]  # eigenvalues only: cheap next to the vectors
    outside = (extremes[:, 0] < min_ratio) | (extremes[:, 1] > max_ratio)
    bounded = np.array(tangent, dtype=np.float64)
    if np.any(outside):  # only these points need the eigenvectors
        values, vectors = np.linalg.eigh(relative[outside])
        clipped = (vectors * np.clip(values, min_ratio, max_ratio)[:, None, :]) @ np.swapaxes(vectors, 1, 2)
        bounded[outside] += factor @ clipped @ factor.T - symmetric[outside]
    return bounded
