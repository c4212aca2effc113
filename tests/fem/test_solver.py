"""Equilibrium solver: elastic patch tests against exact solutions, loads, commit and rollback."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from femsnn.fem.loads import BoundaryLoading, Displacement, Pressure, Traction
from femsnn.fem.probes import DisplacementProbe, ReactionProbe
from femsnn.fem.solver import EquilibriumSolver, NewtonSettings, material_stress_resolution, residual_noise_scale
from femsnn.materials.base import History, Material, MaterialResponse
from femsnn.materials.elastic import LinearElastic
from tests.fem.helpers import box_mesh_data

E, NU = 200.0, 0.3
SUPPORTS = {2: ("left", "bottom"), 3: ("left", "bottom", "back")}


def build(dim: int, material: Material, pull, degree: int = 1, settings: NewtonSettings = NewtonSettings()):
    """Unit box on symmetry supports (one per axis), loaded on 'right' by pull; returns solver, u and mesh data."""
    data = box_mesh_data(MPI.COMM_WORLD, dim, 2)
    V = fem.functionspace(data.mesh, ("Lagrange", degree, (dim,)))
    u = fem.Function(V)
    supports = [Displacement(face, axis) for axis, face in enumerate(SUPPORTS[dim])]
    loading = BoundaryLoading(V, data, [*supports, pull])
    return EquilibriumSolver(u, material, loading, quadrature_degree=2, settings=settings), u, data


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


class QuantisedElastic(LinearElastic):
    """Linear elasticity whose stress is rounded to multiples of a resolution: piecewise constant in the strain.

    Reports that resolution like a network material does; its tangent can be switched to zero (singular).
    """

    def __init__(self, resolution: float, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resolution, self.singular = resolution, False

    def _update(self, strain: np.ndarray, history: History, dt: float, tangent: bool) -> MaterialResponse:
        response = super()._update(strain, history, dt, tangent)
        stress = self.resolution * np.round(response.stress / self.resolution)
        tangents = np.zeros_like(response.tangent) if self.singular and tangent else response.tangent
        return MaterialResponse(stress, tangents, response.history)

    def stress_resolution(self) -> SimpleNamespace:
        return SimpleNamespace(resolution=self.resolution)


def test_stress_tolerance_lets_newton_converge_on_a_piecewise_constant_stress():
    pull = Traction("right", (50.3, 0.0))  # a uniform stress between two multiples of the resolution
    exact, u_exact, _ = build(2, LinearElastic(E, NU, "plane_strain"), pull)
    assert exact.solve_at(1.0).converged
    material = QuantisedElastic(1.0, E, NU, "plane_strain")
    plain, _, _ = build(2, material, pull)
    assert plain.solve_at(1.0).reason == PETSc.SNES.ConvergedReason.DIVERGED_MAX_IT  # the residual stalls
    tolerance = material_stress_resolution(material)
    assert tolerance == 1.0 and material_stress_resolution(LinearElastic(E, NU, "plane_strain")) == 0.0
    solver, u, _ = build(2, material, pull, settings=NewtonSettings(stress_tolerance=tolerance))
    scale = residual_noise_scale(solver.data, u.function_space, solver.loading.bcs)
    assert solver.residual_atol == pytest.approx(tolerance * scale) and scale > 0
    info = solver.solve_at(1.0)
    assert info.converged and info.iterations <= 2 and info.residual_norm <= solver.residual_atol
    # within the resolution: the stress error is at most about one rounding step
    assert np.abs(solver.data.stress_values - exact.data.stress_values).max() <= 2 * tolerance
    assert np.abs(u.x.array - u_exact.x.array).max() < 1e-2 * np.abs(u_exact.x.array).max()


def test_noise_scale_is_the_residual_of_random_unit_stress_errors():
    solver, u, _ = build(2, LinearElastic(E, NU, "plane_strain"), Traction("right", (1.0, 0.0)))
    scale = residual_noise_scale(solver.data, u.function_space, solver.loading.bcs)
    rng = np.random.default_rng(0)
    norms = []
    form = fem.form(solver.residual - solver.loading.external_work())  # the internal forces alone
    for _ in range(200):
        errors = rng.standard_normal(solver.data.stress_values.shape)
        solver.data.stress_values[:] = errors / np.linalg.norm(errors, axis=1, keepdims=True)
        vector = fem.assemble_vector(form)
        dofs = np.concatenate([bc.dof_indices()[0] for bc in solver.loading.bcs])
        vector.array[dofs] = 0.0
        norms.append(np.linalg.norm(vector.array[: u.function_space.dofmap.index_map.size_local * 2]))
    assert np.sqrt(np.mean(np.square(norms))) == pytest.approx(scale, rel=0.1)


def test_a_singular_tangent_fails_the_solve_without_breaking_the_next_one():
    material = QuantisedElastic(1e-9, E, NU, "plane_strain")
    solver, _, _ = build(2, material, Displacement("right", 0, 0.01))
    material.singular = True
    info = solver.solve_at(1.0)
    assert info.reason == PETSc.SNES.ConvergedReason.DIVERGED_LINEAR_SOLVE
    solver.rollback()
    material.singular = False
    assert solver.solve_at(1.0).converged  # the failed factorisation is not reused


class FailingElastic(LinearElastic):
    """Linear elastic until told to fail: then its update raises, as a broken user material would."""

    fail = False

    def _update(self, strain, history, dt, tangent):
        if self.fail:
            raise RuntimeError("user material exploded")
        return super()._update(strain, history, dt, tangent)


def test_an_error_inside_the_material_reaches_the_caller_unchanged():
    material = FailingElastic(E, NU, "plane_strain")
    solver, _, _ = build(2, material, Displacement("right", 0, 0.01))
    material.fail = True
    with pytest.raises(RuntimeError, match="user material exploded"):
        solver.solve_at(1.0)
    material.fail = False
    solver.rollback()
    assert solver.solve_at(1.0).converged


def test_a_non_finite_iterate_fails_the_solve_without_breaking_the_next_one(monkeypatch):
    solver, _, _ = build(2, LinearElastic(E, NU, "plane_strain"), Displacement("right", 0, 0.01))
    evaluate = solver.data.evaluate_strain
    monkeypatch.setattr(solver.data, "evaluate_strain", lambda: np.full_like(evaluate(), np.inf))
    assert not solver.solve_at(1.0).converged
    monkeypatch.setattr(solver.data, "evaluate_strain", evaluate)
    solver.rollback()
    assert solver.solve_at(1.0).converged


def test_line_search_and_tolerances_reach_petsc():
    settings = NewtonSettings(line_search="bt", stress_tolerance=2.0)
    solver, _, _ = build(2, LinearElastic(E, NU, "plane_strain"), Traction("right", (1.0, 0.0)), settings=settings)
    snes = solver.problem.solver
    assert snes.getLineSearch().getType() == "bt"
    assert snes.getTolerances()[1] == pytest.approx(solver.residual_atol) and solver.residual_atol > settings.atol
    assert NewtonSettings().options()["snes_linesearch_type"] == "basic"
    assert "snes_force_iteration" not in NewtonSettings().options()
