"""Equilibrium solver: elastic patch tests against exact solutions, loads, commit and rollback."""

from __future__ import annotations

import numpy as np
import pytest
from dolfinx import fem
from mpi4py import MPI

from femsnn.fem.loads import BoundaryLoading, Displacement, Pressure, Traction
from femsnn.fem.probes import DisplacementProbe, ReactionProbe
from femsnn.fem.solver import EquilibriumSolver
from femsnn.materials.base import History, Material, MaterialResponse
from femsnn.materials.elastic import LinearElastic
from tests.fem.helpers import box_mesh_data

E, NU = 200.0, 0.3
SUPPORTS = {2: ("left", "bottom"), 3: ("left", "bottom", "back")}


def build(dim: int, material: Material, pull, degree: int = 1):
    """Unit box on symmetry supports (one per axis), loaded on 'right' by pull; returns solver and u."""
    data = box_mesh_data(MPI.COMM_WORLD, dim, 2)
    V = fem.functionspace(data.mesh, ("Lagrange", degree, (dim,)))
    u = fem.Function(V)
    supports = [Displacement(face, axis) for axis, face in enumerate(SUPPORTS[dim])]
    loading = BoundaryLoading(V, data, [*supports, pull])
    return EquilibriumSolver(u, material, loading, quadrature_degree=2), u, data


def uniaxial_exact(dim: int, strain_xx: float):
    """Exact displacement of a unit box stretched along x with free lateral faces (plane strain in 2D)."""
    lateral = -NU / (1 - NU) * strain_xx if dim == 2 else -NU * strain_xx
    return lambda x: np.vstack([strain_xx * x[0], *(lateral * x[i] for i in range(1, dim))])


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("degree", [1, 2])
def test_patch_test_with_prescribed_displacement_is_exact(dim, degree):
    material = LinearElastic(E, NU, "plane_strain" if dim == 2 else "3d")
    solver, u, data = build(dim, material, Displacement("right", 0, 0.01), degree)
    info = solver.solve_at(1.0)
    assert info.converged and info.iterations == 1
    exact = fem.Function(u.function_space)
    exact.interpolate(uniaxial_exact(dim, 0.01))
    np.testing.assert_allclose(u.x.array, exact.x.array, atol=1e-13)
    modulus = E / (1 - NU**2) if dim == 2 else E
    expected = np.zeros(material.size)
    expected[0] = modulus * 0.01
    if dim == 2:
        expected[2] = NU * expected[0]  # s_zz of plane strain
    np.testing.assert_allclose(solver.data.stress_values, np.broadcast_to(expected, solver.data.stress_values.shape), atol=1e-10)
    reaction = ReactionProbe(solver.residual, u.function_space, data.facets("right"), 0)
    assert reaction.value() == pytest.approx(modulus * 0.01, rel=1e-12)  # face area 1


@pytest.mark.parametrize(
    "pull", [Traction("right", (3.0, 0.0)), Pressure("right", -3.0)], ids=["traction", "negative pressure"]
)
def test_traction_and_pressure_loads_scale_with_the_load_factor(pull):
    solver, u, data = build(2, LinearElastic(E, NU, "plane_strain"), pull)
    probe = DisplacementProbe(u, (1.0, 0.5), 0)
    for factor in (0.5, 2.0):
        assert solver.solve_at(factor).converged
        solver.commit()
        assert probe.value() == pytest.approx(factor * 3.0 * (1 - NU**2) / E, rel=1e-12)
    support = ReactionProbe(solver.residual, u.function_space, data.facets("left"), 0)
    assert support.value() == pytest.approx(-2.0 * 3.0, rel=1e-12)


class CountingElastic(LinearElastic):
    """Linear elasticity with one history variable that counts the committed steps (trial = committed + 1)."""

    @property
    def history_spec(self) -> dict[str, tuple[int, ...]]:
        return {"steps": ()}

    def _update(self, strain: np.ndarray, history: History, dt: float, tangent: bool) -> MaterialResponse:
        self.calls = getattr(self, "calls", 0) + 1
        response = super()._update(strain, {}, dt, tangent)
        return MaterialResponse(response.stress, response.tangent, {"steps": history["steps"] + 1.0})


def test_every_evaluation_starts_from_the_committed_history_and_rollback_restores_it():
    material = CountingElastic(E, NU, "plane_strain")
    solver, u, _ = build(2, material, Displacement("right", 0, 0.01))
    solver.solve_at(1.0)
    assert material.calls >= 2  # residual at the start and at the solution
    solver.rollback()
    assert np.all(solver.data.committed == 0.0) and np.all(u.x.array == 0.0)
    assert np.all(solver.data.stress_values == 0.0)  # the stress of the restored state
    for factor in (1.0, 2.0):
        assert solver.solve_at(factor).converged
        solver.commit()
    np.testing.assert_array_equal(solver.data.committed, 2.0)


def test_material_must_match_the_mesh_dimension():
    with pytest.raises(ValueError, match="needs a 'plane_strain' material"):
        build(2, LinearElastic(E, NU, "3d"), Displacement("right", 0, 0.01))


def test_loads_on_unknown_boundaries_or_axes_are_rejected():
    with pytest.raises(KeyError, match="no facet group 'nowhere'"):
        build(2, LinearElastic(E, NU, "plane_strain"), Displacement("nowhere", 0, 1.0))
    with pytest.raises(ValueError, match="component 2"):
        build(2, LinearElastic(E, NU, "plane_strain"), Displacement("right", 2, 1.0))
    with pytest.raises(ValueError, match="needs 2 components"):
        build(2, LinearElastic(E, NU, "plane_strain"), Traction("right", (1.0, 0.0, 0.0)))
