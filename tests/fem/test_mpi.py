"""The same run on 2 MPI ranks reproduces the 1-rank run (run with ``mpiexec -n 2 pytest -m mpi``).

Rank 0 first computes the 1-rank reference on MPI.COMM_SELF, then both ranks run on MPI.COMM_WORLD.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from femsnn.fem.simulate import run_simulation
from tests.fem.helpers import cylinder_config, gathered_field

pytestmark = pytest.mark.mpi

FACTORS = [0.6, 0.8, 0.9, 1.0]  # elastic, then spreading plasticity at the inner wall, up to q_lim


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_two_ranks_reproduce_the_one_rank_run(tmp_path):
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        pytest.skip("run under mpiexec -n 2")
    shared = Path(comm.bcast(str(tmp_path), root=0))  # every rank must write to the same folder
    serial = None
    if comm.rank == 0:
        result = run_simulation(cylinder_config(shared / "serial", FACTORS), MPI.COMM_SELF)
        history = np.sort(result.history["equivalent_plastic_strain"])
        serial = (result.table, gathered_field(result.displacement), history)
    parallel = run_simulation(cylinder_config(shared / "parallel", FACTORS), comm)
    coords, values = gathered_field(parallel.displacement)
    history = np.sort(np.concatenate(comm.allgather(parallel.history["equivalent_plastic_strain"])))
    checks = None
    if comm.rank == 0:
        table, (serial_coords, serial_values), serial_history = serial
        checks = {
            "newton iterations": np.array_equal(table["newton_iterations"], parallel.table["newton_iterations"]),
            "u_x_inner": relative_difference(parallel.table["u_x_inner"], table["u_x_inner"]),
            "reaction": relative_difference(parallel.table["reaction_y_symmetry"], table["reaction_y_symmetry"]),
            "dof coordinates": float(np.max(np.abs(coords - serial_coords))),
            "displacement field": relative_difference(values, serial_values),
            "equivalent plastic strain": relative_difference(history, serial_history),
        }
    checks = comm.bcast(checks, root=0)
    assert parallel.report["mpi_size"] == 2 and history.max() > 0
    assert checks.pop("newton iterations")
    assert all(error < 1e-10 for error in checks.values()), checks
