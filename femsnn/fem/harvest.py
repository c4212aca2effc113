"""``femsnn harvest``: strain and stress histories at quadrature points of reference FE runs, as training data.

One strict TOML file: ``seed``; [material] (the reference, any type of femsnn.materials.registry);
``[[family]]`` tables (a [problem] and [mesh] section as in ``femsnn simulate``, how many ``programs``,
and the ranges their random turning points and step counts are drawn from); [sampling] (quadrature
points per program, network inputs, val/test shares of programs); [solver] (as in ``femsnn simulate``);
[output] (folder). Every program is an ordinary ``femsnn simulate`` run
(:func:`femsnn.fem.simulate.run_simulation`, its steps.csv and report.json kept in a sub-folder); a step
observer records, after every converged increment (cut-back sub-steps included, as the material saw
them), the Mandel strain and the stress at a random sample of quadrature points.

Programs: from rest to a first peak, then alternately to a valley and a peak (``turning_points`` of them
in all: 1 is monotonic loading, 2 adds unloading, a negative valley reverses the load). A segment of
length L (in load factor) gets round(s L) steps, at least one, with s drawn per program from
``steps_per_unit``; ``step_jitter`` mixes equal step sizes (0) with random ones (towards 1);
``spacing = "sqrt"`` takes the square root of those fractions of the segment, so steps shrink towards
each turning point (like the cylinder's reference program, q_lim sqrt(linspace(0, 1.1, 20))).

Sampling is by *global* quadrature point id, original cell index x points per cell + point, so the
same seed picks the same material points whatever the number of MPI ranks; each rank records the
points it owns and rank 0 gathers them. Every random draw comes from ``SeedSequence(seed)``.

Splits are by program (whole simulations go to train, val or test), so test paths come from load
programs the network never saw. Paths of all programs are brought to the longest one by holding their
last strain and stress (:func:`femsnn.train.data.hold_to_length`; right for rate-independent materials).

The output folder receives ``dataset.npz`` (the :mod:`femsnn.train.data` format; ``meta["source"] =
"fe-harvest"`` and ``meta["harvest"]`` with the config, seed, MPI size, every simulation's problem, mesh,
program, converged load factors, status, split, sampled global point ids and their coordinates, and the
number of recorded steps of every path) and ``simulations/NNN-family/`` (each run's table and report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import basix
import numpy as np
import tqdm
import ufl
from dolfinx import fem
from mpi4py import MPI
from pydantic import Field, ValidationInfo, field_validator, model_validator

import femsnn
from femsnn.config import Strict, load_config, parse_config
from femsnn.fem.mesh import resolve_size
from femsnn.fem.simulate import (
    MeshSection,
    Prepared,
    ProblemSection,
    SimulationConfig,
    SimulationFailed,
    SolverSection,
    _resolve,
    prepare,
    run_simulation,
)
from femsnn.fem.solver import EquilibriumSolver
from femsnn.mandel import StressState
from femsnn.materials.registry import MaterialConfig, make_material, parse_material_config
from femsnn.train.data import DATASET_FORMAT, DATASET_VERSION, SPLITS, STRAIN_FEATURES, Dataset, concatenate, strain_inputs

Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]


def _ordered(pair: tuple[float, float], name: str) -> tuple[float, float]:
    """A [low, high] range with low <= high."""
    if pair[0] > pair[1]:
        raise ValueError(f"{name} range [{pair[0]}, {pair[1]}] must be [low, high] with low <= high")
    return pair


class FamilySection(Strict):
    """[[family]]: ``programs`` random load programs on one problem and mesh (see the module docstring)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    problem: ProblemSection
    mesh: MeshSection
    programs: Count
    turning_points: tuple[Count, Count] = (1, 1)  # [min, max] turning points per program (1: monotonic)
    peak: tuple[Finite, Finite]  # [min, max] load factor of the loading turning points (1st, 3rd, ...)
    valley: tuple[Finite, Finite] = (0.0, 0.0)  # [min, max] load factor of the unloading ones (2nd, 4th, ...)
    steps_per_unit: tuple[Count, Count] = (10, 40)  # [min, max] load steps per unit of load factor travelled
    step_jitter: Annotated[float, Field(ge=0, lt=1)] = 0.0  # 0: equal steps within a segment; towards 1: random
    spacing: Literal["even", "sqrt"] = "even"  # "sqrt": steps shrink towards each turning point (sqrt of even)
    max_cutbacks: int = Field(8, ge=0, le=40)

    @model_validator(mode="after")
    def _ranges(self) -> FamilySection:
        for name in ("turning_points", "peak", "valley", "steps_per_unit"):
            _ordered(getattr(self, name), name)
        if self.peak[0] <= 0:
            raise ValueError("peak load factors must be positive (flip the sign of [problem] load to load the other way)")
        if self.valley[1] >= self.peak[0]:
            raise ValueError(f"every valley must lie below every peak: valley max {self.valley[1]} >= peak min {self.peak[0]}")
        if self.mesh.size is not None:
            resolve_size(self.problem.definition().geometry, self.mesh.size)
        return self

    def program(self, rng: np.random.Generator) -> tuple[list[float], np.ndarray]:
        """Random turning points and the load factors of every step towards them."""
        count = int(rng.integers(self.turning_points[0], self.turning_points[1] + 1))
        turns = [float(rng.uniform(*(self.peak if k % 2 == 0 else self.valley))) for k in range(count)]
        per_unit = int(rng.integers(self.steps_per_unit[0], self.steps_per_unit[1] + 1))
        factors, start = [], 0.0
        for end in turns:
            n = max(1, round(per_unit * abs(end - start)))
            sizes = (1 - self.step_jitter) / n + self.step_jitter * rng.dirichlet(np.ones(n))
            fractions = np.cumsum(sizes)
            segment = start + (end - start) * (np.sqrt(fractions) if self.spacing == "sqrt" else fractions)
            segment[-1] = end  # exactly, whatever the round-off of the sum
            factors.append(segment)
            start = end
        return turns, np.concatenate(factors)


class SamplingSection(Strict):
    """[sampling]: which quadrature points are recorded, the network inputs, and the split of programs."""

    points: Count  # quadrature points per program (all of them if the mesh has fewer)
    increments: bool = True  # inputs: strain and strain increment (True) or strain only
    val: Annotated[float, Field(ge=0, lt=1)] = 0.15  # share of programs in the validation split
    test: Annotated[float, Field(ge=0, lt=1)] = 0.15  # share of programs in the test split

    @model_validator(mode="after")
    def _shares(self) -> SamplingSection:
        if self.val + self.test >= 1:
            raise ValueError("val + test must leave programs for training (sum below 1)")
        return self


class HarvestOutput(Strict):
    """[output]: the folder for dataset.npz and simulations/ (created only once everything checked out)."""

    directory: Path
    progress: bool = True

    @field_validator("directory")
    @classmethod
    def _relative_to_config(cls, path: Path, info: ValidationInfo) -> Path:
        return _resolve(path, info)


class HarvestConfig(Strict):
    """A whole ``femsnn harvest`` file."""

    seed: int = 0
    material: MaterialConfig
    family: list[FamilySection] = Field(min_length=1)
    sampling: SamplingSection
    solver: SolverSection = SolverSection()
    output: HarvestOutput

    @field_validator("material", mode="before")
    @classmethod
    def _known_material(cls, data: object) -> object:
        return parse_material_config(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _consistent(self) -> HarvestConfig:
        dims = {f.problem.definition().dim for f in self.family}
        if len(dims) > 1:
            raise ValueError("all families must be 2D (plane strain) or all 3D: one dataset has one stress state")
        names = [f.name for f in self.family]
        if len(set(names)) < len(names):
            raise ValueError(f"family names must be unique, got {names}")
        n_programs = sum(f.programs for f in self.family)
        counts = split_counts(n_programs, self.sampling.val, self.sampling.test)
        if counts["train"] < 1:
            raise ValueError(f"{n_programs} programs leave none for training with val = {self.sampling.val}, test = {self.sampling.test}")
        make_material(self.material, self.stress_state)
        return self

    @property
    def stress_state(self) -> StressState:
        """Plane strain for 2D problems, 3d for 3D ones."""
        return StressState.PLANE_STRAIN if self.family[0].problem.definition().dim == 2 else StressState.THREE_D


def split_counts(n_programs: int, val: float, test: float) -> dict[str, int]:
    """Programs per split: round(share * n), at least one for a non-zero share, the rest for training."""
    n_val, n_test = (max(1, round(share * n_programs)) if share > 0 else 0 for share in (val, test))
    return {"train": n_programs - n_val - n_test, "val": n_val, "test": n_test}


@dataclass
class Program:
    """One planned simulation: its family, random turning points and step factors, split and sampling seed."""

    index: int
    family: FamilySection
    turning_points: list[float]
    factors: np.ndarray
    split: str
    sample_seed: np.random.SeedSequence = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.index:03d}-{self.family.name}"


def plan_programs(config: HarvestConfig) -> list[Program]:
    """Every program of every family, its split and its own seeds (the same on every rank)."""
    families = [f for f in config.family for _ in range(f.programs)]
    seeds = np.random.SeedSequence(config.seed).spawn(len(families) + 1)
    counts = split_counts(len(families), config.sampling.val, config.sampling.test)
    order = np.random.default_rng(seeds[-1]).permutation(len(families))
    split = np.empty(len(families), dtype="U5")
    split[order] = np.repeat(SPLITS, [counts[s] for s in SPLITS])
    programs = []
    for index, (family, seed) in enumerate(zip(families, seeds[:-1])):
        program_seed, sample_seed = seed.spawn(2)
        turns, factors = family.program(np.random.default_rng(program_seed))
        programs.append(Program(index, family, turns, factors, str(split[index]), sample_seed))
    return programs


class PointRecorder:
    """Step observer: strain and stress after each converged load step at sampled global quadrature points."""

    def __init__(self, n_points: int, seed: np.random.SeedSequence) -> None:
        self.n_points, self.seed = n_points, seed
        self.local: np.ndarray | None = None  # rows of the solver's quadrature arrays that are sampled
        self.ids = np.empty(0, dtype=np.int64)
        self.coordinates = np.empty((0, 0))
        self.strain: list[np.ndarray] = []
        self.stress: list[np.ndarray] = []
        self.factors: list[float] = []

    def __call__(self, step: int, factor: float, solver: EquilibriumSolver) -> None:
        if self.local is None:
            self._choose(solver)
        self.strain.append(solver.data.evaluate_strain()[self.local].copy())
        self.stress.append(solver.data.stress_values[self.local].copy())
        self.factors.append(factor)

    def _choose(self, solver: EquilibriumSolver) -> None:
        """Draw the global ids (the same draw on every rank) and find the ones this rank owns."""
        data, mesh = solver.data, solver.u.function_space.mesh
        n_global = mesh.topology.index_map(mesh.topology.dim).size_global * data.n_qp
        rng = np.random.default_rng(self.seed)
        chosen = np.sort(rng.choice(n_global, size=min(self.n_points, n_global), replace=False))
        cells = mesh.topology.original_cell_index[: data.n_cells].astype(np.int64)
        ids = (cells[:, None] * data.n_qp + np.arange(data.n_qp)).reshape(-1)
        self.local = np.flatnonzero(np.isin(ids, chosen))
        self.ids = ids[self.local]
        points, _ = basix.make_quadrature(mesh.basix_cell(), data.degree)  # as QuadratureData
        where = fem.Expression(ufl.SpatialCoordinate(mesh), points)
        x = where.eval(mesh, np.arange(data.n_cells, dtype=np.int32)).reshape(data.n_points, -1)
        self.coordinates = x[self.local]

    def gather(self, comm: MPI.Comm) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """On rank 0: (ids, coordinates, strain (P, T, n), stress (P, T, n)) of all ranks by global id; None elsewhere."""
        n = len(self.ids)
        strain = np.stack(self.strain, axis=1) if self.strain else np.empty((n, 0, 0))
        stress = np.stack(self.stress, axis=1) if self.stress else np.empty((n, 0, 0))
        parts = comm.gather((self.ids, self.coordinates, strain, stress), root=0)
        if comm.rank != 0:
            return None
        parts = [p for p in parts if len(p[0])] or parts[:1]
        ids, coordinates, strain, stress = (np.concatenate([p[i] for p in parts]) for i in range(4))
        order = np.argsort(ids)
        return ids[order], coordinates[order], strain[order], stress[order]


class HarvestFailed(RuntimeError):
    """A harvest that recorded nothing (no program converged a single increment)."""


@dataclass(frozen=True)
class HarvestResult:
    """The harvested dataset (rank 0; None on the other ranks) and where it was written."""

    dataset: Dataset | None
    path: Path
    failed: int  # programs that stopped early (their converged increments are kept)


def run_harvest_from_file(path: str | Path, comm: MPI.Comm = MPI.COMM_WORLD) -> HarvestResult:
    """``femsnn harvest CONFIG``: validate the file, then harvest."""
    return run_harvest(load_config(path, HarvestConfig), comm)


def run_harvest(config: HarvestConfig | dict, comm: MPI.Comm = MPI.COMM_WORLD) -> HarvestResult:
    """Run every planned program on comm, recording sampled points; rank 0 writes dataset.npz.

    Every program's simulate config is checked and every family's mesh read before the first run
    (ConfigError). A program that stops early (no convergence within its cut-backs) keeps its
    converged increments and is counted in ``failed``.
    """
    if not isinstance(config, HarvestConfig):
        config = parse_config(config, HarvestConfig)
    programs = plan_programs(config)
    runs = [_simulation_config(config, program) for program in programs]
    meshes: dict[str, Prepared] = {}
    for program, run in zip(programs, runs):
        if program.family.name not in meshes:
            meshes[program.family.name] = prepare(run, comm)
    parts, simulations, failed = [], [], 0
    bar = tqdm.tqdm(total=len(programs), disable=not config.output.progress or comm.rank != 0, desc="simulations")
    for program, run in zip(programs, runs):
        recorder, status, error = _simulate(run, comm, meshes[program.family.name], config.sampling.points, program.sample_seed)
        failed += status != "completed"
        gathered = recorder.gather(comm)
        if comm.rank == 0:
            part, record = _program_data(config, program, recorder, gathered, status, error)
            simulations.append(record)
            if part is not None:
                parts.append(part)
        bar.update()
        bar.set_postfix(failed=failed)
    bar.close()
    out = config.output.directory
    path, dataset = out / "dataset.npz", None
    if comm.rank == 0 and parts:
        dataset = concatenate(parts, _meta(config, comm, simulations))
        dataset.save(path)
    if not comm.bcast(bool(parts), root=0):
        raise HarvestFailed(f"no program converged a single increment; see the reports in {out / 'simulations'}")
    return HarvestResult(dataset, path, failed)


def _simulate(
    run: SimulationConfig, comm: MPI.Comm, prepared: Prepared, points: int, seed: np.random.SeedSequence
) -> tuple[PointRecorder, str, str | None]:
    """Run one program, recording every converged increment; returns the recorder, status and error.

    The observer sees completed load steps only: when a step needed cut-backs, the program is run again
    with its converged sub-steps as load steps, so the recorded path is the one the material went through.
    """
    status, error = None, None
    for _ in range(2):
        recorder = PointRecorder(points, seed)
        try:
            result = run_simulation(run, comm, prepared=prepare(run, comm, prepared.mesh_data), observer=recorder)
        except SimulationFailed as exc:
            result = exc.result
            status, error = status or "failed", error or str(exc)
        status = status or "completed"
        increments = [a["load_factor"] for a in result.report["increments"] if a["converged"]]
        if len(increments) == len(recorder.factors):
            return recorder, status, error
        loading = {"factors": increments, "max_cutbacks": run.loading.max_cutbacks}
        run = parse_config({**run.model_dump(), "loading": loading}, SimulationConfig)
    raise HarvestFailed(f"{run.output.directory}: load steps of the converged sub-steps needed cut-backs again")


def _simulation_config(config: HarvestConfig, program: Program) -> SimulationConfig:
    """The ``femsnn simulate`` config of one program (checked now, so bad input fails before any run)."""
    family = program.family
    output = config.output.directory / "simulations" / program.label
    data = {
        "problem": family.problem.model_dump(),
        "mesh": family.mesh.model_dump(exclude_none=True),
        "material": config.material.model_dump(),
        "loading": {"factors": program.factors.tolist(), "max_cutbacks": family.max_cutbacks},
        "solver": config.solver.model_dump(),
        "output": {"directory": output, "fields": False, "plot": False, "progress": False, "checkpoint": False},
    }
    return parse_config(data, SimulationConfig, source=f"family {family.name!r}")


def _program_data(
    config: HarvestConfig, program: Program, recorder: PointRecorder, gathered: tuple, status: str, error: str | None
) -> tuple[Dataset | None, dict]:
    """One program's paths as a dataset part (None if not even its first increment converged), and its provenance."""
    ids, coordinates, strain, stress = gathered
    split = np.full(len(ids), program.split, dtype="U5")
    part = None
    if strain.shape[1] > 0:
        part = Dataset(strain_inputs(strain, config.sampling.increments), stress, strain, split, _feature_meta(config))
    family = program.family
    record = {
        "program": program.index,
        "family": family.name,
        "problem": family.problem.name,
        "control": family.problem.control,
        "load": family.problem.load,
        "mesh": family.mesh.model_dump(mode="json", exclude_none=True),
        "turning_points": program.turning_points,
        "factors": program.factors.tolist(),
        "converged_factors": recorder.factors,
        "status": status,
        "error": error,
        "split": program.split,
        "points": ids.tolist(),
        "coordinates": coordinates.tolist(),
        "steps": strain.shape[1],
        "directory": str(config.output.directory / "simulations" / program.label),
    }
    return part, record


def _feature_meta(config: HarvestConfig) -> dict:
    """The dataset metadata fields that name inputs and targets, and the material that labelled them."""
    state = config.stress_state
    features = list(STRAIN_FEATURES[: 2 if config.sampling.increments else 1])
    return {
        "format": DATASET_FORMAT,
        "version": DATASET_VERSION,
        "material": make_material(config.material, state).describe(),
        "stress_state": state.value,
        "input_features": features,
        "input_names": [f"{f}_{c}" for f in features for c in state.component_names],
        "target_names": [f"stress_{c}" for c in state.component_names],
        "units": {"stress": "MPa", "strain": "mandel"},
        "femsnn_version": femsnn.__version__,
    }


def _meta(config: HarvestConfig, comm: MPI.Comm, simulations: list[dict]) -> dict:
    """Full provenance of the harvest (module docstring)."""
    return {
        **_feature_meta(config),
        "source": "fe-harvest",
        "harvest": {
            "config": config.model_dump(mode="json"),
            "seed": config.seed,
            "mpi_size": comm.size,
            "simulations": simulations,
            "path_steps": [s["steps"] for s in simulations for _ in range(len(s["points"])) if s["steps"] > 0],
        },
    }
