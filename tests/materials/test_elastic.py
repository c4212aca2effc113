"""Linear elasticity and the shared Mandel stiffness."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.mandel import from_mandel, to_mandel
from femsnn.materials import LinearElastic, MaterialInputError, elastic_stiffness, lame_moduli

E, NU = 7.0e4, 0.3


@pytest.mark.parametrize("size", [6, 4])
def test_stiffness_is_hookes_law_in_mandel_form(size):
    rng = np.random.default_rng(0)
    strain = rng.normal(size=(5, size))
    tensor = from_mandel(strain)
    kappa, mu = lame_moduli(E, NU)
    lam = kappa - 2.0 * mu / 3.0
    stress = lam * np.trace(tensor, axis1=1, axis2=2)[:, None, None] * np.eye(3) + 2.0 * mu * tensor
    np.testing.assert_allclose(strain @ elastic_stiffness(E, NU, size), to_mandel(stress, size), rtol=1e-13)


def test_3d_compliance_gives_young_and_poisson():
    compliance = np.linalg.inv(elastic_stiffness(E, NU, 6))
    np.testing.assert_allclose(compliance[:, 0], [1 / E, -NU / E, -NU / E, 0, 0, 0], atol=1e-20)
    assert np.all(np.linalg.eigvalsh(elastic_stiffness(E, NU, 6)) > 0)


def test_uniaxial_stiffness_is_young_modulus():
    np.testing.assert_array_equal(elastic_stiffness(E, NU, 1), [[E]])


def test_bad_stiffness_arguments_raise():
    with pytest.raises(MaterialInputError, match="size must be 1, 4 or 6"):
        elastic_stiffness(E, NU, 3)
    with pytest.raises(MaterialInputError, match="nu must lie"):
        elastic_stiffness(E, 0.5, 6)
    with pytest.raises(MaterialInputError, match="E must be positive"):
        elastic_stiffness(-E, NU, 6)


@pytest.mark.parametrize("state", ["3d", "plane_strain", "uniaxial_stress"])
def test_update_gives_linear_stress_and_constant_tangent(state):
    material = LinearElastic(E, NU, state)
    strain = np.random.default_rng(1).normal(scale=1e-3, size=(7, material.size))
    response = material.update(strain, {})
    stiffness = elastic_stiffness(E, NU, material.size)
    np.testing.assert_allclose(response.stress, strain @ stiffness, rtol=1e-14)
    np.testing.assert_array_equal(response.tangent, np.broadcast_to(stiffness, (7, material.size, material.size)))
    assert response.history == {} and material.update(strain, {}, tangent=False).tangent is None
    assert material.describe() == {"type": "LinearElastic", "stress_state": state, "E": E, "nu": NU}


def test_bad_parameters_and_input_raise():
    with pytest.raises(MaterialInputError, match="unknown stress state"):
        LinearElastic(E, NU, "plane_stress")
    with pytest.raises(MaterialInputError, match="nu must lie"):
        LinearElastic(E, -1.5)
    with pytest.raises(MaterialInputError, match=r"shape \(N, 6\)"):
        LinearElastic(E, NU).update(np.zeros((2, 4)), {})
