"""Material data at quadrature points: Mandel strain of a displacement, stress and tangent fields, history.

A quadrature-space Function has an identity dofmap, so its array reshapes to (cells, points, *shape)
with the rank's owned cells first. The material is evaluated on owned cells only (assembly over
cells never reads ghost-cell quadrature data), as one batch of ``n_owned_cells * points`` points.
"""

from __future__ import annotations

import basix
import basix.ufl
import numpy as np
import ufl
from dolfinx import fem
from dolfinx.mesh import Mesh

from femsnn.mandel import StressState, mandel_scale
from femsnn.materials.base import History, MaterialResponse, history_width, pack_history, unpack_history

_AXES = "xyz"


def mandel_strain(u: ufl.core.expr.Expr, stress_state: StressState) -> ufl.core.expr.Expr:
    """Small-strain Mandel vector of a 2D (plane strain, e_zz = 0) or 3D displacement, in femsnn.mandel order."""
    eps = ufl.sym(ufl.grad(u))
    dim = ufl.shape(eps)[0]
    scale = mandel_scale(stress_state.size)
    components = []
    for k, name in enumerate(stress_state.component_names):
        i, j = _AXES.index(name[0]), _AXES.index(name[1])
        components.append(float(scale[k]) * eps[i, j] if max(i, j) < dim else 0.0)
    return ufl.as_vector(components)


def stress_state_of(mesh: Mesh) -> StressState:
    """The stress state a mesh implies: plane strain on a 2D mesh, 3d on a 3D mesh."""
    tdim, gdim = mesh.topology.dim, mesh.geometry.dim
    if tdim != gdim or tdim not in (2, 3):
        raise ValueError(
            f"femsnn solves plane strain on 2D meshes and 3d on 3D meshes; got a mesh of topological "
            f"dimension {tdim} in {gdim}D space"
        )
    return StressState.PLANE_STRAIN if tdim == 2 else StressState.THREE_D


class QuadratureData:
    """Strain, stress, tangent and committed/trial history at the quadrature points of the owned cells."""

    def __init__(
        self, u: fem.Function, stress_state: StressState, history_spec: dict, degree: int, history_dtype: np.dtype = np.float64
    ) -> None:
        mesh = u.function_space.mesh
        n = stress_state.size
        self.stress_state, self.history_spec, self.degree = stress_state, dict(history_spec), degree
        cell = mesh.basix_cell()
        points, weights = basix.make_quadrature(cell, degree)
        self.weights = weights
        self.n_cells = mesh.topology.index_map(mesh.topology.dim).size_local
        self.n_qp = points.shape[0]
        self.n_points = self.n_cells * self.n_qp
        self.dx = ufl.Measure(
            "dx", domain=mesh, metadata={"quadrature_degree": degree, "quadrature_scheme": "default"}
        )
        self.stress = fem.Function(
            fem.functionspace(mesh, basix.ufl.quadrature_element(cell, value_shape=(n,), degree=degree)), name="stress"
        )
        self.tangent = fem.Function(
            fem.functionspace(mesh, basix.ufl.quadrature_element(cell, value_shape=(n, n), degree=degree)),
            name="tangent",
        )
        # views of the owned part of the Function arrays, one row per quadrature point
        self.stress_values = self.stress.x.array[: self.n_points * n].reshape(self.n_points, n)
        self.tangent_values = self.tangent.x.array[: self.n_points * n * n].reshape(self.n_points, n, n)
        width = history_width(self.history_spec)
        # packed (points, width) in the material's history dtype: committed, and trial (what rollback needs)
        self.committed = np.zeros((self.n_points, width), dtype=history_dtype)
        self.trial = np.zeros((self.n_points, width), dtype=history_dtype)
        self._cells = np.arange(self.n_cells, dtype=np.int32)
        self._strain_expr = fem.Expression(mandel_strain(u, stress_state), points)
        self._strain = np.zeros((self.n_cells, self.n_qp, n))
        self._mesh = mesh

    def set_committed(self, history: History) -> None:
        """Overwrite the committed history (e.g. a material's initial_history) and reset the trial to it."""
        pack_history(history, self.history_spec, self.committed)
        self.trial[:] = self.committed

    def committed_history(self) -> History:
        """Views {name: (points, *shape)} of the committed history (the material must not write to them)."""
        return unpack_history(self.committed, self.history_spec)

    def evaluate_strain(self) -> np.ndarray:
        """Mandel strain (points, n) of the current displacement, from the expression compiled once."""
        self._strain_expr.eval(self._mesh, self._cells, self._strain)
        return self._strain.reshape(self.n_points, -1)

    def response_arrays(self) -> MaterialResponse:
        """The stress and tangent Functions' owned rows and views of the trial history, for ``update(out=...)``."""
        return MaterialResponse(self.stress_values, self.tangent_values, unpack_history(self.trial, self.history_spec))

    def commit(self) -> None:
        """Make the trial history the committed one (call only after a converged step)."""
        self.committed[:] = self.trial

    def point_volumes(self) -> fem.Function:
        """Scalar quadrature Function of each point's weight times |det J|: its share of the domain's volume.

        Assembling the integral of a quadrature-space test function gives exactly these numbers.
        """
        V = fem.functionspace(self._mesh, basix.ufl.quadrature_element(self._mesh.basix_cell(), value_shape=(), degree=self.degree))
        volumes = fem.Function(V, name="point_volume")
        volumes.x.array[:] = fem.assemble_vector(fem.form(ufl.TestFunction(V) * self.dx)).array
        volumes.x.scatter_forward()  # a quadrature dof belongs to one cell: this only fills the ghost cells
        return volumes

    def cell_averages(self, values: np.ndarray) -> np.ndarray:
        """Quadrature-weighted mean over each owned cell of per-point values (points, *shape)."""
        per_cell = values.reshape(self.n_cells, self.n_qp, -1)
        return np.einsum("q,cqk->ck", self.weights / self.weights.sum(), per_cell)
