"""``femsnn simulate``: a quasi-static FE run described by one strict TOML file.

Sections: [problem] (a named problem of femsnn.fem.problems, its load per unit load factor and the
discretisation), [mesh] (a size of the problem's named geometry, or a gmsh file), [material] (any
type of femsnn.materials.registry), [loading] (the load program and cut-back limit), [solver]
(Newton tolerances and PETSc options), [output] (folder and what to write). Everything is checked,
the mesh included, before the output folder is created.

The folder receives ``steps.csv`` (one row per converged increment, cut-back sub-steps included:
step, load_factor, load, the problem's probes and reactions, newton_iterations, converged_reason,
cutbacks, and the seconds spent in material / assembly / solve), ``report.json`` (status, settings,
material, mesh size, every Newton solve including failed ones, timings, MPI size),
``displacement.bp`` and ``cell_fields.bp`` (ParaView VTX: displacement; cell-averaged stress
components, von Mises stress and scalar history such as the equivalent plastic strain), and
``load_displacement.png``.

With ``[output] checkpoint = true`` (the default) the run saves a checkpoint after every converged
load step (femsnn.fem.checkpoint); ``run_simulation(..., resume=True)`` (``femsnn simulate --resume``)
continues from it and ends as the uninterrupted run would. The table and report then cover the whole
run; the fields of the resumed part go to ``displacement_from_<increment>.bp`` and
``cell_fields_from_<increment>.bp``, beside the files of the first part.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from time import perf_counter
from typing import Annotated, Literal

import numpy as np
from dolfinx import fem
from mpi4py import MPI
from pydantic import Field, ValidationInfo, field_validator, model_validator

from femsnn.config import ConfigError, Strict, load_config, parse_config
from femsnn.fem.checkpoint import Checkpoint
from femsnn.fem.loads import BoundaryLoading
from femsnn.fem.mesh import MeshData, check_dimension, load_mesh, read_mesh, resolve_size
from femsnn.fem.output import CellFields, RunOutput
from femsnn.fem.probes import DisplacementProbe, ReactionProbe
from femsnn.fem.problems import Control, Problem, make_problem
from femsnn.fem.quadrature import stress_state_of
from femsnn.fem.solver import EquilibriumSolver, LineSearch, NewtonSettings, Timings, material_stress_resolution
from femsnn.fem.stepping import Attempt, ConvergenceFailure, follow_load_program, turning_point_program
from femsnn.materials.base import Material, MaterialInputError
from femsnn.materials.registry import MaterialConfig, make_material, parse_material_config

Finite = Annotated[float, Field(allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def _resolve(path: Path, info: ValidationInfo) -> Path:
    """A relative path in a config file is relative to the file's folder (the cwd for dicts)."""
    base = (info.context or {}).get("base_dir", Path.cwd())
    return (Path(base) / path).resolve()  # an absolute path stays itself


class ProblemSection(Strict):
    """[problem]: which problem, its load per unit load factor, and the finite elements."""

    name: str
    load: Finite  # pressure / displacement / traction at load factor 1 (see femsnn.fem.problems)
    control: Control | None = None  # plate_with_hole, notched_bar: "displacement" (default) or "traction"
    element_degree: int = Field(2, ge=1, le=4)  # Lagrange degree of the displacement
    quadrature_degree: int = Field(2, ge=1, le=10)

    @model_validator(mode="after")
    def _known(self) -> ProblemSection:
        self.definition()
        return self

    def definition(self) -> Problem:
        """The femsnn.fem.problems definition this section names."""
        return make_problem(self.name, self.load, self.control)


class MeshSection(Strict):
    """[mesh]: ``size`` (mm or preset name) of the problem's geometry, or a gmsh ``file`` with its boundary groups."""

    size: float | str | None = None
    file: Path | None = None

    @field_validator("file")
    @classmethod
    def _exists(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            return None
        path = _resolve(path, info)
        if not path.is_file():
            raise ValueError(f"mesh file not found: {path}")
        return path

    @model_validator(mode="after")
    def _one_source(self) -> MeshSection:
        if (self.size is None) == (self.file is None):
            raise ValueError("give exactly one of 'size' (a generated mesh) or 'file' (a gmsh .msh file)")
        return self


class LoadingSection(Strict):
    """[loading]: target load factors (``factors``, or ``turning_points`` with ``steps_per_segment``)."""

    factors: list[Finite] | None = None
    turning_points: list[Finite] | None = None
    steps_per_segment: int | None = Field(None, ge=1)
    dt: PositiveFloat = 1.0  # material time step of one load step (a cut-back sub-step gets its share)
    max_cutbacks: int = Field(8, ge=0, le=40)  # halvings of one load step before giving up

    @model_validator(mode="after")
    def _one_program(self) -> LoadingSection:
        tabled, cyclic = self.factors is not None, self.turning_points is not None
        if tabled == cyclic:
            raise ValueError("give exactly one of 'factors' or 'turning_points' (with 'steps_per_segment')")
        if cyclic and self.steps_per_segment is None:
            raise ValueError("'turning_points' needs 'steps_per_segment'")
        if tabled and self.steps_per_segment is not None:
            raise ValueError("'steps_per_segment' goes with 'turning_points', not with 'factors'")
        if len(self.program()) == 0:
            raise ValueError("the load program is empty")
        return self

    def program(self) -> np.ndarray:
        """The target load factors, in order (rest, factor 0, is the starting point)."""
        if self.factors is not None:
            return np.asarray(self.factors, dtype=float)
        return turning_point_program(self.turning_points, self.steps_per_segment)


class SolverSection(Strict):
    """[solver]: Newton convergence on the residual norm, line search and extra PETSc SNES/KSP options.

    ``stress_tolerance``: the stress change (MPa) below which the material's stress is not resolved, turned
    into an absolute residual tolerance (femsnn.fem.solver); ``"material"`` asks the material (0 for
    materials that report no resolution, such as the reference ones).
    """

    rtol: PositiveFloat = 1e-8
    atol: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1e-10
    max_it: int = Field(25, ge=1)
    line_search: LineSearch = "basic"
    stress_tolerance: Annotated[float, Field(ge=0, allow_inf_nan=False)] | Literal["material"] = 0.0
    petsc_options: dict[str, str | int | float | bool] = {}

    @field_validator("petsc_options")
    @classmethod
    def _no_duplicates(cls, options: dict) -> dict:
        taken = {"snes_rtol": "rtol", "snes_atol": "atol", "snes_max_it": "max_it", "snes_linesearch_type": "line_search"}
        for key in options:
            if key.lstrip("-") in taken:
                raise ValueError(f"set {key!r} with the key '{taken[key.lstrip('-')]}', not in petsc_options")
        return options

    def settings(self, material: Material) -> NewtonSettings:
        """Newton settings for this material (its stress resolution if stress_tolerance is "material")."""
        tolerance = material_stress_resolution(material) if self.stress_tolerance == "material" else self.stress_tolerance
        return NewtonSettings(self.rtol, self.atol, self.max_it, self.line_search, tolerance, dict(self.petsc_options))


class OutputSection(Strict):
    """[output]: the folder (created only once everything checked out) and what to write into it."""

    directory: Path
    fields: bool = True  # ParaView VTX files of displacement and cell-averaged stress / history
    plot: bool = True
    progress: bool = True
    checkpoint: bool = True  # after every converged load step, for resume (femsnn.fem.checkpoint)

    @field_validator("directory")
    @classmethod
    def _relative_to_config(cls, path: Path, info: ValidationInfo) -> Path:
        return _resolve(path, info)


class SimulationConfig(Strict):
    """A whole ``femsnn simulate`` file."""

    problem: ProblemSection
    mesh: MeshSection
    material: MaterialConfig
    loading: LoadingSection
    solver: SolverSection = SolverSection()
    output: OutputSection

    @field_validator("material", mode="before")
    @classmethod
    def _known_material(cls, data: object, info: ValidationInfo) -> object:
        """A material section by its type; a relative model file is relative to the config file."""
        return parse_material_config(data, (info.context or {}).get("base_dir")) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _consistent(self) -> SimulationConfig:
        if self.mesh.size is not None:
            resolve_size(self.problem.definition().geometry, self.mesh.size)
        return self


@dataclass(frozen=True)
class SimulationResult:
    """A finished (or stopped) run: the per-increment table, the JSON report, the displacement field."""

    table: dict[str, np.ndarray]  # column -> values over converged increments (see RunOutput)
    report: dict
    directory: Path
    displacement: fem.Function
    history: dict[str, np.ndarray]  # committed history {name: (owned points, *shape)} of this rank


class SimulationFailed(RuntimeError):
    """A run that stopped (e.g. no convergence after all cut-backs); its converged part is in ``result``."""

    def __init__(self, message: str, result: SimulationResult) -> None:
        super().__init__(message)
        self.result = result


_PREFIXES = count()

#: called after every converged load step of the program with (step, load factor, solver): the solver's
#: displacement, stress and committed history are those of that step until the observer returns
StepObserver = Callable[[int, float, EquilibriumSolver], None]


@dataclass(frozen=True)
class Prepared:
    """What a configuration needs before any output exists: the mesh, the material and the Newton settings."""

    mesh_data: MeshData
    material: Material
    settings: NewtonSettings


def run_simulation_from_file(path: str | Path, comm: MPI.Comm = MPI.COMM_WORLD, *, resume: bool = False) -> SimulationResult:
    """Load, validate and run a simulation TOML file (resume: continue from its checkpoint)."""
    return run_simulation(load_config(path, SimulationConfig), comm, resume=resume)


def run_simulation(
    config: SimulationConfig | dict,
    comm: MPI.Comm = MPI.COMM_WORLD,
    *,
    resume: bool = False,
    prepared: Prepared | None = None,
    observer: StepObserver | None = None,
) -> SimulationResult:
    """Run a configured simulation on comm; raises ConfigError before any work for unusable input.

    resume: continue from the checkpoint in the output folder (CheckpointError, before anything is
    written, if there is no usable one). prepared: mesh, material and settings already built from this
    config by :func:`prepare`. observer: see StepObserver.
    Raises SimulationFailed (with the converged part as its ``result``) when a load step does not
    converge within the allowed cut-backs; the output folder then holds everything converged so far.
    """
    wall = perf_counter()
    if not isinstance(config, SimulationConfig):
        config = parse_config(config, SimulationConfig)
    problem = config.problem.definition()
    run = _Run(config, problem, prepare(config, comm) if prepared is None else prepared, comm, resume, observer)
    error: ConvergenceFailure | None = None
    try:
        follow_load_program(
            run.solver,
            run.program,
            run.record,
            max_cutbacks=config.loading.max_cutbacks,
            dt=config.loading.dt,
            completed=run.completed,
        )
    except ConvergenceFailure as exc:
        error = exc
    result = run.finish(error, perf_counter() - wall)
    if error is not None:
        raise SimulationFailed(f"{error}; the converged increments are in {result.directory}", result) from error
    return result


class _Run:
    """One simulation's solver, probes and output folder (created here, after all checks passed)."""

    def __init__(
        self,
        config: SimulationConfig,
        problem: Problem,
        prepared: Prepared,
        comm: MPI.Comm,
        resume: bool,
        observer: StepObserver | None,
    ) -> None:
        self.config, self.problem, self.comm, self.observer = config, problem, comm, observer
        self.mesh_data, self.material, self.settings = prepared.mesh_data, prepared.material, prepared.settings
        mesh = self.mesh_data.mesh
        self.V = fem.functionspace(mesh, ("Lagrange", config.problem.element_degree, (mesh.geometry.dim,)))
        self.u = fem.Function(self.V, name="displacement")
        loading = BoundaryLoading(self.V, self.mesh_data, list(problem.loads))
        self.solver = EquilibriumSolver(
            self.u, self.material, loading, config.problem.quadrature_degree, self.settings, f"femsnn{next(_PREFIXES)}_"
        )
        self.probes = {p.name: DisplacementProbe(self.u, p.point, p.component) for p in problem.probes}
        self.reactions = {
            r.name: ReactionProbe(self.solver.residual, self.V, self.mesh_data.facets(r.boundary), r.component)
            for r in problem.reactions
        }
        self.program = config.loading.program()
        directory = config.output.directory
        resumable = config.model_dump(mode="json", exclude={"output"})
        self.checkpoint = Checkpoint(directory, comm, resumable) if config.output.checkpoint or resume else None
        self.completed, self.attempts, rows, self._wall = 0, [], [], 0.0
        self.resumed_after: int | None = None
        if resume:
            rows = self._restore()
        if comm.rank == 0:
            directory.mkdir(parents=True, exist_ok=True)
        comm.barrier()
        columns = [
            "step", "load_factor", "load", *self.probes, *self.reactions, "newton_iterations", "converged_reason",
            "cutbacks", "time_material", "time_assembly", "time_solve",
        ]  # fmt: skip
        fields = (self.u, CellFields(self.solver.data, mesh)) if config.output.fields else None
        self.output = RunOutput(
            directory,
            comm,
            columns,
            n_steps=len(self.program),
            progress=config.output.progress,
            fields=fields,
            previous=(rows, self.completed),
        )
        self._timings = Timings(**self.solver.timings.as_dict())
        self._started = perf_counter()

    def _restore(self) -> list[dict]:
        """Continue from the checkpoint: converged state, solves and timings so far; returns the table rows."""
        saved = self.checkpoint.load(self.u, self.solver.data.committed)
        self.solver.restore(saved.displacement, saved.history)
        record = saved.record
        self.completed = self.resumed_after = saved.step
        self.attempts, self._wall = record["increments"], record["wall"]
        self.solver.timings = Timings(**record["timings"][self.comm.rank])
        return record["rows"]

    def record(self, attempt: Attempt) -> None:
        """Log every solve; tabulate converged ones; checkpoint and observe completed load steps."""
        now = self.solver.timings.as_dict()
        spent = {k: v - getattr(self._timings, k) for k, v in now.items()}
        self._timings = Timings(**now)
        self.attempts.append(
            {
                "step": attempt.step, "target": attempt.target, "load_factor": attempt.factor,
                "converged": attempt.converged, "converged_reason": attempt.info.reason,
                "newton_iterations": attempt.info.iterations, "residual_norm": attempt.info.residual_norm,
                "cutbacks": attempt.cutbacks, "timings": spent,
            }
        )  # fmt: skip
        if not attempt.converged:
            return
        row = {
            "step": attempt.step,
            "load_factor": attempt.factor,
            "load": attempt.factor * self.config.problem.load,
            **{name: probe.value() for name, probe in self.probes.items()},
            **{name: reaction.value() for name, reaction in self.reactions.items()},
            "newton_iterations": attempt.info.iterations,
            "converged_reason": attempt.info.reason,
            "cutbacks": attempt.cutbacks,
            "time_material": spent["material"],
            "time_assembly": spent["assembly"],
            "time_solve": spent["solve"],
        }
        step_done = attempt.factor == attempt.target
        self.output.add_row(row, step_done=step_done)
        if not step_done:
            return
        if self.checkpoint is not None:
            record = {
                "rows": self.output.rows,
                "increments": self.attempts,
                "timings": self.comm.allgather(now),
                "wall": self._wall + perf_counter() - self._started,
            }
            self.checkpoint.save(attempt.step, attempt.factor, self.u, self.solver.data.committed, record)
        if self.observer is not None:
            self.observer(attempt.step, attempt.factor, self.solver)

    def finish(self, error: ConvergenceFailure | None, wall: float) -> SimulationResult:
        """Write the report and plot, close the files, and collect the result."""
        comm, mesh = self.comm, self.mesh_data.mesh
        report = {
            "status": "completed" if error is None else "failed",
            "error": None if error is None else str(error),
            "problem": self.problem.name,
            "load": self.problem.load_name,
            "material": self.material.describe(),
            "mesh": {
                "source": str(self.mesh_data.source),
                "cells": mesh.topology.index_map(mesh.topology.dim).size_global,
                "dofs": self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs,
                "quadrature_points": comm.allreduce(self.solver.data.n_points, op=MPI.SUM),
            },
            "solver": {
                "stress_tolerance": self.settings.stress_tolerance,
                "residual_atol": self.solver.residual_atol,
                "line_search": self.settings.line_search,
            },
            "mpi_size": comm.size,
            "host": platform.node(),
            "resumed_after_step": self.resumed_after,
            "increments": self.attempts,
            "timings": {
                **{k: comm.allreduce(v, op=MPI.MAX) for k, v in self.solver.timings.as_dict().items()},
                "wall": comm.allreduce(self._wall + wall, op=MPI.MAX),
            },
            "config": self.config.model_dump(mode="json"),
        }
        self.output.close(report, _plot_axes(self.problem) if self.config.output.plot else None)
        history = {k: v.copy() for k, v in self.solver.data.committed_history().items()}
        return SimulationResult(self.output.table(), report, self.config.output.directory, self.u, history)


def _plot_axes(problem: Problem) -> tuple[str, str, str, str]:
    """Columns and axis labels of the load-displacement plot: first probe against the problem's force."""
    probe = problem.probes[0].name
    force_unit = "N/mm (per unit thickness)" if problem.dim == 2 else "N"
    ylabel = problem.load_name if problem.force == "load" else f"{problem.force} [{force_unit}]"
    return probe, problem.force, f"{probe} [mm]", ylabel


def prepare(config: SimulationConfig, comm: MPI.Comm, mesh_data: MeshData | None = None) -> Prepared:
    """Read the mesh (unless given), build the material and settings; unusable input becomes ConfigError (no output yet)."""
    problem = config.problem.definition()
    try:
        if mesh_data is None and config.mesh.file is not None:
            mesh_data = read_mesh(config.mesh.file, comm)
        elif mesh_data is None:
            mesh_data = load_mesh(problem.geometry, config.mesh.size, comm)
        check_dimension(mesh_data.mesh, problem.dim)
        for boundary in {load.boundary for load in problem.loads} | {r.boundary for r in problem.reactions}:
            mesh_data.facets(boundary)
        material = make_material(config.material, stress_state_of(mesh_data.mesh))
        settings = config.solver.settings(material)
    except (ValueError, KeyError, FileNotFoundError, MaterialInputError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        raise ConfigError(f"{problem.name}: {message}") from exc
    return Prepared(mesh_data, material, settings)
