"""Run the cylinder examples and compare them with the closed-form answers of femsnn.fem.analytic.

Elastic compliance u_x(R_i, 0)/q (Lame), first yield q_e, the collapse load q_lim of the perfectly
plastic wall, and the mesh-converged displacements of science notes section 6 at q/q_lim = 1.0208
and 1.0488. Writes cylinder_vs_analytic.png next to the runs' outputs.
Run: python examples/cylinder/compare_analytic.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from mpi4py import MPI

from femsnn.fem.analytic import ThickCylinder
from femsnn.fem.simulate import SimulationFailed, run_simulation_from_file

HERE = Path(__file__).resolve().parent
CONVERGED = {1.0208: 0.013225, 1.0488: 0.023841}  # u_x(R_i, 0) at h = 0.005 (science notes section 6)


def main() -> None:
    exact = ThickCylinder()
    reference = run_simulation_from_file(HERE / "reference.toml")
    try:
        collapse = run_simulation_from_file(HERE / "perfect_plasticity.toml")
    except SimulationFailed as failure:  # expected: the load cannot pass the limit load
        collapse = failure.result
    if MPI.COMM_WORLD.rank != 0:
        return
    table = reference.table
    elastic = table["newton_iterations"] == 1
    compliance = table["u_x_inner"][elastic] / table["load"][elastic]
    print(f"compliance u_x/q   FE {compliance.mean():.6e}   Lame {exact.compliance():.6e}   "
          f"rel. diff {compliance.mean() / exact.compliance() - 1:+.2e}")
    print(f"first yield q_e    analytic {exact.first_yield_pressure():.3f} MPa; last elastic FE step at "
          f"{table['load'][elastic][-1]:.3f} MPa, first plastic at {table['load'][~elastic][0]:.3f} MPa")
    q_last = collapse.table["load"][-1]
    print(f"collapse load      FE (last converged, H = 0) {q_last:.3f} MPa   q_lim {exact.limit_pressure():.3f} MPa   "
          f"rel. diff {q_last / exact.limit_pressure() - 1:+.2e}")
    for ratio, expected in CONVERGED.items():
        k = int(np.argmin(np.abs(table["load_factor"] - ratio)))
        print(f"u_x at q/q_lim {ratio}: FE {table['u_x_inner'][k]:.6f}   mesh-converged {expected:.6f}   "
              f"rel. diff {table['u_x_inner'][k] / expected - 1:+.2e}")
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(np.r_[0, table["u_x_inner"]], np.r_[0, table["load"]], "o-", ms=3, label="FE, E_t = E/100")
    ax.plot(np.r_[0, collapse.table["u_x_inner"]], np.r_[0, collapse.table["load"]], "s-", ms=3, label="FE, H = 0")
    u = np.linspace(0, table["u_x_inner"].max(), 2)
    ax.plot(u, u / exact.compliance(), "k:", label="Lame (elastic)")
    ax.axhline(exact.limit_pressure(), color="r", ls="--", label="q_lim")
    ax.set_xlabel("u_x(R_i, 0) [mm]")
    ax.set_ylabel("pressure q [MPa]")
    ax.set_xlim(0, u[-1])
    ax.set_ylim(0, 1.3 * exact.limit_pressure())
    ax.legend()
    path = (reference.directory.parent / "cylinder_vs_analytic.png").resolve()
    fig.savefig(path, dpi=150)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
