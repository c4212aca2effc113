"""Scalar results of a displacement solution, identical on every rank: point displacements and reactions."""

from __future__ import annotations

import numpy as np
import ufl
from dolfinx import fem, geometry
from mpi4py import MPI


class DisplacementProbe:
    """One displacement component at a point, evaluated by the lowest rank owning a cell that contains it."""

    def __init__(self, u: fem.Function, point: tuple[float, ...], component: int) -> None:
        mesh = u.function_space.mesh
        comm = mesh.comm
        tdim = mesh.topology.dim
        owned = np.arange(mesh.topology.index_map(tdim).size_local, dtype=np.int32)
        x = np.zeros((1, 3))
        x[0, : len(point)] = point
        candidates = geometry.compute_collisions_points(geometry.bb_tree(mesh, tdim, entities=owned), x)
        cells = geometry.compute_colliding_cells(mesh, candidates, x).links(0)
        self.owner = comm.allreduce(comm.rank if len(cells) else comm.size, op=MPI.MIN)
        if self.owner == comm.size:
            raise ValueError(f"probe point {tuple(point)} is outside the mesh")
        self.u, self.x, self.component = u, x, component
        self.cell = cells[:1] if len(cells) else np.zeros(0, dtype=np.int32)

    def value(self) -> float:
        """The displacement component at the point (collective)."""
        comm = self.u.function_space.mesh.comm
        local = float(self.u.eval(self.x, self.cell)[self.component]) if comm.rank == self.owner else None
        return comm.bcast(local, root=self.owner)


class ReactionProbe:
    """Resultant support force along one axis on a boundary: the residual tested with that axis's unit field there.

    residual(v) = internal minus external virtual work, so the value is the force the supports exert.
    """

    def __init__(self, residual: ufl.Form, V: fem.FunctionSpace, facets: np.ndarray, component: int) -> None:
        mesh = V.mesh
        fdim = mesh.topology.dim - 1
        mesh.topology.create_connectivity(fdim, mesh.topology.dim)
        indicator = fem.Function(V)
        indicator.x.array[fem.locate_dofs_topological(V.sub(component), fdim, facets)] = 1.0
        self._form = fem.form(ufl.action(residual, indicator))
        self._comm = mesh.comm

    def value(self) -> float:
        """The reaction force at the current stress (collective)."""
        return self._comm.allreduce(fem.assemble_scalar(self._form), op=MPI.SUM)
