"""J2 plasticity: consistent tangent, uniaxial and shear limits, history handling, chunking, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.mandel import SQRT2, deviatoric_projector, von_mises
from femsnn.materials import J2Plasticity, MaterialInputError, MaterialResponse, UniaxialPlasticity, drive, elastic_stiffness
from femsnn.materials.base import history_width, pack_history, unpack_history

from .helpers import central_difference_tangent, loaded_state, relative_error

E, NU, SIGMA_Y = 2.0e5, 0.3, 300.0
STATES = ["3d", "plane_strain"]
HARDENING = [(0.0, 0.0), (2.0e4, 0.0), (0.0, 2.0e4), (1.0e4, 5.0e3)]


def j2(state: str = "3d", H_iso: float = 0.0, H_kin: float = 0.0) -> J2Plasticity:
    return J2Plasticity(E, NU, SIGMA_Y, H_iso=H_iso, H_kin=H_kin, stress_state=state)


def copy_history(history: dict) -> dict:
    return {k: np.array(v, copy=True) for k, v in history.items()}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize(("H_iso", "H_kin"), HARDENING)
def test_tangent_matches_central_differences_after_plastic_loading(state, H_iso, H_kin):
    material = j2(state, H_iso, H_kin)
    peak = 5e-3
    strain, history = loaded_state(material, 40, peak, seed=1)
    rng = np.random.default_rng(2)
    # half the points load further (plastic), half step back (elastic unloading)
    outward = np.where(np.arange(40)[:, None] < 20, 0.3, -0.1) * strain / 0.9
    strain = strain + outward + 1e-5 * rng.normal(size=strain.shape)
    response = material.update(strain, history)
    plastic = response.history["equivalent_plastic_strain"] > history["equivalent_plastic_strain"]
    assert plastic[:20].all() and not plastic[20:].any()
    assert (history["equivalent_plastic_strain"] > 0).all()  # the committed state is not virgin
    fd = central_difference_tangent(material, strain, history, h=1e-7)
    assert relative_error(response.tangent, fd).max() <= 1e-6
    np.testing.assert_allclose(response.tangent, np.swapaxes(response.tangent, 1, 2), rtol=0, atol=1e-9 * E)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize(("H_iso", "H_kin"), HARDENING)
def test_plastic_points_end_on_the_yield_surface(state, H_iso, H_kin):
    material = j2(state, H_iso, H_kin)
    strain, history = loaded_state(material, 30, 8e-3, seed=3)
    response = material.update(1.2 * strain, history)  # reloading past the previous peak
    p = response.history["equivalent_plastic_strain"]
    assert (p > history["equivalent_plastic_strain"]).all()
    deviator = response.stress @ deviatoric_projector(material.size)
    relative = np.linalg.norm(deviator - response.history["back_stress"], axis=1)
    np.testing.assert_allclose(relative, np.sqrt(2.0 / 3.0) * (SIGMA_Y + H_iso * p), rtol=1e-12)


def solve_uniaxial_stress(material: J2Plasticity, axial: np.ndarray) -> tuple[np.ndarray, dict]:
    """Drive e_xx along axial with every other stress component zero (Newton on the lateral strains)."""
    free = np.arange(1, material.size)
    strain = np.zeros((1, material.size))
    history = material.initial_history(1)
    stress_xx, kept = [], []
    for e_xx in axial:
        strain[0, 0] = e_xx
        for _ in range(25):
            response = material.update(strain, history)
            residual = response.stress[0, free]
            if np.abs(residual).max() < 1e-10 * SIGMA_Y:
                break
            strain[0, free] -= np.linalg.solve(response.tangent[0][np.ix_(free, free)], residual)
        else:
            pytest.fail(f"lateral-strain Newton did not converge at e_xx = {e_xx}")
        history = response.history
        stress_xx.append(response.stress[0, 0])
        kept.append(copy_history(history))
    return np.array(stress_xx), {k: np.array([h[k][0] for h in kept]) for k in kept[0]}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize(("H_iso", "H_kin"), HARDENING)
def test_uniaxial_stress_state_equals_the_1d_model(state, H_iso, H_kin):
    legs = [np.linspace(0, 0.01, 21), np.linspace(0.01, -0.006, 21)[1:], np.linspace(-0.006, 0.004, 11)[1:]]
    axial = np.concatenate(legs)
    stress_xx, history = solve_uniaxial_stress(j2(state, H_iso, H_kin), axial)
    reference = drive(UniaxialPlasticity(E, SIGMA_Y, K_iso=H_iso, K_kin=H_kin), axial[None, :, None])
    np.testing.assert_allclose(stress_xx, reference.stress[0, :, 0], rtol=0, atol=1e-9 * SIGMA_Y)
    p_1d = reference.history["equivalent_plastic_strain"][0]
    assert p_1d[-1] > 0.01  # yielded in tension, in compression and again in tension
    np.testing.assert_allclose(history["equivalent_plastic_strain"], p_1d, rtol=0, atol=1e-12)
    np.testing.assert_allclose(history["plastic_strain"][:, 0], reference.history["plastic_strain"][0], atol=1e-12)
    # the uniaxial back stress q is 3/2 of the tensor's xx component
    np.testing.assert_allclose(1.5 * history["back_stress"][:, 0], reference.history["back_stress"][0], atol=1e-9)


@pytest.mark.parametrize("state", STATES)
def test_pure_shear_saturates_at_sigma_y_over_sqrt3(state):
    material = j2(state)
    shear = np.linspace(0.0, 0.02, 41)  # tensor shear strain e_xy
    paths = np.zeros((1, shear.size, material.size))
    paths[0, :, 3] = SQRT2 * shear
    tau = drive(material, paths).stress[0, :, 3] / SQRT2
    mu = E / (2 * (1 + NU))
    elastic = 2 * mu * shear < SIGMA_Y / np.sqrt(3)
    np.testing.assert_allclose(tau[elastic], 2 * mu * shear[elastic], rtol=1e-13)
    np.testing.assert_allclose(tau[~elastic], SIGMA_Y / np.sqrt(3), rtol=1e-13)
    assert (~elastic).sum() > 30
    np.testing.assert_allclose(drive(material, paths).stress[0, :, [0, 1, 2]], 0.0, atol=1e-10)


def test_plane_strain_equals_3d_without_out_of_plane_shear():
    full, plane = j2("3d", 1e4, 5e3), j2("plane_strain", 1e4, 5e3)
    rng = np.random.default_rng(4)
    paths = np.zeros((20, 8, 6))
    paths[:, :, :4] = np.cumsum(rng.normal(scale=1e-3, size=(20, 8, 4)), axis=1)
    result_3d = drive(full, paths, tangent=True)
    result_ps = drive(plane, paths[:, :, :4], tangent=True)
    np.testing.assert_allclose(result_ps.stress, result_3d.stress[:, :, :4], rtol=1e-13, atol=1e-10)
    np.testing.assert_array_equal(result_3d.stress[:, :, 4:], 0.0)
    np.testing.assert_allclose(result_ps.tangent, result_3d.tangent[:, :, :4, :4], rtol=1e-13, atol=1e-8)
    assert (result_ps.history["equivalent_plastic_strain"][:, -1] > 0).any()


@pytest.mark.parametrize("state", STATES)
def test_elastic_points_get_elastic_stress_tangent_and_unchanged_history(state):
    material = j2(state, 1e4, 1e4)
    n = material.size
    rng = np.random.default_rng(5)
    strain = rng.normal(scale=1e-4, size=(10, n))
    strain[0] = 0.0  # zero strain from rest: |xi| = 0 must not divide by zero
    history = material.initial_history(10)
    response = material.update(strain, history)
    stiffness = elastic_stiffness(E, NU, n)
    np.testing.assert_allclose(response.stress, strain @ stiffness, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(response.tangent, np.broadcast_to(stiffness, (10, n, n)))
    for name, value in response.history.items():
        np.testing.assert_array_equal(value, history[name])


def test_point_exactly_on_the_yield_surface_stays_there():
    material = j2("3d")
    mu = E / (2 * (1 + NU))
    direction = np.array([[1.0, -1.0, 0.0, 0.0, 0.0, 0.0]]) / np.sqrt(2.0)  # deviatoric, unit norm
    strain = direction * np.sqrt(2.0 / 3.0) * SIGMA_Y / (2 * mu)
    response = material.update(strain, material.initial_history(1))
    np.testing.assert_allclose(von_mises(response.stress), SIGMA_Y, rtol=1e-14)
    assert response.history["equivalent_plastic_strain"][0] < 1e-15
    assert np.isfinite(response.tangent).all()


def test_update_leaves_committed_history_untouched_and_repeats_exactly():
    material = j2("3d", 1e4, 1e4)
    strain, history = loaded_state(material, 25, 6e-3, seed=6)
    strain = 1.2 * strain
    before = copy_history(history)
    first = material.update(strain, history)
    second = material.update(strain, history)
    for name in history:
        np.testing.assert_array_equal(history[name], before[name])
    np.testing.assert_array_equal(first.stress, second.stress)
    np.testing.assert_array_equal(first.tangent, second.tangent)
    for name in history:
        np.testing.assert_array_equal(first.history[name], second.history[name])
        assert not np.shares_memory(first.history[name], history[name])


def test_tangent_false_gives_same_stress_and_history():
    material = j2("plane_strain", 1e4, 1e4)
    strain, history = loaded_state(material, 12, 6e-3, seed=7)
    with_tangent = material.update(1.1 * strain, history)
    without = material.update(1.1 * strain, history, tangent=False)
    assert without.tangent is None
    np.testing.assert_array_equal(with_tangent.stress, without.stress)
    for name in history:
        np.testing.assert_array_equal(with_tangent.history[name], without.history[name])


def test_empty_batch():
    material = j2("3d")
    response = material.update(np.zeros((0, 6)), material.initial_history(0))
    assert response.stress.shape == (0, 6) and response.tangent.shape == (0, 6, 6)
    assert response.history["equivalent_plastic_strain"].shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"E": 0.0}, "E must be positive"),
        ({"E": np.nan}, "E must be positive"),
        ({"nu": 0.5}, "nu must lie in"),
        ({"nu": -1.0}, "nu must lie in"),
        ({"sigma_y": -1.0}, "sigma_y must be positive"),
        ({"H_iso": -1.0}, "H_iso must be non-negative"),
        ({"H_kin": -1.0}, "H_kin must be non-negative"),
        ({"H_kin": np.inf}, "H_kin must be non-negative"),
        ({"stress_state": "uniaxial_stress"}, "J2Plasticity works in stress state"),
        ({"stress_state": "2d"}, "unknown stress state"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    params = {"E": E, "nu": NU, "sigma_y": SIGMA_Y} | kwargs
    with pytest.raises(MaterialInputError, match=match):
        J2Plasticity(**params)


def test_bad_input_raises():
    material = j2("3d")
    history = material.initial_history(2)
    with pytest.raises(MaterialInputError, match=r"shape \(N, 6\)"):
        material.update(np.zeros((2, 4)), history)
    with pytest.raises(MaterialInputError, match="NaN or inf"):
        material.update(np.array([[np.nan, 0, 0, 0, 0, 0], [0] * 6]), history)
    with pytest.raises(MaterialInputError, match="NaN or inf"):
        material.update(np.array([[np.inf, 0, 0, 0, 0, 0], [0] * 6]), history)
    with pytest.raises(MaterialInputError, match="back_stress"):
        material.update(np.zeros((2, 6)), history | {"back_stress": np.zeros((2, 4))})
    with pytest.raises(MaterialInputError, match="material expects"):
        material.update(np.zeros((2, 6)), {"plastic_strain": np.zeros((2, 6))})
    with pytest.raises(MaterialInputError, match="dt"):
        material.update(np.zeros((2, 6)), history, dt=0.0)


def test_describe_lists_parameters():
    assert j2("plane_strain", 1.0, 2.0).describe() == {
        "type": "J2Plasticity",
        "stress_state": "plane_strain",
        "E": E,
        "nu": NU,
        "sigma_y": SIGMA_Y,
        "H_iso": 1.0,
        "H_kin": 2.0,
    }


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize(("H_iso", "H_kin"), [(0.0, 0.0), (2.0e3, 0.0)])
def test_point_on_the_yield_surface_reevaluated_at_its_strain_stays_elastic(state, H_iso, H_kin):
    """Round-off must not flip a converged plastic point to plastic again at an unchanged strain."""
    material = j2(state, H_iso, H_kin)
    strain, history = loaded_state(material, 50, 6e-3, seed=4)
    strain = 1.5 * strain  # reloading past the previous peak
    committed = material.update(strain, history).history
    assert (committed["equivalent_plastic_strain"] > history["equivalent_plastic_strain"]).sum() >= 45
    again = material.update(strain, committed)
    np.testing.assert_array_equal(again.history["equivalent_plastic_strain"], committed["equivalent_plastic_strain"])
    np.testing.assert_allclose(again.tangent, np.broadcast_to(material.elastic_tangent, again.tangent.shape), rtol=1e-12)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("tangent", [True, False])
def test_update_into_the_fe_sides_packed_arrays_equals_update(state, tangent):
    """out=: committed and trial history as views of packed (N, width) arrays, as the FE side keeps them."""
    material = j2(state, 1e4, 5e3)
    strain, history = loaded_state(material, 50, 5e-3, seed=9)
    strain[::3] *= 0.5  # elastic and plastic points
    spec, n = material.history_spec, material.size
    committed = np.empty((50, history_width(spec)))
    pack_history(history, spec, committed)
    before = committed.copy()
    trial = np.full_like(committed, np.nan)
    out = MaterialResponse(stress=np.empty((50, n)), tangent=np.full((50, n, n), np.nan), history=unpack_history(trial, spec))
    response = material.update(1.1 * strain, unpack_history(committed, spec), tangent=tangent, out=out)
    expected = material.update(1.1 * strain, history, tangent=tangent)
    assert response.stress is out.stress and (response.tangent is out.tangent if tangent else response.tangent is None)
    np.testing.assert_array_equal(out.stress, expected.stress)
    for name in spec:
        np.testing.assert_array_equal(unpack_history(trial, spec)[name], expected.history[name])
    if tangent:
        np.testing.assert_array_equal(out.tangent, expected.tangent)
    else:
        assert np.isnan(out.tangent).all()  # not asked for: not written
    np.testing.assert_array_equal(committed, before)


def test_update_into_a_strided_tangent_equals_update():
    material = j2("3d", 1e4, 5e3)
    strain, history = loaded_state(material, 12, 5e-3, seed=10)
    expected = material.update(1.1 * strain, history)
    out = material.update(strain, history)
    strided = MaterialResponse(stress=out.stress, tangent=np.full((12, 6, 12), np.nan)[:, :, ::2], history=out.history)
    material.update(1.1 * strain, history, out=strided)
    np.testing.assert_array_equal(strided.tangent, expected.tangent)
