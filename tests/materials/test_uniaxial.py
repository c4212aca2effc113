"""The paper's 1D model: closed-form uniaxial responses, consistent tangent, history handling, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.materials import MaterialInputError, UniaxialPlasticity, drive

from .helpers import central_difference_tangent, loaded_state

E, SIGMA_Y = 2.1e5, 300.0
HARDENING = [(0.0, 0.0), (2.1e3, 0.0), (2.1e4, 0.0), (0.0, 2.1e3), (1.0e3, 3.0e3)]


def closed_form_triangle(strain: np.ndarray, peak_index: int, K_iso: float, K_kin: float) -> np.ndarray:
    """Exact stress along 0 -> e_max (tension yield) -> back (elastic unloading, then reverse yield)."""
    K = K_iso + K_kin
    e_t = E * K / (E + K)  # elastoplastic tangent modulus
    e_max = strain[peak_index]
    assert e_max > SIGMA_Y / E
    sigma_max = SIGMA_Y + e_t * (e_max - SIGMA_Y / E)
    plastic = e_max - sigma_max / E
    sigma_reverse = K_kin * plastic - (SIGMA_Y + K_iso * plastic)  # back stress minus current radius
    e_reverse = e_max - (sigma_max - sigma_reverse) / E
    loading = np.where(strain <= SIGMA_Y / E, E * strain, SIGMA_Y + e_t * (strain - SIGMA_Y / E))
    unloading = np.where(
        strain >= e_reverse, sigma_max - E * (e_max - strain), sigma_reverse - e_t * (e_reverse - strain)
    )
    return np.where(np.arange(strain.size) <= peak_index, loading, unloading)


def test_monotonic_isotropic_hardening_matches_closed_form():
    K = 2.1e4
    strain = np.linspace(0.0, 0.01, 101)
    stress = drive(UniaxialPlasticity(E, SIGMA_Y, K_iso=K), strain[None, :, None]).stress[0, :, 0]
    yielded = strain > SIGMA_Y / E
    np.testing.assert_allclose(stress[yielded], SIGMA_Y + E * K / (E + K) * (strain[yielded] - SIGMA_Y / E), rtol=1e-13)
    np.testing.assert_allclose(stress[~yielded], E * strain[~yielded], rtol=1e-13)


@pytest.mark.parametrize(("K_iso", "K_kin"), HARDENING)
def test_unloading_and_reverse_yielding_match_closed_form(K_iso, K_kin):
    strain = np.concatenate([np.linspace(0.0, 0.008, 41), np.linspace(0.008, -0.004, 61)[1:]])
    result = drive(UniaxialPlasticity(E, SIGMA_Y, K_iso, K_kin), strain[None, :, None])
    stress = result.stress[0, :, 0]
    expected = closed_form_triangle(strain, 40, K_iso, K_kin)
    alpha = result.history["equivalent_plastic_strain"][0]
    assert alpha[-1] > alpha[40] > 0  # yields in tension, then again in compression
    np.testing.assert_allclose(stress, expected, rtol=0, atol=1e-10 * SIGMA_Y)


@pytest.mark.parametrize(("K_iso", "K_kin"), HARDENING)
def test_tangent_matches_central_differences(K_iso, K_kin):
    material = UniaxialPlasticity(E, SIGMA_Y, K_iso, K_kin)
    strain, history = loaded_state(material, 20, 6e-3, seed=11)  # +-6e-3, then partly back
    strain = strain * np.where(np.arange(20) < 10, 1.3, 0.95)[:, None]
    response = material.update(strain, history)
    plastic = response.history["equivalent_plastic_strain"] > history["equivalent_plastic_strain"]
    assert plastic[:10].all() and not plastic[10:].any()
    fd = central_difference_tangent(material, strain, history, h=1e-7)
    np.testing.assert_allclose(response.tangent, fd, rtol=1e-6)


def test_update_leaves_committed_history_untouched_and_repeats_exactly():
    material = UniaxialPlasticity(E, SIGMA_Y, 2.1e3, 1e3)
    strain, history = loaded_state(material, 8, 6e-3, seed=12)
    before = {k: v.copy() for k, v in history.items()}
    first, second = material.update(1.5 * strain, history), material.update(1.5 * strain, history)
    for name in history:
        np.testing.assert_array_equal(history[name], before[name])
        np.testing.assert_array_equal(first.history[name], second.history[name])
    np.testing.assert_array_equal(first.stress, second.stress)
    assert material.update(1.5 * strain, history, tangent=False).tangent is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"E": -1.0}, "E must be positive"),
        ({"sigma_y": 0.0}, "sigma_y must be positive"),
        ({"K_iso": -1.0}, "K_iso must be non-negative"),
        ({"K_kin": np.nan}, "K_kin must be non-negative"),
        ({"stress_state": "3d"}, "UniaxialPlasticity works in stress state"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(MaterialInputError, match=match):
        UniaxialPlasticity(**({"E": E, "sigma_y": SIGMA_Y} | kwargs))


def test_bad_input_raises():
    material = UniaxialPlasticity(E, SIGMA_Y)
    with pytest.raises(MaterialInputError, match=r"shape \(N, 1\)"):
        material.update(np.zeros(3), material.initial_history(3))
    with pytest.raises(MaterialInputError, match="NaN"):
        material.update(np.full((3, 1), np.nan), material.initial_history(3))


def test_describe_lists_parameters():
    assert UniaxialPlasticity(E, SIGMA_Y, 1.0, 2.0).describe() == {
        "type": "UniaxialPlasticity",
        "stress_state": "uniaxial_stress",
        "E": E,
        "sigma_y": SIGMA_Y,
        "K_iso": 1.0,
        "K_kin": 2.0,
    }
