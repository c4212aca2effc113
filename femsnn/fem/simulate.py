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
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from time import perf_counter
from typing import Annotated

import numpy as np
from dolfinx import fem
from mpi4py import MPI
from pydantic import Field, ValidationInfo, field_validator, model_validator

from femsnn.config import ConfigError, Strict, load_config, parse_config
from femsnn.fem.loads import BoundaryLoading
from femsnn.fem.mesh import MeshData, check_dimension, load_mesh, read_mesh, resolve_size
from femsnn.fem.output import CellFields, RunOutput
from femsnn.fem.probes import DisplacementProbe, ReactionProbe
from femsnn.fem.problems import Control, Problem, make_problem
from femsnn.fem.quadrature import stress_state_of
from femsnn.fem.solver import EquilibriumSolver, NewtonSettings, Timings
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
    """[solver]: Newton convergence on the residual norm and extra PETSc SNES/KSP options."""

    rtol: PositiveFloat = 1e-8
    atol: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1e-10
    max_it: int = Field(25, ge=1)
    petsc_options: dict[str, str | int | float | bool] = {}

    def settings(self) -> NewtonSettings:
        return NewtonSettings(self.rtol, self.atol, self.max_it, dict(self.petsc_options))


class OutputSection(Strict):
    """[output]: the folder (created only once everything checked out) and what to write into it."""

    directory: Path
    fields: bool = True  # ParaView VTX files of displacement and cell-averaged stress / history
    plot: bool = True
    progress: bool = True

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
    def _known_material(cls, data: object) -> object:
        return parse_material_config(data) if isinstance(data, dict) else data

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


def run_simulation_from_file(path: str | Path, comm: MPI.Comm = MPI.COMM_WORLD) -> SimulationResult:
    """Load, validate and run a simulation TOML file."""
    return run_simulation(load_config(path, SimulationConfig), comm)


def run_simulation(config: SimulationConfig | dict, comm: MPI.Comm = MPI.COMM_WORLD) -> SimulationResult:
    """Run a configured simulation on comm; raises ConfigError before any work for unusable input.

    Raises SimulationFailed (with the converged part as its ``result``) when a load step does not
    converge within the allowed cut-backs; the output folder then holds everything converged so far.
    """
    wall = perf_counter()
    if not isinstance(config, SimulationConfig):
        config = parse_config(config, SimulationConfig)
    problem = config.problem.definition()
    mesh_data, material = _prepare(config, problem, comm)
    run = _Run(config, problem, mesh_data, material, comm)
    error: ConvergenceFailure | None = None
    try:
        follow_load_program(
            run.solver, run.program, run.record, max_cutbacks=config.loading.max_cutbacks, dt=config.loading.dt
        )
    except ConvergenceFailure as exc:
        error = exc
    result = run.finish(error, perf_counter() - wall)
    if error is not None:
        raise SimulationFailed(f"{error}; the converged increments are in {result.directory}", result) from error
    return result


class _Run:
    """One simulation's solver, probes and output folder (created here, after all checks passed)."""

    def __init__(self, config: SimulationConfig, problem: Problem, mesh_data: MeshData, material: Material, comm: MPI.Comm) -> None:
        self.config, self.problem, self.mesh_data, self.material, self.comm = config, problem, mesh_data, material, comm
        mesh = mesh_data.mesh
        self.V = fem.functionspace(mesh, ("Lagrange", config.problem.element_degree, (mesh.geometry.dim,)))
        self.u = fem.Function(self.V, name="displacement")
        loading = BoundaryLoading(self.V, mesh_data, list(problem.loads))
        self.solver = EquilibriumSolver(
            self.u, material, loading, config.problem.quadrature_degree, config.solver.settings(), f"femsnn{next(_PREFIXES)}_"
        )
        self.probes = {p.name: DisplacementProbe(self.u, p.point, p.component) for p in problem.probes}
        self.reactions = {
            r.name: ReactionProbe(self.solver.residual, self.V, mesh_data.facets(r.boundary), r.component)
            for r in problem.reactions
        }
        self.program = config.loading.program()
        directory = config.output.directory
        if comm.rank == 0:
            directory.mkdir(parents=True, exist_ok=True)
        comm.barrier()
        columns = [
            "step", "load_factor", "load", *self.probes, *self.reactions, "newton_iterations", "converged_reason",
            "cutbacks", "time_material", "time_assembly", "time_solve",
        ]  # fmt: skip
        fields = (self.u, CellFields(self.solver.data, mesh)) if config.output.fields else None
        self.output = RunOutput(
            directory, comm, columns, n_steps=len(self.program), progress=config.output.progress, fields=fields
        )
        self.attempts: list[dict] = []
        self._timings = Timings()

    def record(self, attempt: Attempt) -> None:
        """Log every solve; tabulate converged ones with their probes, reactions and timings."""
        now = self.solver.timings.as_dict()
        spent = {k: v - getattr(self._timings, k) for k, v in now.items()}
        self._timings = Timings(**now)
        self.attempts.append(
            {
                "step": attempt.step, "target": attempt.target, "load_factor": attempt.factor,
                "converged": attempt.converged, "converged_reason": attempt.info.reason,
                "newton_iterations": attempt.info.iterations, "cutbacks": attempt.cutbacks, "timings": spent,
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
        self.output.add_row(row, step_done=attempt.factor == attempt.target)

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
            "mpi_size": comm.size,
            "host": platform.node(),
            "increments": self.attempts,
            "timings": {
                **{k: comm.allreduce(v, op=MPI.MAX) for k, v in self.solver.timings.as_dict().items()},
                "wall": comm.allreduce(wall, op=MPI.MAX),
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


def _prepare(config: SimulationConfig, problem: Problem, comm: MPI.Comm) -> tuple[MeshData, Material]:
    """Read the mesh and build the material, turning unusable input into ConfigError (no output yet)."""
    try:
        if config.mesh.file is not None:
            mesh_data = read_mesh(config.mesh.file, comm)
        else:
            mesh_data = load_mesh(problem.geometry, config.mesh.size, comm)
        check_dimension(mesh_data.mesh, problem.dim)
        for boundary in {load.boundary for load in problem.loads} | {r.boundary for r in problem.reactions}:
            mesh_data.facets(boundary)
        material = make_material(config.material, stress_state_of(mesh_data.mesh))
    except (ValueError, KeyError, FileNotFoundError, MaterialInputError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        raise ConfigError(f"{problem.name}: {message}") from exc
    return mesh_data, material
