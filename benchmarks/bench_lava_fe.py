"""The spiking material through Lava on the coarse thick-walled cylinder: its load-displacement curve against torch's.

Solves the pressurised cylinder (science notes §6, plane strain, P2, quadrature degree 2) with one plane-strain
spiking model twice: the torch network in float64 (:class:`~femsnn.materials.spiking.SpikingMaterial`) and the same network
run by a Lava worker (:class:`~femsnn.loihi.backend.LavaSpikingMaterial`, every quadrature point stepped from its
committed state at every Newton iteration). Same tangent (elastic or secant) and Newton settings for both; Newton
accepts the residual of the model's stress resolution (measured once, with torch). Prints per load step the inner
displacement of both runs, their difference, Newton iterations and the material time, and the ratio of material
time Lava / torch measured in this run; writes the curves to --plot.
Needs a plane-strain spiking model trained for the cylinder's material and the Lava worker environment.
Run: python benchmarks/bench_lava_fe.py [MODEL] [--backend sim-float] [--factors 0.5 0.8 0.95 1.0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dolfinx_solver  # noqa: F401  (must precede dolfinx)
import numpy as np
from dolfinx import fem
from mpi4py import MPI

from femsnn.fem.loads import BoundaryLoading
from femsnn.fem.mesh import read_mesh
from femsnn.fem.probes import DisplacementProbe
from femsnn.fem.problems import make_problem
from femsnn.fem.solver import EquilibriumSolver, NewtonSettings
from femsnn.fem.stepping import ConvergenceFailure, follow_load_program
from femsnn.loihi.backend import LavaSpikingMaterial
from femsnn.loihi.env import LavaEnvironmentError, lava_python
from femsnn.materials.base import Material
from femsnn.materials.spiking import SpikingMaterial
from femsnn.runtime import configure_torch

Q_LIM = 2 / np.sqrt(3) * 250.0 * np.log(1.3)  # limit pressure of the reference cylinder (MPa)
MESH = Path(__file__).resolve().parents[1] / "meshes" / "cylinder-h0.04.msh"
SHIPPED = Path(__file__).resolve().parents[1] / "femsnn" / "models" / "cylinder_j2_plane_strain.pt"


def solve(material: Material, mesh: Path, factors: list[float], settings: NewtonSettings, prefix: str) -> list[dict]:
    """Follow the load program; one row per converged increment (factor, inner u_x, iterations, material seconds)."""
    problem = make_problem("thick_cylinder", Q_LIM)
    data = read_mesh(mesh, MPI.COMM_SELF)
    u = fem.Function(fem.functionspace(data.mesh, ("Lagrange", 2, (2,))))
    solver = EquilibriumSolver(u, material, BoundaryLoading(u.function_space, data, list(problem.loads)), 2, settings, prefix)
    probe = DisplacementProbe(u, problem.probes[0].point, problem.probes[0].component)
    rows, spent = [], [0.0]

    def record(attempt) -> None:
        if attempt.converged:
            rows.append({"factor": attempt.factor, "u": probe.value(), "iterations": attempt.info.iterations,
                         "material_s": solver.timings.material - spent[0]})  # fmt: skip
            spent[0] = solver.timings.material

    try:
        follow_load_program(solver, factors, record, max_cutbacks=3)
    except ConvergenceFailure as exc:
        print(f"  {prefix}: {exc}")
    print(f"  {prefix}: {solver.data.n_points} quadrature points, {len(rows)} converged increments")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=SHIPPED, help="plane-strain spiking model for the cylinder's J2 material (default: the shipped one)")
    parser.add_argument("--mesh", type=Path, default=MESH)
    parser.add_argument("--factors", type=float, nargs="+", default=[0.5, 0.8, 0.95, 1.0], help="load factors q / q_lim")
    parser.add_argument("--backend", default="sim-float", choices=["sim-float", "sim-fixed"])
    parser.add_argument("--tangent", default="secant", choices=["elastic", "secant"])
    parser.add_argument("--max-it", type=int, default=25)
    parser.add_argument("--plot", type=Path, default=None, help="PNG of both load-displacement curves")
    args = parser.parse_args()
    try:
        lava_python()
    except LavaEnvironmentError as exc:
        sys.exit(f"bench_lava_fe: {exc}")
    configure_torch(1)
    torch_material = SpikingMaterial(args.model, "plane_strain", dtype="float64", tangent=args.tangent)
    resolution = torch_material.stress_resolution().resolution
    settings = NewtonSettings(max_it=args.max_it, stress_tolerance=resolution)
    print(f"model {args.model}; mesh {args.mesh.name}; tangent {args.tangent}; stress tolerance {resolution:.3g} MPa")
    start = time.perf_counter()
    runs = {"torch": solve(torch_material, args.mesh, args.factors, settings, "torch_")}
    print(f"  torch: {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    with LavaSpikingMaterial(args.model, "plane_strain", backend=args.backend, tangent=args.tangent) as lava:
        runs["lava"] = solve(lava, args.mesh, args.factors, settings, f"lava_{args.backend.replace('-', '_')}_")
    print(f"  lava {args.backend}: {time.perf_counter() - start:.1f} s")

    columns = ("q/q_lim", "u_x torch", "u_x lava", "|diff|", "rel", "it torch", "it lava", "mat s torch", "mat s lava")
    print(" ".join(f"{c:>{w}}" for c, w in zip(columns, (8, 12, 12, 10, 9, 8, 7, 11, 10))))
    for a, b in zip(runs["torch"], runs["lava"]):
        diff = abs(a["u"] - b["u"])
        print(f"{a['factor']:>8.4f} {a['u']:>12.6e} {b['u']:>12.6e} {diff:>10.3e} {diff / abs(a['u']):>9.2e} {a['iterations']:>8} "
              f"{b['iterations']:>7} {a['material_s']:>11.2f} {b['material_s']:>10.2f}")
    updates = {k: sum(r["material_s"] for r in rows) for k, rows in runs.items()}
    print(f"material time lava / torch: {updates['lava'] / updates['torch']:.1f}")
    if args.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 4))
        for name, style in (("torch", "-o"), ("lava", "--x")):
            rows = runs[name]
            label = name if name == "torch" else f"lava {args.backend}"
            ax.plot([0] + [r["u"] for r in rows], [0] + [r["factor"] * Q_LIM for r in rows], style, label=label)
        ax.set_xlabel("u_x(R_i, 0) [mm]")
        ax.set_ylabel("internal pressure q [MPa]")
        ax.set_title("spiking material, coarse cylinder")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
