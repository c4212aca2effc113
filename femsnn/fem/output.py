"""What a simulation leaves behind: a per-increment CSV table, a JSON report, ParaView fields and a plot.

Rows are appended and flushed as each increment converges, so a run that stops early keeps all its
converged work. Files are written by rank 0 (tables, report, plot) or collectively (VTX fields).
A resumed run rewrites the table from the rows before the checkpoint and writes its fields to
``*_from_<increment>.bp`` files beside those of the earlier part (VTX files cannot be appended to).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from dolfinx import fem, io
from dolfinx.mesh import Mesh
from matplotlib.figure import Figure
from mpi4py import MPI
from tqdm import tqdm

from femsnn.fem.quadrature import QuadratureData
from femsnn.mandel import mandel_scale, von_mises

TABLE_NAME, REPORT_NAME, PLOT_NAME = "steps.csv", "report.json", "load_displacement.png"
DISPLACEMENT_NAME, CELL_FIELDS_NAME = "displacement.bp", "cell_fields.bp"


class CellFields:
    """Cell averages (DG0) of stress components, von Mises stress and scalar history variables."""

    def __init__(self, data: QuadratureData, mesh: Mesh) -> None:
        self.data = data
        V0 = fem.functionspace(mesh, ("DG", 0))
        self._dofs = V0.dofmap.list[: data.n_cells, 0]
        names = [f"stress_{c}" for c in data.stress_state.component_names]
        self.stress = [fem.Function(V0, name=name) for name in names]
        self.von_mises = fem.Function(V0, name="von_mises_stress")
        self._scalars = [k for k, shape in data.history_spec.items() if shape == ()]
        self.history = [fem.Function(V0, name=name) for name in self._scalars]

    @property
    def functions(self) -> list[fem.Function]:
        """Every field, in the order they are written."""
        return [*self.stress, self.von_mises, *self.history]

    def update(self) -> None:
        """Refresh every field from the current stress and the committed history."""
        stress = self.data.stress_values
        n = stress.shape[1]
        tensor = self.data.cell_averages(stress) / mandel_scale(n)  # plain tensor components
        self._set(self.von_mises, self.data.cell_averages(von_mises(stress))[:, 0])
        for k, f in enumerate(self.stress):
            self._set(f, tensor[:, k])
        history = self.data.committed_history()
        for name, f in zip(self._scalars, self.history):
            self._set(f, self.data.cell_averages(history[name])[:, 0])

    def _set(self, f: fem.Function, values: np.ndarray) -> None:
        f.x.array[self._dofs] = values
        f.x.scatter_forward()


class RunOutput:
    """The output folder of one run (created by rank 0, which must exist before this is built)."""

    def __init__(
        self,
        directory: Path,
        comm: MPI.Comm,
        columns: list[str],
        *,
        n_steps: int,
        progress: bool,
        fields: tuple[fem.Function, CellFields] | None,
        previous: tuple[list[dict[str, float]], int] = ([], 0),
    ) -> None:
        """previous: the rows and completed load steps of the run before a resume."""
        self.directory, self.comm, self.columns = Path(directory), comm, columns
        rows, steps_done = previous
        self.rows: list[dict[str, float]] = list(rows)
        self._root = comm.rank == 0
        self._table = None
        if self._root:
            self._table_file = open(self.directory / TABLE_NAME, "w", newline="")
            self._table = csv.DictWriter(self._table_file, fieldnames=columns)
            self._table.writeheader()
            self._table.writerows(self.rows)
            self._table_file.flush()
        self._progress = tqdm(total=n_steps, initial=steps_done, unit="step", disable=not (progress and self._root))
        self._writers = []
        if fields is not None:
            u, cells = fields
            self._cells = cells
            policy = io.VTXMeshPolicy.reuse
            suffix = f"_from_{len(self.rows) + 1:04d}.bp" if self.rows else ".bp"
            self._writers = [
                io.VTXWriter(comm, self.directory / DISPLACEMENT_NAME.replace(".bp", suffix), [u], engine="BP4", mesh_policy=policy),
                io.VTXWriter(comm, self.directory / CELL_FIELDS_NAME.replace(".bp", suffix), cells.functions, engine="BP4", mesh_policy=policy),
            ]

    def add_row(self, row: dict[str, float], step_done: bool) -> None:
        """Append a converged increment to the table (flushed at once) and write the fields at it."""
        self.rows.append(row)
        if self._table is not None:
            self._table.writerow(row)
            self._table_file.flush()
        if self._writers:
            self._cells.update()
            for writer in self._writers:
                writer.write(float(len(self.rows)))  # increment number: load factors may go back and forth
        if step_done:
            self._progress.update(1)

    def table(self) -> dict[str, np.ndarray]:
        """The converged increments so far, column by column."""
        return {c: np.array([row[c] for row in self.rows]) for c in self.columns}

    def close(self, report: dict, plot: tuple[str, str, str, str] | None) -> None:
        """Close the table and field files, write the JSON report and the plot (x, y columns and their labels)."""
        self._progress.close()
        for writer in self._writers:
            writer.close()
        if not self._root:
            return
        self._table_file.close()
        (self.directory / REPORT_NAME).write_text(json.dumps(report, indent=2, default=str) + "\n")
        if plot is not None:
            self._plot(*plot, title=str(report.get("problem", "")))

    def _plot(self, x: str, y: str, xlabel: str, ylabel: str, title: str) -> None:
        """Load-displacement curve from rest through every converged increment."""
        table = self.table()
        fig = Figure(figsize=(5, 3.6), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(np.r_[0.0, table[x]], np.r_[0.0, table[y]], "o-", ms=3)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.savefig(self.directory / PLOT_NAME, dpi=150)
