"""The named problems: supports and loads in equilibrium, probes where the loads act."""

from __future__ import annotations

import pytest

from femsnn.fem.mesh import PLATE_HALF_WIDTH
from femsnn.fem.problems import make_problem
from femsnn.fem.simulate import run_simulation
from tests.fem.helpers import cylinder_config

ELASTIC = {"type": "elastic", "E": 70e3, "nu": 0.3}


def elastic_run(tmp_path, name: str, load: float, control: str) -> dict:
    config = cylinder_config(tmp_path, [1.0]) | {"material": ELASTIC}
    config["problem"] = {"name": name, "load": load, "control": control}
    return run_simulation(config).table


def test_unknown_problem_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown problem 'disc'; known problems: thick_cylinder, plate_with_hole"):
        make_problem("disc", 1.0)


def test_plate_pulled_by_a_traction_is_held_by_its_symmetry_support(tmp_path):
    table = elastic_run(tmp_path, "plate_with_hole", 50.0, "traction")
    assert table["reaction_y_symmetry"][0] == pytest.approx(-50.0 * PLATE_HALF_WIDTH, rel=1e-9)
    plain_plate = (1 - 0.3**2) * 50.0 / 70e3 * PLATE_HALF_WIDTH  # plane strain, no hole
    assert table["u_y_load"][0] > plain_plate  # the hole makes the plate more compliant


def test_notched_bar_grip_force_goes_through_to_the_clamp(tmp_path):
    table = elastic_run(tmp_path, "notched_bar", 0.01, "displacement")
    assert table["u_z_load"][0] == pytest.approx(0.01, rel=1e-12)
    assert table["reaction_z_load"][0] > 0
    assert table["reaction_z_load"][0] == pytest.approx(-table["reaction_z_clamp"][0], rel=1e-9)
