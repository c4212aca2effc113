"""femsnn harvest: recorded paths are what the reference material computes, provenance, MPI = serial, bad configs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI
from typer.testing import CliRunner

from femsnn.cli import app
from femsnn.config import ConfigError, load_config
from femsnn.fem.harvest import FamilySection, HarvestConfig, plan_programs, run_harvest
from femsnn.materials import drive, elastic_stiffness, make_material
from femsnn.train.artifact import load_model
from femsnn.train.config import parse_train_config
from femsnn.train.data import Dataset, strain_inputs
from femsnn.train.workflow import run_training
from tests.fem.helpers import CYLINDER_J2, Q_LIM


def family(name: str, **values: object) -> dict:
    """A [[family]] on the coarse reference cylinder, monotonic to [0.9, 1.05] q_lim in a few steps."""
    return {
        "name": name,
        "problem": {"name": "thick_cylinder", "load": float(Q_LIM)},
        "mesh": {"size": "coarse"},
        "programs": 1,
        "peak": [0.9, 1.05],
        "steps_per_unit": [4, 6],
        **values,
    }


def harvest_config(directory: Path, families: list[dict], **sampling: object) -> dict:
    """A quiet harvest config of the given families with the reference cylinder's J2."""
    return {
        "seed": 7,
        "material": dict(CYLINDER_J2),
        "family": families,
        "sampling": {"points": 6, "val": 0.0, "test": 0.0, **sampling},
        "output": {"directory": str(directory), "progress": False},
    }


TWO_PROGRAMS = [
    family("monotonic"),
    family("reversal", turning_points=[3, 3], valley=[-0.6, -0.3], step_jitter=0.5),
]


@pytest.fixture(scope="module")
def harvested(tmp_path_factory) -> tuple[dict, Dataset]:
    """A tiny harvest: two programs (monotonic; load, reversal, reload) on the coarse cylinder."""
    config = harvest_config(tmp_path_factory.mktemp("harvest"), TWO_PROGRAMS, val=0.4)
    result = run_harvest(config, MPI.COMM_SELF)
    return config, result.dataset


@pytest.mark.slow
def test_recorded_stress_is_the_reference_material_along_the_recorded_strain(harvested):
    config, data = harvested
    material = make_material(config["material"], "plane_strain")
    driven = drive(material, data.strain).stress
    assert np.allclose(data.targets, driven, rtol=1e-10, atol=1e-8 * np.abs(driven).max())
    elastic = data.strain @ elastic_stiffness(70e3, 0.3, 4)
    assert np.abs(data.targets - elastic).max() > 50.0  # the points went plastic, so the check means something
    assert np.array_equal(data.inputs, strain_inputs(data.strain, increments=True))
    assert np.all(data.strain[..., 2] == 0.0)  # plane strain: e_zz = 0


@pytest.mark.slow
def test_dataset_file_holds_paths_splits_and_provenance(harvested):
    config, data = harvested
    loaded = Dataset.load(Path(config["output"]["directory"]) / "dataset.npz")
    assert np.array_equal(loaded.targets, data.targets) and loaded.inputs.shape == (12, data.inputs.shape[1], 8)
    assert sorted(set(loaded.split.tolist())) == ["train", "val"]  # whole programs per split
    meta = loaded.meta
    assert meta["source"] == "fe-harvest" and meta["stress_state"] == "plane_strain"
    assert meta["material"]["type"] == "J2Plasticity" and meta["material"]["H_iso"] == CYLINDER_J2["H_iso"]
    assert meta["input_features"] == ["strain", "strain_increment"] and meta["femsnn_version"]
    harvest = meta["harvest"]
    assert harvest["seed"] == 7 and harvest["config"]["family"][1]["valley"] == [-0.6, -0.3]
    monotonic, reversal = harvest["simulations"]
    assert monotonic["problem"] == "thick_cylinder" and monotonic["status"] == "completed"
    assert len(reversal["turning_points"]) == 3 and reversal["turning_points"][1] < 0
    assert np.allclose(reversal["converged_factors"], reversal["factors"])
    assert all(len(s["points"]) == 6 == len(s["coordinates"]) for s in harvest["simulations"])
    radius = np.linalg.norm(np.array(monotonic["coordinates"]), axis=1)
    assert np.all((radius > 1.0) & (radius < 1.3))  # quadrature points lie inside the cylinder wall
    assert Path(monotonic["directory"], "steps.csv").is_file()


@pytest.mark.slow
def test_shorter_programs_hold_their_last_state(harvested):
    _, data = harvested
    steps = np.array(data.meta["harvest"]["path_steps"])
    shorter = int(np.argmin(steps))
    assert steps[shorter] < data.strain.shape[1]
    held = slice(steps[shorter] - 1, None)
    assert np.all(data.strain[shorter, held] == data.strain[shorter, steps[shorter] - 1])
    assert np.all(data.targets[shorter, held] == data.targets[shorter, steps[shorter] - 1])


@pytest.mark.slow
def test_harvested_paths_train_a_model_mixed_with_random_walks(harvested, tmp_path):
    config, data = harvested
    walks = {"generator": "j2_random_walk", "stress_state": "plane_strain", "n_train": 4, "n_val": 2, "n_test": 2,
             "steps": 5, "increments": True, "material": dict(CYLINDER_J2)}  # fmt: skip
    train = parse_train_config({
        "data": {"file": str(Path(config["output"]["directory"]) / "dataset.npz"), "mix": walks},
        "model": {"kind": "spiking", "neuron": "slstm", "hidden": [8], "population": 2},
        "training": {"epochs": 1, "batch_size": 8, "progress": False},
        "output": {"dir": str(tmp_path), "plot_samples": 0},
    })  # fmt: skip
    run = run_training(train)
    mixed = Dataset.load(tmp_path / "dataset.npz")
    assert len(mixed) == len(data) + 8 and mixed.strain.shape[1] == data.strain.shape[1]  # walks held to the harvest's length
    _, artifact = load_model(run.model_path)
    assert artifact.stress_state == "plane_strain" and artifact.material == data.meta["material"]
    assert artifact.data["source"].endswith("dataset.npz") and artifact.data["generator"]["generator"] == "j2_random_walk"
    other = parse_train_config({**train.model_dump(mode="json"), "data": {"file": train.data.file, "mix": walks | {"material": {"type": "j2", "E": 2e5, "nu": 0.3, "sigma_y": 250.0}}}})
    with pytest.raises(ValueError, match="cannot mix datasets that differ in"):
        run_training(other)


@pytest.mark.slow
def test_cut_back_sub_steps_are_recorded_as_the_material_saw_them(tmp_path):
    # one step from rest beyond q_lim with at most 4 Newton iterations: the step is cut back, and the
    # program stops once the cut-backs are used up; the converged sub-steps are all recorded
    jump = family("jump", peak=[1.02, 1.02], steps_per_unit=[1, 1], max_cutbacks=3)
    config = harvest_config(tmp_path, [jump], points=3) | {"solver": {"max_it": 4}}
    result = run_harvest(config, MPI.COMM_SELF)
    (record,) = result.dataset.meta["harvest"]["simulations"]
    assert len(record["factors"]) == 1 and len(record["converged_factors"]) > 1
    assert result.failed == 1 and record["status"] == "failed" and "did not converge" in record["error"]
    driven = drive(make_material(CYLINDER_J2, "plane_strain"), result.dataset.strain).stress
    assert np.allclose(result.dataset.targets, driven, rtol=1e-10, atol=1e-6)


def test_programs_visit_their_turning_points_with_the_drawn_step_counts():
    section = FamilySection.model_validate(family("f", turning_points=[2, 4], valley=[-0.5, 0.2], steps_per_unit=[5, 9], step_jitter=0.7))
    for seed in range(20):
        turns, factors = section.program(np.random.default_rng(seed))
        assert 2 <= len(turns) <= 4
        assert all(0.9 <= p <= 1.05 for p in turns[::2]) and all(-0.5 <= v <= 0.2 for v in turns[1::2])
        ends = np.flatnonzero(np.isin(factors, turns))
        assert np.array_equal(factors[ends], turns) and ends[-1] == len(factors) - 1
        starts = np.concatenate([[0.0], turns[:-1]])
        for (a, b), lo, hi in zip(zip(starts, turns), np.concatenate([[-1], ends[:-1]]) + 1, ends + 1):
            segment = factors[lo:hi]
            assert np.all(np.diff(np.concatenate([[a], segment])) * np.sign(b - a) > 0)  # monotonic within a segment
            assert 5 * abs(b - a) - 1 <= len(segment) <= max(1, 9 * abs(b - a) + 1)


def test_sqrt_spacing_shrinks_the_steps_towards_each_turning_point():
    section = FamilySection.model_validate(family("f", turning_points=[2, 2], valley=[0.2, 0.2], steps_per_unit=[20, 20], spacing="sqrt"))
    turns, factors = section.program(np.random.default_rng(0))
    first = np.flatnonzero(factors == turns[0])[0] + 1
    for segment, start in ((factors[:first], 0.0), (factors[first:], turns[0])):
        sizes = np.abs(np.diff(np.concatenate([[start], segment])))
        assert np.all(np.diff(sizes) < 0) and sizes[0] > 3 * sizes[-1]


def test_the_same_seed_plans_the_same_programs_and_splits(tmp_path):
    config = HarvestConfig.model_validate(harvest_config(tmp_path, [family("a", programs=5), family("b", programs=5)], val=0.2, test=0.2))
    first, second = plan_programs(config), plan_programs(config)
    assert all(np.array_equal(p.factors, q.factors) and p.split == q.split for p, q in zip(first, second))
    assert [p.split for p in first].count("val") == 2 and [p.split for p in first].count("test") == 2
    other = plan_programs(config.model_copy(update={"seed": 8}))
    assert not all(np.array_equal(p.factors, q.factors) for p, q in zip(first, other))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"colour": "red"}, "colour: unknown key"),
        ({"family": [family("f", valley=[0.0, 0.95])]}, "every valley must lie below every peak"),
        ({"family": [family("f", peak=[1.0, 0.5])]}, "must be [low, high]"),
        ({"family": [family("f", problem={"name": "cube", "load": 1.0})]}, "unknown problem 'cube'"),
        ({"family": [family("f", mesh={"size": "huge"})]}, "size of 'cylinder' must be a number or one of"),
        ({"family": [family("f"), family("g", problem={"name": "notched_bar", "load": 0.1}, mesh={"size": "coarse"})]}, "one stress state"),
        ({"family": [family("f"), family("f")]}, "family names must be unique"),
        ({"sampling": {"points": 4, "val": 0.5, "test": 0.0}}, "leave none for training"),
        ({"material": {"type": "j2", "E": 70e3, "nu": 0.3}}, "sigma_y: Field required"),
    ],
)
def test_bad_configs_fail_before_any_work(tmp_path, change, message):
    config = harvest_config(tmp_path / "out", [family("f")]) | change
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_harvest(config, MPI.COMM_SELF)
    assert not (tmp_path / "out").exists()


def test_the_large_step_harvest_is_the_shipped_one_plus_one_family():
    surrogate = Path(__file__).resolve().parents[2] / "examples" / "surrogate"
    base, large = (load_config(surrogate / f"{name}.toml", HarvestConfig) for name in ("harvest", "harvest_large_steps"))
    assert large.family[:-1] == base.family and large.family[-1].name == "large-steps-near-limit-medium"
    assert large.model_dump(exclude={"family", "output"}) == base.model_dump(exclude={"family", "output"})
    assert large.output.directory != base.output.directory
    plans = [plan_programs(config) for config in (base, large)]
    assert all(np.array_equal(a.factors, b.factors) for a, b in zip(*plans, strict=False))  # the same load programs


def test_cli_reports_a_bad_config_without_a_traceback(tmp_path):
    path = tmp_path / "harvest.toml"
    path.write_text('seed = 1\npoints = 3\n[output]\ndirectory = "out"\n')
    result = CliRunner().invoke(app, ["harvest", str(path)])
    assert result.exit_code == 2 and "points: unknown key" in result.output and "family: Field required" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.mpi
@pytest.mark.slow
def test_two_ranks_harvest_the_same_dataset_as_one(tmp_path):
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        pytest.skip("run under mpiexec -n 2")
    shared = Path(comm.bcast(str(tmp_path), root=0))
    serial = run_harvest(harvest_config(shared / "serial", TWO_PROGRAMS, points=40), MPI.COMM_SELF) if comm.rank == 0 else None
    parallel = run_harvest(harvest_config(shared / "parallel", TWO_PROGRAMS, points=40), comm)
    checks = None
    if comm.rank == 0:
        one, two = serial.dataset, parallel.dataset
        runs_one, runs_two = one.meta["harvest"]["simulations"], two.meta["harvest"]["simulations"]
        checks = {
            "points": all(a["points"] == b["points"] for a, b in zip(runs_one, runs_two)),
            "split": np.array_equal(one.split, two.split),
            "mpi size": (one.meta["harvest"]["mpi_size"], two.meta["harvest"]["mpi_size"]) == (1, 2),
            "strain": float(np.abs(one.strain - two.strain).max() / np.abs(one.strain).max()),
            "stress": float(np.abs(one.targets - two.targets).max() / np.abs(one.targets).max()),
            "coordinates": max(float(np.abs(np.subtract(a["coordinates"], b["coordinates"])).max()) for a, b in zip(runs_one, runs_two)),
        }
    checks = comm.bcast(checks, root=0)
    assert parallel.dataset is None if comm.rank else parallel.dataset is not None
    assert checks.pop("points") and checks.pop("split") and checks.pop("mpi size")
    assert all(error < 1e-10 for error in checks.values()), checks


def test_the_wide_harvest_is_the_large_step_one_with_twice_the_programs():
    surrogate = Path(__file__).resolve().parents[2] / "examples" / "surrogate"
    large, wide = (load_config(surrogate / f"{name}.toml", HarvestConfig) for name in ("harvest_large_steps", "harvest_wide"))
    assert [f.programs * 2 for f in large.family] == [f.programs for f in wide.family]
    assert [f.model_dump(exclude={"programs"}) for f in large.family] == [f.model_dump(exclude={"programs"}) for f in wide.family]
    assert wide.seed != large.seed and wide.output.directory != large.output.directory
    assert wide.model_dump(exclude={"family", "output", "seed"}) == large.model_dump(exclude={"family", "output", "seed"})
