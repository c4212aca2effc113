"""Secant and bounded tangents: the work they do, their bounds, and what they leave alone."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.materials import J2Plasticity, drive, elastic_stiffness
from femsnn.materials.tangents import bounded_tangent, secant_tangent

ELASTIC = elastic_stiffness(7e4, 0.3, 4)


def energy_eigenvalues(tangent: np.ndarray) -> np.ndarray:
    """Eigenvalues of L^-1 C L^-T with C_e = L L^T: 1 where C is elastic, its ratio to C_e otherwise."""
    inverse = np.linalg.inv(np.linalg.cholesky(ELASTIC))
    return np.linalg.eigvalsh(inverse @ (0.5 * (tangent + np.swapaxes(tangent, 1, 2))) @ inverse.T)


def test_secant_of_an_elastic_step_is_the_elastic_stiffness():
    increment = np.random.default_rng(0).normal(scale=1e-3, size=(10, 4))
    np.testing.assert_allclose(secant_tangent(ELASTIC, increment, increment @ ELASTIC), np.broadcast_to(ELASTIC, (10, 4, 4)), rtol=1e-12)


def test_secant_does_the_work_of_the_stress_change_and_stays_elastic_across_the_increment():
    rng = np.random.default_rng(1)
    increment = rng.normal(scale=1e-3, size=(20, 4))
    ratio = rng.uniform(0.05, 0.9, size=20)
    change = ratio[:, None] * (increment @ ELASTIC) + rng.normal(scale=1.0, size=(20, 4))
    tangent = secant_tangent(ELASTIC, increment, change)
    np.testing.assert_allclose(np.einsum("pi,pij,pj->p", increment, tangent, increment), np.einsum("pi,pi->p", change, increment), rtol=1e-10)
    across = rng.normal(size=(20, 4))
    work_direction = increment @ ELASTIC
    across -= (np.einsum("pi,pi->p", across, work_direction) / np.einsum("pi,pi->p", work_direction, work_direction))[:, None] * work_direction
    np.testing.assert_allclose(np.einsum("pij,pj->pi", tangent, across), across @ ELASTIC, rtol=1e-9, atol=1e-9 * np.abs(across @ ELASTIC).max())
    np.testing.assert_allclose(tangent, np.swapaxes(tangent, 1, 2), rtol=1e-12)


def test_secant_is_clipped_to_the_bounds_and_elastic_at_zero_increment():
    increment = np.array([[1e-3, 0, 0, 0], [1e-3, 0, 0, 0], [0, 0, 0, 0]])
    elastic_change = increment @ ELASTIC
    change = np.stack([-elastic_change[0], 3 * elastic_change[1], [5.0, 1.0, 0.0, 2.0]])
    tangent = secant_tangent(ELASTIC, increment, change, min_ratio=0.01)
    values = energy_eigenvalues(tangent)
    np.testing.assert_allclose(values[0], [0.01, 1, 1, 1], rtol=1e-9)  # unloading against the increment: softest allowed
    np.testing.assert_allclose(values[1], 1.0, rtol=1e-9)  # stiffer than elastic: elastic
    np.testing.assert_array_equal(tangent[2], ELASTIC)


def test_secant_of_a_j2_radial_plastic_step_is_its_consistent_tangent_in_the_limit_of_small_steps():
    material = J2Plasticity(7e4, 0.3, 250.0, H_iso=700.0, stress_state="plane_strain")
    direction = np.array([[1.0, -1.0, 0.0, 0.0]]) / np.sqrt(2)  # deviatoric, radial
    start = 1.2 * 250.0 / (2 * material.mu) * direction  # past first yield
    ramp = np.linspace(0.0, 1.0, 11)[None, 1:, None] * start[:, None, :]
    history = {k: v[:, -1] for k, v in drive(material, ramp).history.items()}
    step = 1e-9 * direction
    before = material.update(start, history, tangent=False).stress
    loaded = material.update(start + step, history)
    secant = secant_tangent(ELASTIC, step, loaded.stress - before)
    np.testing.assert_allclose(secant, loaded.tangent, rtol=0, atol=1e-5 * 7e4)


def test_bounded_tangent_keeps_a_tangent_within_the_bounds_and_clips_the_rest():
    skew = np.triu(np.full((4, 4), 1e3), 1) - np.tril(np.full((4, 4), 1e3), -1)
    inside = np.stack([0.5 * ELASTIC, ELASTIC, 1.5 * ELASTIC, ELASTIC + skew])
    np.testing.assert_allclose(bounded_tangent(ELASTIC, inside), inside, rtol=1e-12, atol=1e-9)
    outside = np.stack([-ELASTIC, 3.0 * ELASTIC, -ELASTIC + skew])
    bounded = bounded_tangent(ELASTIC, outside, min_ratio=0.01, max_ratio=2.0)
    np.testing.assert_allclose(bounded[0], 0.01 * ELASTIC, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(bounded[1], 2.0 * ELASTIC, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(bounded[2], 0.01 * ELASTIC + skew, rtol=1e-12, atol=1e-9)  # the skew part is kept


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5])
def test_bad_ratio_is_refused(ratio):
    with pytest.raises(ValueError, match="min_ratio must lie in"):
        secant_tangent(ELASTIC, np.zeros((1, 4)), np.zeros((1, 4)), min_ratio=ratio)
    with pytest.raises(ValueError, match="min_ratio must lie in"):
        bounded_tangent(ELASTIC, ELASTIC[None], min_ratio=ratio)
    with pytest.raises(ValueError, match="max_ratio must be at least 1"):
        bounded_tangent(ELASTIC, ELASTIC[None], max_ratio=0.5)
