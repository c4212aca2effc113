"""Lame's thick-walled cylinder: the benchmark numbers of science notes section 6 and the physics behind them."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.fem.analytic import ThickCylinder
from femsnn.mandel import von_mises

CYLINDER = ThickCylinder()


def test_benchmark_numbers():
    assert CYLINDER.compliance() == pytest.approx(5.6253e-5, rel=1e-5)
    assert CYLINDER.first_yield_pressure() == pytest.approx(58.388, rel=1e-5)
    assert CYLINDER.limit_pressure() == pytest.approx(75.738, rel=1e-5)


def test_stresses_meet_the_pressure_on_the_walls():
    radial_in, _, _ = CYLINDER.stresses(1.0, 10.0)
    radial_out, _, _ = CYLINDER.stresses(1.3, 10.0)
    assert radial_in == pytest.approx(-10.0, rel=1e-12)
    assert radial_out == pytest.approx(0.0, abs=1e-12)


def test_stresses_are_in_equilibrium():
    r = np.linspace(1.0, 1.3, 2001)
    radial, hoop, _ = CYLINDER.stresses(r, 10.0)
    # d sigma_r / dr + (sigma_r - sigma_theta) / r = 0
    residual = np.gradient(radial, r, edge_order=2) + (radial - hoop) / r
    assert np.max(np.abs(residual)) < 1e-5 * np.max(np.abs(hoop))


def test_displacement_and_stresses_obey_plane_strain_hooke():
    cylinder = ThickCylinder(inner_radius=2.0, outer_radius=3.0, young=200e3, poisson=0.25)
    r = np.linspace(2.0, 3.0, 2001)
    u = cylinder.radial_displacement(r, 40.0)
    radial, hoop, axial = cylinder.stresses(r, 40.0)
    e, nu = cylinder.young, cylinder.poisson

    def hooke_strain(s: np.ndarray, other1: np.ndarray, other2: np.ndarray) -> np.ndarray:
        return (s - nu * (other1 + other2)) / e

    np.testing.assert_allclose(np.gradient(u, r, edge_order=2), hooke_strain(radial, hoop, axial), rtol=1e-6)
    np.testing.assert_allclose(u / r, hooke_strain(hoop, radial, axial), rtol=1e-12)
    np.testing.assert_allclose(hooke_strain(axial, radial, hoop), 0.0, atol=1e-18)


def test_yield_starts_at_the_inner_wall_at_first_yield_pressure():
    r = np.linspace(1.0, 1.3, 301)
    radial, hoop, axial = CYLINDER.stresses(r, CYLINDER.first_yield_pressure())
    equivalent = von_mises(np.stack([radial, hoop, axial, np.zeros_like(r)], axis=-1))
    assert equivalent[0] == pytest.approx(CYLINDER.yield_stress, rel=1e-12)
    assert np.all(np.diff(equivalent) < 0)


def test_answers_broadcast_over_radius_and_pressure():
    r = np.array([1.0, 1.1, 1.3])
    u = CYLINDER.radial_displacement(r[:, None], np.array([1.0, 2.0]))
    assert u.shape == (3, 2)
    np.testing.assert_allclose(u[:, 1], 2 * u[:, 0], rtol=1e-14)
    assert u[0, 0] == pytest.approx(CYLINDER.compliance(), rel=1e-14)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"inner_radius": 1.3, "outer_radius": 1.0},
        {"inner_radius": 0.0},
        {"poisson": 0.5},
        {"young": -1.0},
        {"yield_stress": 0.0},
    ],
)
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError, match="need"):
        ThickCylinder(**kwargs)


def test_radius_outside_the_wall_is_refused():
    with pytest.raises(ValueError, match="wall"):
        CYLINDER.radial_displacement(0.9, 1.0)
    with pytest.raises(ValueError, match="wall"):
        CYLINDER.stresses(np.array([1.0, 1.4]), 1.0)
