"""Cost of the reference cylinder (examples/cylinder/reference.toml) at ~10k and ~40k quadrature points.

Prints, per load step, the wall-clock split into material update / assembly / linear solve (the
rest of SNES) and the Newton iterations, then the totals and the shares measured in this run.
Run: python benchmarks/bench_cylinder.py  (serial; mpiexec -n 2 works too, rank 0 prints)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mpi4py import MPI

from femsnn.config import load_config
from femsnn.fem.simulate import SimulationConfig, run_simulation

REFERENCE = Path(__file__).resolve().parents[1] / "examples" / "cylinder" / "reference.toml"
SIZES = {"medium": "~10k quadrature points", "fine": "~40k quadrature points"}


def run(size: str, directory: Path) -> dict:
    """The reference cylinder on the named mesh size, without fields, plot or progress bar."""
    config = load_config(REFERENCE, SimulationConfig)
    config = config.model_copy(
        update={
            "mesh": config.mesh.model_copy(update={"size": size}),
            "output": config.output.model_copy(update={"directory": directory, "fields": False, "plot": False, "progress": False}),
        }
    )
    run_simulation(config)  # first run pays the JIT compilation and mesh generation
    return run_simulation(config)


def main() -> None:
    comm = MPI.COMM_WORLD
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(comm.bcast(scratch if comm.rank == 0 else None, root=0))
        for size, label in SIZES.items():
            result = run(size, directory / size)
            if comm.rank != 0:
                continue
            table, timings = result.table, result.report["timings"]
            print(f"\n{REFERENCE.name} on '{size}' mesh: {result.report['mesh']['quadrature_points']} quadrature points "
                  f"({label}), {result.report['mesh']['dofs']} dofs, {comm.size} rank(s)")
            print(f"{'step':>4} {'q/q_lim':>8} {'newton':>6} {'material s':>10} {'assembly s':>10} {'solve s':>8}")
            for k in range(len(table["step"])):
                print(f"{table['step'][k]:4d} {table['load_factor'][k]:8.4f} {table['newton_iterations'][k]:6d} "
                      f"{table['time_material'][k]:10.4f} {table['time_assembly'][k]:10.4f} {table['time_solve'][k]:8.4f}")
            total = timings["total"]
            shares = ", ".join(f"{k} {timings[k]:.2f} s ({timings[k] / total:.0%})" for k in ("material", "assembly", "solve"))
            print(f"total Newton time {total:.2f} s over {len(table['step'])} steps: {shares}; run wall {timings['wall']:.2f} s")


if __name__ == "__main__":
    main()
