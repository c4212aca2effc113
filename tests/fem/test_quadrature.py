"""Mandel strain at quadrature points agrees with femsnn.mandel; quadrature data layout and averages."""

from __future__ import annotations

import numpy as np
import pytest
from dolfinx import fem
from mpi4py import MPI

from femsnn.fem.quadrature import QuadratureData, stress_state_of
from femsnn.mandel import StressState, to_mandel
from tests.fem.helpers import box_mesh_data


@pytest.mark.parametrize("dim", [2, 3])
def test_strain_of_a_linear_field_is_the_mandel_vector_of_its_symmetric_gradient(dim):
    data = box_mesh_data(MPI.COMM_WORLD, dim, 2)
    gradient = np.random.default_rng(dim).normal(size=(dim, dim))
    V = fem.functionspace(data.mesh, ("Lagrange", 1, (dim,)))
    u = fem.Function(V)
    u.interpolate(lambda x: gradient @ x[:dim])
    state = stress_state_of(data.mesh)
    quad = QuadratureData(u, state, {}, degree=2)
    eps = np.zeros((3, 3))
    eps[:dim, :dim] = 0.5 * (gradient + gradient.T)  # plane strain: e_zz = e_xz = e_yz = 0
    expected = to_mandel(eps, state.size)
    np.testing.assert_allclose(quad.evaluate_strain(), np.broadcast_to(expected, (quad.n_points, state.size)), atol=1e-13)


def test_mesh_dimension_sets_the_stress_state():
    assert stress_state_of(box_mesh_data(MPI.COMM_WORLD, 2, 1).mesh) is StressState.PLANE_STRAIN
    assert stress_state_of(box_mesh_data(MPI.COMM_WORLD, 3, 1).mesh) is StressState.THREE_D


def test_stress_rows_are_views_of_the_function_and_averages_are_weighted():
    data = box_mesh_data(MPI.COMM_WORLD, 2, 2)
    u = fem.Function(fem.functionspace(data.mesh, ("Lagrange", 1, (2,))))
    quad = QuadratureData(u, StressState.PLANE_STRAIN, {"p": ()}, degree=2)
    quad.stress_values[:] = np.arange(quad.n_points)[:, None]
    per_cell = quad.stress.x.array[: quad.n_points * 4].reshape(quad.n_cells, quad.n_qp, 4)
    np.testing.assert_array_equal(per_cell[1, :, 0], np.arange(quad.n_qp, 2 * quad.n_qp))
    expected = per_cell[..., 0].mean(axis=1)  # degree-2 triangle rule: equal weights
    np.testing.assert_allclose(quad.cell_averages(quad.stress_values)[:, 0], expected)


def test_commit_copies_the_trial_history_and_nothing_else():
    data = box_mesh_data(MPI.COMM_WORLD, 2, 1)
    u = fem.Function(fem.functionspace(data.mesh, ("Lagrange", 1, (2,))))
    quad = QuadratureData(u, StressState.PLANE_STRAIN, {"p": (), "b": (4,)}, degree=1)
    quad.trial[:] = 1.0
    assert np.all(quad.committed_history()["p"] == 0.0)
    quad.commit()
    assert np.all(quad.committed_history()["b"] == 1.0)
    quad.trial[:] = 2.0
    assert np.all(quad.committed == 1.0)

