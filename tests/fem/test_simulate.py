"""`femsnn simulate`: strict configs that fail before any work, and the files a run leaves behind."""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from femsnn.config import ConfigError, load_config
from femsnn.fem.mesh import write_mesh
from femsnn.fem.simulate import SimulationConfig, run_simulation_from_file
from tests.fem.helpers import cylinder_config, to_toml

#: the example simulate configs: those with a [problem] and a [material] (compare and harvest files differ)
EXAMPLES = [
    path
    for path in sorted((Path(__file__).parents[2] / "examples").glob("*/*.toml"))
    if {"problem", "material"} <= tomllib.loads(path.read_text()).keys()
]


def write_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(to_toml(config))
    return path


def cylinder_mesh_file(tmp_path: Path) -> Path:
    return write_mesh("cylinder", "coarse", tmp_path / "cylinder.msh")


BAD_CONFIGS = {
    "negative E": (lambda c, d: c["material"].update(E=-70e3), r"E: Input should be greater than 0"),
    "nu out of range": (lambda c, d: c["material"].update(nu=0.5), r"nu: Input should be less than 0.5"),
    "sigma_y zero": (lambda c, d: c["material"].update(sigma_y=0.0), r"sigma_y: Input should be greater than 0"),
    "unknown material": (lambda c, d: c.update(material={"type": "rubber", "E": 1.0}), r"unknown .*type 'rubber'"),
    "unknown problem": (lambda c, d: c["problem"].update(name="sphere"), r"unknown problem 'sphere'"),
    "missing mesh file": (lambda c, d: c.update(mesh={"file": "nowhere.msh"}), r"mesh file not found: .*nowhere.msh"),
    "wrong mesh dimension": (
        lambda c, d: (c["problem"].update(name="notched_bar"), c.update(mesh={"file": str(cylinder_mesh_file(d))})),
        r"mesh is 2D .* needs a 3D mesh",
    ),
    "unknown key": (lambda c, d: c["solver"].update(tolerance=1e-6), r"solver.tolerance: unknown key"),
    "unknown section": (lambda c, d: c.update(postprocess={"plot": True}), r"postprocess: unknown key"),
    "control of a pressure problem": (
        lambda c, d: c["problem"].update(control="traction"), r"'control' does not apply"
    ),
    "two load programs": (
        lambda c, d: c["loading"].update(turning_points=[1.0], steps_per_segment=2), r"exactly one of 'factors'"
    ),
    "unknown mesh preset": (lambda c, d: c["mesh"].update(size="huge"), r"must be a number or one of"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=list(BAD_CONFIGS))
def test_bad_input_fails_before_any_work(tmp_path, case):
    edit, message = BAD_CONFIGS[case]
    config = cylinder_config(tmp_path / "out", [0.5], solver={})
    edit(config, tmp_path)
    with pytest.raises(ConfigError, match=message):
        run_simulation_from_file(write_config(tmp_path, config))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path", EXAMPLES, ids=[f"{p.parent.name}/{p.name}" for p in EXAMPLES])
def test_examples_are_valid_configs(path):
    config = load_config(path, SimulationConfig)
    written = tomllib.loads(path.read_text())["output"]["directory"]
    assert config.output.directory == (path.parent / written).resolve()  # relative to the file, not the cwd
    assert len(config.loading.program()) > 0


def test_a_run_writes_table_report_fields_and_plot(tmp_path):
    config = cylinder_config(tmp_path / "out", [], loading={"factors": None})
    config["problem"] = {"name": "plate_with_hole", "load": 0.02, "control": "displacement"}
    config["loading"] = {"turning_points": [1.0], "steps_per_segment": 2}
    config["output"].update(fields=True, plot=True)
    result = run_simulation_from_file(write_config(tmp_path, config))
    out = tmp_path / "out"
    rows = list(csv.DictReader((out / "steps.csv").open()))
    assert [float(r["load_factor"]) for r in rows] == pytest.approx([0.5, 1.0])
    assert {"step", "load", "u_y_load", "reaction_y_load", "newton_iterations", "converged_reason", "cutbacks"} <= set(rows[0])
    np.testing.assert_allclose(result.table["u_y_load"], 0.02 * result.table["load_factor"], rtol=1e-10)
    # the load edge and the symmetry edge carry opposite forces
    np.testing.assert_allclose(result.table["reaction_y_load"], -result.table["reaction_y_symmetry"], rtol=1e-9)
    assert result.table["reaction_y_load"][1] > result.table["reaction_y_load"][0] > 0
    assert result.history["equivalent_plastic_strain"].max() > 0  # the hole yields
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "completed" and report["mpi_size"] == 1
    assert report["mesh"]["quadrature_points"] == len(result.history["equivalent_plastic_strain"])
    assert report["material"]["type"] == "J2Plasticity"
    assert [i["newton_iterations"] for i in report["increments"]] == [int(r["newton_iterations"]) for r in rows]
    assert set(report["timings"]) == {"material", "assembly", "solve", "total", "wall"}
    for name in ("load_displacement.png", "displacement.bp", "cell_fields.bp"):
        assert (out / name).exists(), name


def test_command_line_reports_bad_configs_and_collapse_without_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from femsnn.cli import app

    bad = cylinder_config(tmp_path / "bad", [0.5], solver={"tolerance": 1.0})
    result = CliRunner().invoke(app, ["simulate", str(write_config(tmp_path, bad))])
    assert result.exit_code == 2 and "solver.tolerance: unknown key" in result.output
    perfect = {"type": "j2", "E": 70e3, "nu": 0.3, "sigma_y": 250.0}
    beyond = cylinder_config(tmp_path / "collapse", [1.2], loading={"max_cutbacks": 1}) | {"material": perfect}
    result = CliRunner().invoke(app, ["simulate", str(write_config(tmp_path, beyond))])
    assert result.exit_code == 2 and "load step 1 (target load factor 1.2) did not converge" in result.output
