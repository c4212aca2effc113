"""The FE anchor of science notes section 6: the pressurised thick-walled cylinder (quarter, plane strain)."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.fem.analytic import ThickCylinder
from femsnn.fem.simulate import SimulationFailed, run_simulation
from tests.fem.helpers import Q_LIM, cylinder_config

#: the reference program q / q_lim = sqrt(linspace(0, 1.1, 20)) without its leading 0 (19 load steps)
REFERENCE_FACTORS = np.sqrt(np.linspace(0.0, 1.1, 20))[1:]


def test_elastic_compliance_matches_lame(tmp_path):
    elastic = {"type": "elastic", "E": 70e3, "nu": 0.3}
    result = run_simulation(cylinder_config(tmp_path, [0.5]) | {"material": elastic})
    compliance = result.table["u_x_inner"][0] / result.table["load"][0]
    assert compliance == pytest.approx(ThickCylinder().compliance(), rel=1e-3)
    assert compliance == pytest.approx(5.6253e-5, rel=1e-3)
    # the y-support carries the pressure's resultant on the quarter's inner arc, q R_i
    assert result.table["reaction_y_symmetry"][0] == pytest.approx(-result.table["load"][0], rel=1e-10)


@pytest.mark.slow
def test_reference_cylinder_matches_the_mesh_converged_displacements(tmp_path):
    result = run_simulation(cylinder_config(tmp_path, REFERENCE_FACTORS, mesh={"size": 0.01}))
    table = result.table
    assert result.report["mesh"]["quadrature_points"] > 35_000
    # q / q_lim = 1.0208 and 1.0488 are the last two steps (indices 18 and 19 of the 20-point linspace)
    np.testing.assert_allclose(table["load_factor"][-2:], [1.0208, 1.0488], atol=1e-4)
    np.testing.assert_allclose(table["u_x_inner"][-2:], [0.013225, 0.023841], rtol=5e-3)
    assert table["newton_iterations"].max() <= 8
    assert np.all(table["cutbacks"] == 0)


def test_perfect_plasticity_stops_at_the_limit_load(tmp_path):
    perfect = {"type": "j2", "E": 70e3, "nu": 0.3, "sigma_y": 250.0}
    config = cylinder_config(tmp_path / "run", [0.5, 0.8, 0.95, 1.1], loading={"max_cutbacks": 10})
    with pytest.raises(SimulationFailed, match="load step 4 .*last converged load factor") as failure:
        run_simulation(config | {"material": perfect})
    table = failure.value.result.table
    collapse = table["load"][-1]
    assert collapse == pytest.approx(ThickCylinder().limit_pressure(), rel=5e-3)
    assert collapse == pytest.approx(75.738, rel=5e-3)
    assert table["cutbacks"][-1] == 10
    # the converged increments were written before the error
    rows = (tmp_path / "run" / "steps.csv").read_text().splitlines()
    assert len(rows) == 1 + len(table["load"])
    assert failure.value.result.report["status"] == "failed"


def test_cut_back_run_ends_in_the_state_of_an_uncut_run_through_the_same_factors(tmp_path):
    # a single step to q_lim needs more than 7 Newton iterations: it is halved until the pieces converge
    newton = {"max_it": 7}
    cut = run_simulation(cylinder_config(tmp_path / "cut", [1.0], solver=newton, loading={"max_cutbacks": 4}))
    assert cut.table["cutbacks"].max() > 0 and len(cut.table["load_factor"]) > 1
    assert any(not increment["converged"] for increment in cut.report["increments"])
    steps = list(cut.table["load_factor"])
    uncut = run_simulation(cylinder_config(tmp_path / "uncut", steps, solver=newton, loading={"max_cutbacks": 0}))
    assert np.all(uncut.table["cutbacks"] == 0)
    assert uncut.history["equivalent_plastic_strain"].max() > 0
    for name, values in cut.history.items():
        np.testing.assert_allclose(values, uncut.history[name], rtol=0, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(cut.displacement.x.array, uncut.displacement.x.array, rtol=0, atol=1e-14)
    assert cut.table["load"][-1] == pytest.approx(Q_LIM, rel=1e-14)
