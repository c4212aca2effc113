"""femsnn materials in your own dolfinx script: a J2 plate in tension, then the same plate with a spiking model.

Build the mesh and its facet tags with dolfinx as you like, wrap them in a MeshData (names -> tags), pick a
material, and let EquilibriumSolver + follow_load_program do Newton (PETSc SNES), commit/rollback and cut-back.

Run: python examples/own_dolfinx/plate_in_tension.py [--model MODEL.pt] [--cells N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import dolfinx_solver  # noqa: F401  (dolfinx-solver-real: before dolfinx and petsc4py)
import numpy as np
from dolfinx import fem, mesh
from mpi4py import MPI

from femsnn.fem.loads import BoundaryLoading, Displacement
from femsnn.fem.mesh import MeshData
from femsnn.fem.probes import ReactionProbe
from femsnn.fem.solver import EquilibriumSolver, NewtonSettings, material_stress_resolution
from femsnn.fem.stepping import follow_load_program
from femsnn.materials import J2Plasticity, Material
from femsnn.materials.spiking import SpikingMaterial

MODEL = Path(__file__).resolve().parents[2] / "femsnn" / "models" / "cylinder_j2_plane_strain.pt"


def tagged_square(comm: MPI.Comm, cells: int) -> MeshData:
    """A 10 mm x 10 mm square of triangles with its left, bottom and right edges tagged."""
    domain = mesh.create_rectangle(comm, [[0.0, 0.0], [10.0, 10.0]], [cells, cells], mesh.CellType.triangle)
    edges = {"left": (0, 0.0), "bottom": (1, 0.0), "right": (0, 10.0)}
    found = {name: mesh.locate_entities_boundary(domain, 1, lambda x, a=a, w=w: np.isclose(x[a], w)) for name, (a, w) in edges.items()}
    indices = np.concatenate(list(found.values()))
    values = np.concatenate([np.full(len(f), tag, dtype=np.int32) for tag, f in enumerate(found.values(), start=1)])
    order = np.argsort(indices)
    tags = mesh.meshtags(domain, 1, indices[order], values[order])
    return MeshData(domain, tags, None, {name: tag for tag, name in enumerate(edges, start=1)}, Path("<square>"))


def pull(material: Material, mesh_data: MeshData, stretch: float, steps: int) -> list[tuple[float, float, int]]:
    """Pull the right edge to u_x = stretch in equal steps (plane strain): rows of (u_x, reaction, Newton iterations)."""
    V = fem.functionspace(mesh_data.mesh, ("Lagrange", 2, (2,)))
    u = fem.Function(V)
    loading = BoundaryLoading(V, mesh_data, [Displacement("left", 0), Displacement("bottom", 1), Displacement("right", 0, stretch)])
    settings = NewtonSettings(stress_tolerance=material_stress_resolution(material))
    solver = EquilibriumSolver(u, material, loading, quadrature_degree=2, settings=settings)
    reaction = ReactionProbe(solver.residual, V, mesh_data.facets("right"), 0)
    rows = []

    def record(attempt) -> None:
        if attempt.converged:
            rows.append((attempt.factor * stretch, reaction.value(), attempt.info.iterations))

    follow_load_program(solver, np.linspace(0, 1, steps + 1)[1:], record, max_cutbacks=4)
    return rows


def main(argv: list[str] | None = None) -> dict[str, list[tuple[float, float, int]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL, help="spiking model (plane strain) to run beside J2")
    parser.add_argument("--cells", type=int, default=8, help="cells per side")
    parser.add_argument("--steps", type=int, default=8, help="load steps")
    args = parser.parse_args(argv)
    mesh_data = tagged_square(MPI.COMM_WORLD, args.cells)
    materials = {
        "j2": J2Plasticity(E=70e3, nu=0.3, sigma_y=250.0, H_iso=707.07, stress_state="plane_strain"),
        "spiking": SpikingMaterial(args.model, "plane_strain", tangent="surrogate"),
    }
    curves = {name: pull(material, mesh_data, stretch=0.05, steps=args.steps) for name, material in materials.items()}
    if MPI.COMM_WORLD.rank == 0:
        print(f"{'u_x [mm]':>9} {'F_x J2 [N/mm]':>14} {'F_x spiking':>12} {'its J2':>6} {'its spiking':>11}")
        for (ux, f_ref, it_ref), (_, f_snn, it_snn) in zip(curves["j2"], curves["spiking"]):
            print(f"{ux:9.4f} {f_ref:14.1f} {f_snn:12.1f} {it_ref:6d} {it_snn:11d}")
    return curves


if __name__ == "__main__":
    main()
