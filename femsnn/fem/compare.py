"""``femsnn compare``: one problem solved with a reference material and with a spiking (network) material.

The config shares [problem], [mesh], [loading] and [solver] (as in ``femsnn simulate``; a solver
``stress_tolerance = "material"`` asks each material, so the reference keeps its tight tolerance),
has one material section each, [reference] and [spiking], optional [spiking_solver] keys that replace
those of [solver] for the spiking run, and [output]. Everything (both materials,
their models, the mesh) is checked before any output is written. Both runs use the same mesh and the
same program of load factors; they are compared at the program's target factors (cut-back sub-steps
may differ), wherever both converged.

Errors per load step: the relative L2 error of the displacement field (int |u_s - u_r|^2 / int |u_r|^2,
square-rooted), the same of the stress over the quadrature points (Mandel norm, i.e. the Frobenius
norm of the tensor), and the curve error |y_s - y_r| / max over steps |y_r| of the load-displacement
curve's response y: the probe displacement of a load-controlled problem, the reaction force of a
displacement-controlled one (scaling by the largest reference value keeps zero crossings of cyclic
programs finite).

Open loop: the spiking material is also driven, point by point, along the reference run's strains at
the load steps (``femsnn.materials.driver.drive``), without any FE solve. Its stress error there (relative
L2 as above) and its mean von Mises stress minus the reference's (volume-weighted, MPa) are the model's
own error on the true path; the closed-loop errors add what equilibrium with that model makes of it. Near
a limit load a small von Mises bias moves the curve a lot (README: the spiking material in dolfinx).

Output folder:
    reference/, spiking/           each run's own simulate output (table, report, plot, fields)
    comparison.csv                 one row per load step: responses, errors (closed and open loop), Newton
                                   iterations, failed solves and seconds of both runs, the spiking
                                   material's diagnostics
    summary.json                   statuses, per-step rows, max / mean errors, totals, timings, mean
                                   diagnostics over the compared steps
    load_displacement.png          both load-displacement curves
    comparison.png                 errors, Newton iterations and seconds per load step
    comparison_displacement.bp     ParaView VTX: displacement of both runs and their difference
    comparison_cells.bp            cell averages: von Mises stress of both and their difference, the
                                   reference's scalar history (equivalent plastic strain) and the
                                   spiking material's diagnostics (per-point spike rates)
A material may report diagnostics through an optional ``diagnostics(history) -> {name: (points,)}``
of its committed state (for a spiking material: the share of each layer's neurons that spiked, e.g.
``spike_rate_layer0``); the table and summary carry their means over all points, under those names.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ufl
from dolfinx import fem, io
from matplotlib.figure import Figure
from mpi4py import MPI
from pydantic import ValidationError, ValidationInfo, field_validator

from femsnn.config import ConfigError, Strict, load_config, parse_config
from femsnn.fem.simulate import (
    LoadingSection,
    MeshSection,
    OutputSection,
    ProblemSection,
    SimulationConfig,
    SimulationFailed,
    SimulationResult,
    SolverSection,
    prepare,
    run_simulation,
)
from femsnn.fem.problems import Problem
from femsnn.fem.quadrature import QuadratureData
from femsnn.fem.solver import EquilibriumSolver
from femsnn.mandel import von_mises
from femsnn.materials.base import Material
from femsnn.materials.driver import drive
from femsnn.materials.registry import MaterialConfig, parse_material_config

RUNS = ("reference", "spiking")
TABLE_NAME, SUMMARY_NAME = "comparison.csv", "summary.json"
CURVE_PLOT, STEPS_PLOT = "load_displacement.png", "comparison.png"
DISPLACEMENT_FIELDS, CELL_FIELDS = "comparison_displacement.bp", "comparison_cells.bp"


class CompareOutputSection(Strict):
    """[output]: the folder (created only once everything checked out) and what to write into it."""

    directory: Path
    fields: bool = True  # the comparison's VTX files and each run's own
    plot: bool = True
    progress: bool = True

    @field_validator("directory")
    @classmethod
    def _relative_to_config(cls, path: Path, info: ValidationInfo) -> Path:
        base = (info.context or {}).get("base_dir", Path.cwd())
        return (Path(base) / path).resolve()


class CompareConfig(Strict):
    """A whole ``femsnn compare`` file."""

    problem: ProblemSection
    mesh: MeshSection
    reference: MaterialConfig
    spiking: MaterialConfig
    loading: LoadingSection
    solver: SolverSection = SolverSection()
    spiking_solver: dict[str, Any] = {}  # [solver] keys that differ for the spiking run
    output: CompareOutputSection

    @field_validator("spiking_solver")
    @classmethod
    def _solver_keys(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        """The overrides must be valid [solver] keys and values on their own."""
        try:
            SolverSection.model_validate(overrides)
        except ValidationError as exc:
            problems = ["unknown key" if e["type"] == "extra_forbidden" else e["msg"] for e in exc.errors()]
            raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {p}" for e, p in zip(exc.errors(), problems))) from None
        return overrides

    def solver_of(self, run: str) -> SolverSection:
        """[solver], with [spiking_solver] on top for the spiking run."""
        if run == "reference" or not self.spiking_solver:
            return self.solver
        return SolverSection.model_validate({**self.solver.model_dump(exclude_unset=True), **self.spiking_solver})

    @field_validator("reference", "spiking", mode="before")
    @classmethod
    def _known_material(cls, data: object, info: ValidationInfo) -> object:
        if not isinstance(data, dict):
            return data
        try:
            return parse_material_config(data, (info.context or {}).get("base_dir"))
        except ConfigError as exc:  # one line per section: "spiking: Value error, E: ...; nu: ..."
            lines = str(exc).splitlines()
            raise ValueError("; ".join(line.strip() for line in lines[1:]) or lines[0]) from None

    def simulation(self, run: str) -> SimulationConfig:
        """The simulate config of one run: the shared sections, its material, its own output subfolder."""
        output = OutputSection(
            directory=self.output.directory / run,
            fields=self.output.fields,
            plot=self.output.plot,
            progress=self.output.progress,
            checkpoint=False,
        )
        material = getattr(self, run)
        return SimulationConfig(
            problem=self.problem, mesh=self.mesh, material=material, loading=self.loading, solver=self.solver_of(run), output=output
        )


@dataclass(frozen=True)
class ComparisonResult:
    """A finished comparison: the summary (the content of summary.json) and both runs' results."""

    summary: dict
    directory: Path
    runs: dict[str, SimulationResult]

    @property
    def completed(self) -> bool:
        """Whether both runs went through the whole load program."""
        return all(status == "completed" for status in self.summary["status"].values())


def run_comparison_from_file(path: str | Path, comm: MPI.Comm = MPI.COMM_WORLD) -> ComparisonResult:
    """Load, validate and run a comparison TOML file."""
    return run_comparison(load_config(path, CompareConfig), comm)


def run_comparison(config: CompareConfig | dict, comm: MPI.Comm = MPI.COMM_WORLD) -> ComparisonResult:
    """Run both materials on the configured problem and compare them; ConfigError before any work for bad input.

    A run that stops (no convergence) does not stop the comparison: its status and message go to the
    summary, and the load steps it reached are compared.
    """
    if not isinstance(config, CompareConfig):
        config = parse_config(config, CompareConfig)
    simulations = {run: config.simulation(run) for run in RUNS}
    reference = prepare(simulations["reference"], comm)
    prepared = {"reference": reference, "spiking": prepare(simulations["spiking"], comm, reference.mesh_data)}
    directory = config.output.directory
    if comm.rank == 0:
        directory.mkdir(parents=True, exist_ok=True)
    comm.barrier()
    snapshots = _ReferenceSnapshots()
    comparison = _FieldComparison(directory, comm, snapshots, config.output.fields)
    observers = {"reference": snapshots, "spiking": comparison}
    results, status, messages = {}, {}, {}
    for run in RUNS:
        try:
            results[run] = run_simulation(simulations[run], comm, prepared=prepared[run], observer=observers[run])
            status[run], messages[run] = "completed", None
        except SimulationFailed as exc:
            results[run], status[run], messages[run] = exc.result, "failed", str(exc)
    comparison.close()
    open_loop = _open_loop_errors(prepared["spiking"].material, snapshots, config.loading.dt, comm)
    problem = config.problem.definition()
    response = problem.probes[0].name if problem.force == "load" else problem.force
    steps = _step_rows(config.loading.program(), results, comparison.errors, open_loop, response, config.problem.load)
    summary = _summary(steps, results, status, messages, response, comm)
    if comm.rank == 0:
        _write_table(directory / TABLE_NAME, steps)
        (directory / SUMMARY_NAME).write_text(json.dumps(summary, indent=2, default=str) + "\n")
        if config.output.plot:
            _plot_curves(directory / CURVE_PLOT, results, problem)
            _plot_steps(directory / STEPS_PLOT, steps)
    return ComparisonResult(summary, directory, results)


class _ReferenceSnapshots:
    """Observer of the reference run: its displacement, stress and scalar history at every load step, the
    strain at the quadrature points (to drive the spiking material along) and the points' volumes."""

    def __init__(self) -> None:
        self.steps: dict[int, dict[str, np.ndarray]] = {}
        self.strain: dict[int, np.ndarray] = {}
        self.volumes: np.ndarray | None = None

    def __call__(self, step: int, load_factor: float, solver: EquilibriumSolver) -> None:
        data = solver.data
        history = data.committed_history()
        scalars = {name: history[name].copy() for name, shape in data.history_spec.items() if shape == ()}
        self.steps[step] = {"displacement": solver.u.x.array.copy(), "stress": data.stress_values.copy(), **scalars}
        self.strain[step] = data.evaluate_strain().copy()
        if self.volumes is None:  # collective: on every rank at the first step
            self.volumes = data.point_volumes().x.array[: data.n_points].copy()

    def path(self) -> list[int]:
        """The load steps 1, 2, ... the reference converged without a gap (the path a material can be driven along)."""
        steps = []
        while len(steps) + 1 in self.strain:
            steps.append(len(steps) + 1)
        return steps


def _open_loop_errors(material: Material, reference: _ReferenceSnapshots, dt: float, comm: MPI.Comm) -> dict[int, dict]:
    """Per load step: the material driven along the reference strains, its relative L2 stress error and mean
    von Mises difference (MPa, volume-weighted) against the reference stress (collective)."""
    steps = reference.path()
    steps = steps[: comm.allreduce(len(steps), op=MPI.MIN)]  # the same steps on every rank
    if not steps:
        return {}
    strain = np.stack([reference.strain[s] for s in steps], axis=1)
    stress = drive(material, strain, dt, keep_history=False).stress if len(strain) else np.empty((0, len(steps), material.size))
    w = reference.volumes
    errors = {}
    for t, step in enumerate(steps):
        ref = reference.steps[step]["stress"]
        bias = comm.allreduce(np.array([w @ (von_mises(stress[:, t]) - von_mises(ref)), w.sum()]), op=MPI.SUM)
        errors[step] = {
            "open_loop_stress_error": _stress_error(w, stress[:, t], ref, comm),
            "open_loop_von_mises_bias": float(bias[0] / bias[1]),
        }
    return errors


def _stress_error(volumes: np.ndarray, stress: np.ndarray, reference: np.ndarray, comm: MPI.Comm) -> float:
    """Relative L2 error of (points, n) stresses against the reference's, quadrature-weighted (collective)."""
    sums = comm.allreduce(np.array([volumes @ np.sum((stress - reference) ** 2, axis=1), volumes @ np.sum(reference**2, axis=1)]), op=MPI.SUM)
    return _ratio(sums[0], sums[1])


class _FieldComparison:
    """Observer of the spiking run: errors against the reference snapshot of each step, and the VTX fields."""

    def __init__(self, directory: Path, comm: MPI.Comm, reference: _ReferenceSnapshots, fields: bool) -> None:
        self.directory, self.comm, self.reference, self.fields = directory, comm, reference, fields
        self.errors: dict[int, dict] = {}
        self._writers: list[io.VTXWriter] = []
        self._ready = False

    def _setup(self, solver: EquilibriumSolver) -> None:
        """Functions, forms and writers on the spiking run's spaces (the reference ran on the same mesh)."""
        V, mesh, data = solver.u.function_space, solver.u.function_space.mesh, solver.data
        self.u = {run: fem.Function(V, name=f"displacement_{run}") for run in (*RUNS, "difference")}
        dx = ufl.dx(domain=mesh)
        self._norms = {
            "difference": fem.form(ufl.inner(self.u["difference"], self.u["difference"]) * dx),
            "reference": fem.form(ufl.inner(self.u["reference"], self.u["reference"]) * dx),
        }
        V0 = fem.functionspace(mesh, ("DG", 0))
        self._cell_dofs = V0.dofmap.list[: data.n_cells, 0]
        self.cells: dict[str, fem.Function] = {}
        for name in ("von_mises_reference", "von_mises_spiking", "von_mises_difference"):
            self.cells[name] = fem.Function(V0, name=name)
        snapshot = next(iter(self.reference.steps.values()))
        for name in snapshot.keys() - {"displacement", "stress"}:
            self.cells[f"reference_{name}"] = fem.Function(V0, name=f"reference_{name}")
        diagnostics = _diagnostics(solver)
        for name in diagnostics:
            self.cells[f"spiking_{name}"] = fem.Function(V0, name=f"spiking_{name}")
        if self.fields:
            policy = io.VTXMeshPolicy.reuse
            self._writers = [
                io.VTXWriter(self.comm, self.directory / DISPLACEMENT_FIELDS, list(self.u.values()), engine="BP4", mesh_policy=policy),
                io.VTXWriter(self.comm, self.directory / CELL_FIELDS, list(self.cells.values()), engine="BP4", mesh_policy=policy),
            ]
        self._ready = True

    def __call__(self, step: int, load_factor: float, solver: EquilibriumSolver) -> None:
        reference = self.reference.steps.get(step)
        if reference is None:  # the reference did not converge this far
            return
        if not self._ready:
            self._setup(solver)
        comm, data = self.comm, solver.data
        if reference["displacement"].shape != solver.u.x.array.shape:
            raise RuntimeError("the reference and spiking runs have different displacement layouts")
        self.u["reference"].x.array[:] = reference["displacement"]
        self.u["spiking"].x.array[:] = solver.u.x.array
        self.u["difference"].x.array[:] = solver.u.x.array - reference["displacement"]
        norms = {k: comm.allreduce(fem.assemble_scalar(form), op=MPI.SUM) for k, form in self._norms.items()}
        diagnostics = _diagnostics(solver)
        n_points = comm.allreduce(data.n_points, op=MPI.SUM)
        self.errors[step] = {
            "displacement_error": _ratio(norms["difference"], norms["reference"]),
            "stress_error": _stress_error(self.reference.volumes, data.stress_values, reference["stress"], comm),
            "diagnostics": {k: comm.allreduce(float(v.sum()), op=MPI.SUM) / n_points for k, v in diagnostics.items()},
        }
        if self.fields:
            self._write_fields(float(step), data, reference, diagnostics)

    def _write_fields(self, time: float, data: QuadratureData, reference: dict, diagnostics: dict[str, np.ndarray]) -> None:
        """Cell averages of von Mises stress, reference history and diagnostics, then both VTX files."""
        mises = {run: data.cell_averages(von_mises(stress))[:, 0] for run, stress in (("reference", reference["stress"]), ("spiking", data.stress_values))}
        values = {
            "von_mises_reference": mises["reference"],
            "von_mises_spiking": mises["spiking"],
            "von_mises_difference": mises["spiking"] - mises["reference"],
            **{f"reference_{k}": data.cell_averages(v)[:, 0] for k, v in reference.items() if k not in ("displacement", "stress")},
            **{f"spiking_{k}": data.cell_averages(v)[:, 0] for k, v in diagnostics.items()},
        }
        for name, cell_values in values.items():
            f = self.cells[name]
            f.x.array[self._cell_dofs] = cell_values
            f.x.scatter_forward()
        for writer in self._writers:
            writer.write(time)

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


def _diagnostics(solver: EquilibriumSolver) -> dict[str, np.ndarray]:
    """The material's per-point diagnostics of the committed state, if it reports any."""
    report = getattr(solver.material, "diagnostics", None)
    return {} if report is None else {k: np.asarray(v, dtype=float) for k, v in report(solver.data.committed_history()).items()}


def _ratio(numerator: float, denominator: float) -> float:
    """sqrt(numerator / denominator): a relative L2 error (inf when the reference is zero and the difference not)."""
    if denominator > 0:
        return float(np.sqrt(numerator / denominator))
    return 0.0 if numerator == 0 else float("inf")


def curve_error_scale(reference: np.ndarray) -> float:
    """The curve error's denominator: the largest finite |response| of the reference run (0 if none)."""
    return float(np.abs(reference[np.isfinite(reference)]).max(initial=0.0))


#: the columns of a step row other than the material's diagnostics
_OPEN_LOOP_KEYS = ("open_loop_stress_error", "open_loop_von_mises_bias")
_STEP_KEYS = {
    "step", "load_factor", "load", "curve_error", "displacement_error", "stress_error", *_OPEN_LOOP_KEYS,
    *(f"{key}_{run}" for key in ("response", "newton_iterations", "failed_solves", "seconds", "converged") for run in RUNS),
}  # fmt: skip


def _step_rows(
    program: np.ndarray, results: dict, errors: dict[int, dict], open_loop: dict[int, dict], response: str, load: float
) -> list[dict]:
    """One row per load step of the program: both runs' responses, solves and seconds, and the errors."""
    per_run = {run: _per_step(results[run], program, response) for run in RUNS}
    scale = curve_error_scale(np.array([v["response"] for v in per_run["reference"].values()], dtype=float))
    rows = []
    for step, factor in enumerate(program, start=1):
        ref, spk = per_run["reference"].get(step), per_run["spiking"].get(step)
        both = ref is not None and spk is not None and ref["converged"] and spk["converged"]
        row = {"step": step, "load_factor": float(factor), "load": float(factor) * load}
        for run, info in (("reference", ref), ("spiking", spk)):
            info = info or {"response": np.nan, "newton_iterations": 0, "failed_solves": 0, "seconds": 0.0, "converged": False}
            row |= {f"{key}_{run}": value for key, value in info.items()}
        curve = abs(spk["response"] - ref["response"]) / scale if both and scale > 0 else np.nan
        found = errors.get(step, {})
        row |= {
            "curve_error": curve,
            "displacement_error": found.get("displacement_error", np.nan),
            "stress_error": found.get("stress_error", np.nan),
            **{key: open_loop.get(step, {}).get(key, np.nan) for key in _OPEN_LOOP_KEYS},
        }
        row |= found.get("diagnostics", {})
        rows.append(row)
    return rows


def _per_step(result: SimulationResult, program: np.ndarray, response: str) -> dict[int, dict]:
    """Per load step of one run: response at the target, Newton iterations, failed solves, seconds, converged."""
    steps: dict[int, dict] = {}
    for attempt in result.report["increments"]:
        entry = steps.setdefault(
            attempt["step"], {"response": np.nan, "newton_iterations": 0, "failed_solves": 0, "seconds": 0.0, "converged": False}
        )
        entry["newton_iterations"] += attempt["newton_iterations"]
        entry["failed_solves"] += 0 if attempt["converged"] else 1
        entry["seconds"] += attempt["timings"]["total"]
    table = result.table
    for step, factor, value in zip(table["step"], table["load_factor"], table[response]):
        if factor == program[int(step) - 1]:  # the target, not a cut-back sub-step
            steps[int(step)]["response"] = float(value)
            steps[int(step)]["converged"] = True
    return steps


def step_stats(steps: list[dict], key: str, magnitude: bool = False) -> dict:
    """Max and mean of a step-row column (of its magnitude if asked) over the steps where it is finite; rows
    without the column (the steps a stopped run never reached have no diagnostics) do not count."""
    values = np.array([row.get(key, np.nan) for row in steps], dtype=float)
    values = np.abs(values) if magnitude else values
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"max": None, "mean": None, "steps": 0}
    return {"max": float(values.max()), "mean": float(values.mean()), "steps": int(values.size)}


def _summary(steps: list[dict], results: dict, status: dict, messages: dict, response: str, comm: MPI.Comm) -> dict:
    """The JSON summary: statuses, max / mean errors over compared steps, totals, timings, every step."""
    diagnostics = list(dict.fromkeys(k for row in steps for k in row if k not in _STEP_KEYS))
    return {
        "status": status,
        "errors": messages,
        "response": response,
        "materials": {run: results[run].report["material"] for run in RUNS},
        "quadrature_points": results["reference"].report["mesh"]["quadrature_points"],
        "mpi_size": comm.size,
        "curve_error": step_stats(steps, "curve_error"),
        "displacement_error": step_stats(steps, "displacement_error"),
        "stress_error": step_stats(steps, "stress_error"),
        "open_loop_stress_error": step_stats(steps, "open_loop_stress_error"),
        "open_loop_von_mises_bias": step_stats(steps, "open_loop_von_mises_bias", magnitude=True),  # of its magnitude
        "newton_iterations": {run: int(sum(row[f"newton_iterations_{run}"] for row in steps)) for run in RUNS},
        "failed_solves": {run: int(sum(row[f"failed_solves_{run}"] for row in steps)) for run in RUNS},
        "timings": {run: results[run].report["timings"] for run in RUNS},
        "solver": {run: results[run].report["solver"] for run in RUNS},
        "diagnostics": {k: step_stats(steps, k)["mean"] for k in diagnostics},
        "steps": steps,
    }


def _write_table(path: Path, steps: list[dict]) -> None:
    """comparison.csv: one row per load step (steps without diagnostics leave those columns empty)."""
    columns = list(dict.fromkeys(k for row in steps for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(steps)


def _plot_curves(path: Path, results: dict, problem: Problem) -> None:
    """Both load-displacement curves, from rest through every converged increment."""
    probe = problem.probes[0].name
    fig = Figure(figsize=(5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for run, style in zip(RUNS, ("o-", "s--")):
        table = results[run].table
        ax.plot(np.r_[0.0, table[probe]], np.r_[0.0, table[problem.force]], style, ms=3, label=run)
    force_unit = "N/mm (per unit thickness)" if problem.dim == 2 else "N"
    ax.set_xlabel(f"{probe} [mm]")
    ax.set_ylabel(problem.load_name if problem.force == "load" else f"{problem.force} [{force_unit}]")
    ax.set_title(problem.name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=150)


def _plot_steps(path: Path, steps: list[dict]) -> None:
    """Per load step: the three relative errors, Newton iterations and seconds of both runs."""
    step = [row["step"] for row in steps]
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    errors, iterations, seconds = fig.subplots(1, 3)
    labels = {"curve_error": "curve", "displacement_error": "displacement L2", "stress_error": "stress L2",
              "open_loop_stress_error": "stress L2, open loop"}  # fmt: skip
    for key, label in labels.items():
        values = np.array([row[key] for row in steps], dtype=float)
        errors.plot(step, np.where(values > 0, values, np.nan), "o-", ms=3, label=label)
    errors.set_yscale("log")
    errors.set_ylabel("relative error")
    for run, style in zip(RUNS, ("o-", "s--")):
        iterations.plot(step, [row[f"newton_iterations_{run}"] for row in steps], style, ms=3, label=run)
        seconds.plot(step, [row[f"seconds_{run}"] for row in steps], style, ms=3, label=run)
    iterations.set_ylabel("Newton iterations (all solves)")
    seconds.set_ylabel("seconds per load step")
    for ax in (errors, iterations, seconds):
        ax.set_xlabel("load step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.savefig(path, dpi=150)
