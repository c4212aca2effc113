"""`femsnn compare`: reference and spiking runs of one problem, their errors, fields and summary; bad input."""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from femsnn.config import ConfigError, load_config
from femsnn.fem.compare import CompareConfig, curve_error_scale, run_comparison, run_comparison_from_file, step_stats
from femsnn.fem.simulate import run_simulation
from tests.fem.helpers import CYLINDER_J2, Q_LIM, cylinder_config, tiny_spiking_model, to_toml

FACTORS = [0.5, 0.9]
EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*/compare.toml"))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_spiking_model(tmp_path_factory.mktemp("model") / "tiny.pt")


def compare_config(directory: Path, model: Path | str, factors: list[float] = FACTORS) -> dict:
    """Coarse cylinder; the random network gets a stress tolerance that accepts one Newton iteration per step."""
    return {
        "problem": {"name": "thick_cylinder", "load": float(Q_LIM)},
        "mesh": {"size": "coarse"},
        "reference": dict(CYLINDER_J2),
        "spiking": {"type": "spiking", "model": str(model), "tangent": "elastic"},
        "loading": {"factors": factors},
        "solver": {"stress_tolerance": "material"},
        "spiking_solver": {"stress_tolerance": 1e4},
        "output": {"directory": str(directory), "progress": False},
    }


@pytest.mark.slow
def test_compare_writes_curves_errors_fields_and_a_finite_summary(tmp_path, model):
    config = compare_config("out", model.name)  # relative paths: relative to the config file
    (tmp_path / "compare.toml").write_text(to_toml(config))
    (tmp_path / model.name).write_bytes(model.read_bytes())
    result = run_comparison_from_file(tmp_path / "compare.toml")
    out = tmp_path / "out"
    assert result.directory == out and result.completed
    for name in ("comparison.csv", "summary.json", "load_displacement.png", "comparison.png"):
        assert (out / name).is_file(), name
    for name in ("comparison_displacement.bp", "comparison_cells.bp", "reference/report.json", "spiking/steps.csv"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == {"reference": "completed", "spiking": "completed"}
    assert [row["step"] for row in summary["steps"]] == [1, 2]
    for key in ("curve_error", "displacement_error", "stress_error"):
        assert summary[key]["steps"] == 2 and 0 < summary[key]["max"] < np.inf, key
        assert summary[key]["mean"] <= summary[key]["max"]
    # the curve error is the probe difference over the largest reference probe value
    u_ref, u_spk = result.runs["reference"].table["u_x_inner"], result.runs["spiking"].table["u_x_inner"]
    np.testing.assert_allclose([r["curve_error"] for r in summary["steps"]], np.abs(u_spk - u_ref) / np.abs(u_ref).max(), rtol=1e-12)
    # the displacement error of the last step is that of the final fields
    u_s, u_r = result.runs["spiking"].displacement, fem.Function(result.runs["spiking"].displacement.function_space)
    u_r.x.array[:] = result.runs["reference"].displacement.x.array
    squared = [fem.assemble_scalar(fem.form(ufl.inner(a, a) * ufl.dx)) for a in (u_s - u_r, u_r)]
    assert summary["steps"][-1]["displacement_error"] == pytest.approx(np.sqrt(squared[0] / squared[1]), rel=1e-10)
    # the wide tolerance of [spiking_solver] applies to the spiking run only
    assert summary["solver"]["reference"]["stress_tolerance"] == 0.0
    assert summary["solver"]["spiking"]["stress_tolerance"] == 1e4
    assert summary["newton_iterations"]["spiking"] == 2  # at least one iteration per step, even when F_0 is tiny
    assert summary["newton_iterations"]["reference"] > 2  # the second step is plastic
    # the spiking material's spike rates per layer (the tiny model has two), means over all points
    rates = summary["diagnostics"]
    assert sorted(rates) == ["spike_rate_layer0", "spike_rate_layer1"] and all(0 < v < 1 for v in rates.values())
    # the network driven along the reference strains (no FE solve) has its own, finite stress error
    for key in ("open_loop_stress_error", "open_loop_von_mises_bias"):
        assert summary[key]["steps"] == 2 and 0 < summary[key]["max"] < np.inf, key
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert float(rows[0]["open_loop_stress_error"]) == pytest.approx(summary["steps"][0]["open_loop_stress_error"])
    assert len(rows) == 2 and float(rows[1]["spike_rate_layer0"]) == pytest.approx(summary["steps"][1]["spike_rate_layer0"])
    assert int(rows[1]["newton_iterations_reference"]) == summary["steps"][1]["newton_iterations_reference"]


def test_open_loop_errors_vanish_when_the_compared_material_is_the_reference(tmp_path, model):
    """J2 driven along J2's own strains at the load steps gives J2's stress: zero error and bias at every step,
    elastic and plastic; a slightly stronger J2 is off only once it yields, with a positive von Mises bias."""
    config = compare_config(tmp_path / "same", model) | {"spiking": dict(CYLINDER_J2)}
    config["output"] |= {"fields": False, "plot": False}
    same = run_comparison(config).summary
    assert [row["step"] for row in same["steps"]] == [1, 2] and same["newton_iterations"]["reference"] > 2
    for row in same["steps"]:
        assert row["open_loop_stress_error"] < 1e-12 and abs(row["open_loop_von_mises_bias"]) < 1e-9
    stronger = config | {"spiking": CYLINDER_J2 | {"sigma_y": CYLINDER_J2["sigma_y"] + 5.0}}
    stronger["output"] = config["output"] | {"directory": str(tmp_path / "stronger")}
    elastic, plastic = run_comparison(stronger).summary["steps"]
    assert elastic["open_loop_stress_error"] < 1e-12  # 0.5 q_lim: below first yield
    assert 0 < plastic["open_loop_von_mises_bias"] <= 5.0 and plastic["open_loop_stress_error"] > 1e-4


def corrupted(model: Path, tmp_path: Path) -> Path:
    path = tmp_path / "corrupted.pt"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


BAD_CONFIGS = {
    "unknown key in a material": (lambda c, m, d: c["spiking"].update(threshold=1.0), r"spiking: .*threshold: unknown key"),
    "unknown section": (lambda c, m, d: c.update(material={"type": "j2"}), r"material: unknown key"),
    "unknown solver override": (lambda c, m, d: c["spiking_solver"].update(tolerance=1.0), r"spiking_solver: .*tolerance: unknown key"),
    "missing model file": (lambda c, m, d: c["spiking"].update(model=str(d / "nowhere.pt")), r"model file not found: .*nowhere.pt"),
    "corrupted model file": (
        lambda c, m, d: c["spiking"].update(model=str(corrupted(m, d))), r"corrupted.pt: (not a readable model file|checksum mismatch)"
    ),
    "plane-strain model on a 3D mesh": (
        lambda c, m, d: c["problem"].update(name="notched_bar", load=0.1), r"trained for stress state 'plane_strain', not '3d'"
    ),
    "spiking material without a model": (lambda c, m, d: c["spiking"].pop("model"), r"spiking: .*model: Field required"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=list(BAD_CONFIGS))
def test_bad_input_fails_before_any_work(tmp_path, model, case):
    edit, message = BAD_CONFIGS[case]
    config = compare_config(tmp_path / "out", model)
    edit(config, model, tmp_path)
    with pytest.raises(ConfigError, match=message):
        run_comparison(config)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_examples_are_valid_configs(path):
    config = load_config(path, CompareConfig)
    assert config.output.directory == (path.parent / tomllib.loads(path.read_text())["output"]["directory"]).resolve()
    shipped = {"cylinder": "cylinder_j2_plane_strain_wide.pt", "plate_cyclic": "cylinder_j2_plane_strain_wide.pt"}
    assert config.spiking.model.resolve() == (path.parents[2] / "femsnn" / "models" / shipped[path.parent.name]).resolve()
    assert config.spiking.model.is_file()
    assert config.simulation("spiking").output.directory == config.output.directory / "spiking"


@pytest.mark.slow
def test_shipped_surrogate_completes_the_cylinder_program(tmp_path):
    """The example's settings (bounded tangent, Newton cap) on the coarse mesh: every load step converges, also
    past q_lim where the network needs tens of iterations, and the curve is within issue 4's 2 % at every step."""
    config = load_config(EXAMPLES[[p.parent.name for p in EXAMPLES].index("cylinder")], CompareConfig)
    config = config.model_copy(update={
        "mesh": config.mesh.model_copy(update={"size": "coarse"}),
        "output": config.output.model_copy(update={"directory": tmp_path, "fields": False, "plot": False, "progress": False}),
    })
    result = run_comparison(config)
    assert result.completed, result.summary["errors"]
    steps = result.summary["steps"]
    assert len(steps) == 19 and all(s["converged_spiking"] for s in steps)
    assert max(s["curve_error"] for s in steps) < 0.02


def test_command_line_reports_bad_configs_without_a_traceback(tmp_path, model):
    from typer.testing import CliRunner

    from femsnn.cli import app

    config = compare_config(tmp_path / "out", tmp_path / "missing.pt")
    (tmp_path / "compare.toml").write_text(to_toml(config))
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "compare.toml")])
    assert result.exit_code == 2 and "model file not found" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.mpi
def test_spiking_run_on_two_ranks_reproduces_the_one_rank_curve(tmp_path):
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        pytest.skip("run under mpiexec -n 2")
    shared = Path(comm.bcast(str(tmp_path), root=0))
    path = tiny_spiking_model(tmp_path / "tiny.pt")  # each rank its own copy of the same (seeded) model
    spiking = {"type": "spiking", "model": str(path), "tangent": "elastic"}
    factors = [0.5, 0.9, 1.0]

    def config(name: str) -> dict:
        return cylinder_config(shared / name, factors, solver={"stress_tolerance": 1e4}) | {"material": spiking}

    serial = run_simulation(config("serial"), MPI.COMM_SELF).table if comm.rank == 0 else None
    parallel = run_simulation(config("parallel"), comm)
    serial = comm.bcast(serial, root=0)
    assert parallel.report["mpi_size"] == 2
    np.testing.assert_array_equal(parallel.table["newton_iterations"], serial["newton_iterations"])
    np.testing.assert_allclose(parallel.table["u_x_inner"], serial["u_x_inner"], rtol=1e-10)
    np.testing.assert_allclose(parallel.table["reaction_y_symmetry"], serial["reaction_y_symmetry"], rtol=1e-10)


@pytest.mark.mpi
def test_comparison_on_two_ranks_gives_the_one_rank_errors(tmp_path, model):
    """Errors are reductions over the ranks' points: closed and open loop match the serial comparison."""
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        pytest.skip("run under mpiexec -n 2")
    shared = Path(comm.bcast(str(tmp_path), root=0))

    def config(name: str) -> dict:
        c = compare_config(shared / name, model)
        c["output"] |= {"fields": False, "plot": False}
        return c

    serial = run_comparison(config("serial"), MPI.COMM_SELF).summary["steps"] if comm.rank == 0 else None
    parallel = run_comparison(config("parallel"), comm).summary["steps"]
    serial = comm.bcast(serial, root=0)
    for key in ("curve_error", "stress_error", "open_loop_stress_error", "open_loop_von_mises_bias"):
        np.testing.assert_allclose([r[key] for r in parallel], [r[key] for r in serial], rtol=1e-8, err_msg=key)


def test_step_statistics_skip_steps_without_the_column_or_a_finite_value():
    """A spiking run that stopped early leaves rows without its diagnostics: the summary must still be written."""
    rows = [{"spike_rate_layer0": 0.2, "bias": -3.0}, {"spike_rate_layer0": 0.4, "bias": 1.0}, {"bias": np.nan}]
    assert step_stats(rows, "spike_rate_layer0") == {"max": 0.4, "mean": pytest.approx(0.3), "steps": 2}
    assert step_stats(rows, "bias", magnitude=True) == {"max": 3.0, "mean": 2.0, "steps": 2}
    assert step_stats(rows, "missing") == {"max": None, "mean": None, "steps": 0}


def test_curve_error_scale_is_the_largest_finite_reference_response():
    """Steps a run did not reach (NaN) must not enter the curve error's denominator; a negative response counts by size."""
    assert curve_error_scale(np.array([0.1, np.nan, -0.3, 0.2])) == 0.3
    assert curve_error_scale(np.array([np.nan])) == 0.0
