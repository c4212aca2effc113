"""Mandel conventions: round trips, work conjugacy, shear scaling, projector, von Mises stress, changes of frame."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.mandel import (
    SQRT2,
    StressState,
    deviatoric_projector,
    engineering_to_mandel,
    from_mandel,
    identity,
    mandel_rotation,
    rotation_about_z,
    to_mandel,
    von_mises,
)


def random_symmetric(n: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(n, 3, 3))
    return 0.5 * (a + np.swapaxes(a, 1, 2))


def test_round_trips():
    tensors = random_symmetric(5, 0)
    np.testing.assert_allclose(from_mandel(to_mandel(tensors)), tensors, rtol=1e-15)
    vectors = np.random.default_rng(1).normal(size=(5, 4))
    np.testing.assert_allclose(to_mandel(from_mandel(vectors), 4), vectors, rtol=1e-15)
    assert to_mandel(tensors, 1).shape == (5, 1)


def test_dot_product_of_mandel_vectors_is_double_contraction():
    stress, strain = random_symmetric(5, 2), random_symmetric(5, 3)
    np.testing.assert_allclose(
        np.einsum("pi,pi->p", to_mandel(stress), to_mandel(strain)), np.einsum("pij,pij->p", stress, strain), rtol=1e-13
    )


def test_engineering_shear_is_rescaled():
    voigt = np.array([1.0, 2.0, 3.0, 2 * 0.4, 2 * 0.5, 2 * 0.6])  # gamma = 2 e
    np.testing.assert_allclose(engineering_to_mandel(voigt), [1, 2, 3, SQRT2 * 0.4, SQRT2 * 0.5, SQRT2 * 0.6])


@pytest.mark.parametrize("size", [6, 4])
def test_deviatoric_projector_removes_the_trace(size):
    projector = deviatoric_projector(size)
    vectors = np.random.default_rng(4).normal(size=(3, size))
    deviators = vectors @ projector
    np.testing.assert_allclose(deviators[:, :3].sum(axis=1), 0.0, atol=1e-15)
    np.testing.assert_allclose(projector @ projector, projector, atol=1e-15)
    np.testing.assert_allclose(identity(size) @ projector, 0.0, atol=1e-15)


def test_von_mises_of_uniaxial_and_shear_stress():
    uniaxial = np.array([[250.0, 0, 0, 0, 0, 0]])
    shear = np.array([[0, 0, 0, SQRT2 * 100.0, 0, 0]])
    np.testing.assert_allclose(von_mises(uniaxial), 250.0, rtol=1e-15)
    np.testing.assert_allclose(von_mises(shear), np.sqrt(3) * 100.0, rtol=1e-15)
    np.testing.assert_allclose(von_mises(shear[:, :4]), np.sqrt(3) * 100.0, rtol=1e-15)


def test_stress_state_sizes_and_names():
    assert [s.size for s in StressState] == [6, 4, 1]
    assert StressState("plane_strain").component_names == ("xx", "yy", "zz", "xy")
    assert [s.fixed_strain for s in StressState] == [(), (2,), ()]
    assert StressState.PLANE_STRAIN.component_names[StressState.PLANE_STRAIN.fixed_strain[0]] == "zz"


@pytest.mark.parametrize("size", [4, 6])
def test_mandel_rotation_is_the_change_of_frame_of_symmetric_tensors(size):
    rng = np.random.default_rng(3)
    angles, mirrors = rng.uniform(0, 2 * np.pi, 5), np.array([True, False, True, False, False])
    R = rotation_about_z(angles, mirrors)
    np.testing.assert_allclose(np.linalg.det(R), np.where(mirrors, -1.0, 1.0))
    Q = mandel_rotation(R, size)
    tensor = from_mandel(rng.standard_normal(size))
    for k in range(5):
        np.testing.assert_allclose(Q[k] @ to_mandel(tensor, size), to_mandel(R[k] @ tensor @ R[k].T, size), atol=1e-14)
        np.testing.assert_allclose(Q[k] @ Q[k].T, np.eye(size), atol=1e-14)  # orthogonal: norms are kept
    np.testing.assert_allclose(mandel_rotation(R[0] @ R[1], size), Q[0] @ Q[1], atol=1e-14)  # a representation
    np.testing.assert_allclose(mandel_rotation(rotation_about_z(np.pi), size)[:4, :4], np.eye(4), atol=1e-14)


def test_mandel_rotation_refuses_frames_that_leave_the_stress_state():
    with pytest.raises(ValueError, match="mixes the 1 components"):
        mandel_rotation(rotation_about_z(0.3), 1)
    tilt = np.array([[1.0, 0, 0], [0, np.cos(0.2), -np.sin(0.2)], [0, np.sin(0.2), np.cos(0.2)]])  # about x
    with pytest.raises(ValueError, match="mixes the 4 components"):
        mandel_rotation(tilt, 4)
    assert mandel_rotation(tilt, 6).shape == (6, 6)
