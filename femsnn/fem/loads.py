"""Boundary conditions proportional to one load factor: prescribed displacements, tractions, pressures.

Every load is "value per unit load factor" on a named facet group; setting the factor updates the
Dirichlet values and the scalar that multiplies the Neumann terms, without recompiling any form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ufl
from dolfinx import default_scalar_type, fem

from femsnn.fem.mesh import MeshData


@dataclass(frozen=True)
class Displacement:
    """Prescribed displacement component: u[component] = factor * value on the boundary (0: a support)."""

    boundary: str
    component: int
    value: float = 0.0


@dataclass(frozen=True)
class Traction:
    """Surface traction vector (force per area) = factor * value on the boundary."""

    boundary: str
    value: tuple[float, ...]


@dataclass(frozen=True)
class Pressure:
    """Normal pressure (positive pushes into the body) = factor * value on the boundary."""

    boundary: str
    value: float


Load = Displacement | Traction | Pressure


class BoundaryLoading:
    """Dirichlet conditions and external work of a list of loads on a displacement space."""

    def __init__(self, V: fem.FunctionSpace, mesh_data: MeshData, loads: list[Load]) -> None:
        mesh = V.mesh
        gdim, fdim = mesh.geometry.dim, mesh.topology.dim - 1
        mesh.topology.create_connectivity(fdim, mesh.topology.dim)
        self.factor = fem.Constant(mesh, default_scalar_type(0.0))
        self.bcs: list[fem.DirichletBC] = []
        self._prescribed: list[tuple[fem.Constant, float]] = []
        ds = ufl.Measure("ds", domain=mesh, subdomain_data=mesh_data.facet_tags)
        v = ufl.TestFunction(V)
        normal = ufl.FacetNormal(mesh)
        work = []
        for load in loads:
            facets = mesh_data.facets(load.boundary)
            tag = mesh_data.tags[load.boundary]
            if isinstance(load, Displacement):
                if not 0 <= load.component < gdim:
                    raise ValueError(f"displacement component {load.component} on '{load.boundary}' is not in 0..{gdim - 1}")
                value = fem.Constant(mesh, default_scalar_type(0.0))
                dofs = fem.locate_dofs_topological(V.sub(load.component), fdim, facets)
                self.bcs.append(fem.dirichletbc(value, dofs, V.sub(load.component)))
                self._prescribed.append((value, float(load.value)))
            elif isinstance(load, Traction):
                if len(load.value) != gdim:
                    raise ValueError(f"traction on '{load.boundary}' needs {gdim} components, got {len(load.value)}")
                t = fem.Constant(mesh, np.asarray(load.value, dtype=default_scalar_type))
                work.append(ufl.dot(t, v) * ds(tag))
            else:
                p = fem.Constant(mesh, default_scalar_type(load.value))
                work.append(-p * ufl.dot(normal, v) * ds(tag))
        self._work = sum(work[1:], work[0]) if work else None

    def external_work(self) -> ufl.Form | None:
        """Linear form factor * (tractions and pressures) . v, or None without Neumann loads."""
        return None if self._work is None else self.factor * self._work

    def set_factor(self, factor: float) -> None:
        """Scale every load to the given load factor."""
        self.factor.value = factor
        for constant, value in self._prescribed:
            constant.value = factor * value
