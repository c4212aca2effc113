"""Checkpoints and resume: a run stopped after k load steps and resumed ends exactly as an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from femsnn.fem.checkpoint import CHECKPOINT_DIR, STATE_NAME, CheckpointError
from femsnn.fem.simulate import run_simulation
from tests.fem.helpers import cylinder_config, tiny_spiking_model, to_toml

FACTORS = [0.6, 0.9, 1.0, 0.5]  # elastic, plastic, further plastic, unloading


class Stop(Exception):
    """Stands for a kill: raised by the observer after a given load step."""


def stop_after(k: int):
    def observer(step: int, factor: float, solver) -> None:
        if step == k:
            raise Stop

    return observer


@pytest.fixture(scope="module")
def spiking(tmp_path_factory) -> dict:
    """A tiny random spiking material section; the wide stress tolerance takes one Newton iteration per step."""
    path = tiny_spiking_model(tmp_path_factory.mktemp("model") / "tiny.pt")
    return {"material": {"type": "spiking", "model": str(path), "tangent": "elastic"}, "solver": {"stress_tolerance": 1e4}}


def config(directory: Path, extra: dict | None = None) -> dict:
    base = cylinder_config(directory, FACTORS)
    for name, section in (extra or {}).items():
        base[name] = section if name == "material" else {**base.get(name, {}), **section}
    return base


def assert_same_run(resumed, uninterrupted) -> None:
    """Same table, fields and solves to 1e-12 (parallel MUMPS is not bitwise reproducible run to run)."""
    for column, values in uninterrupted.table.items():
        if not column.startswith("time_"):
            np.testing.assert_allclose(resumed.table[column], values, rtol=1e-12, atol=0, err_msg=column)
    np.testing.assert_allclose(resumed.displacement.x.array, uninterrupted.displacement.x.array, rtol=0, atol=1e-12)
    for name, values in uninterrupted.history.items():
        np.testing.assert_allclose(resumed.history[name], values, rtol=0, atol=1e-12, err_msg=name)

    def solves(result) -> list[dict]:  # residual norms at convergence are round-off: not compared
        return [{k: v for k, v in i.items() if k not in ("timings", "residual_norm")} for i in result.report["increments"]]

    assert solves(resumed) == solves(uninterrupted)


@pytest.mark.parametrize("material", ["j2", "spiking"])
def test_a_stopped_and_resumed_run_ends_as_an_uninterrupted_one(tmp_path, material, request):
    extra = request.getfixturevalue("spiking") if material == "spiking" else None
    uninterrupted = run_simulation(config(tmp_path / "whole", extra))
    with pytest.raises(Stop):
        run_simulation(config(tmp_path / "parts", extra), observer=stop_after(2))
    state = json.loads((tmp_path / "parts" / CHECKPOINT_DIR / STATE_NAME).read_text())
    assert state["step"] == 2 and state["load_factor"] == FACTORS[1]
    assert sorted(p.name for p in (tmp_path / "parts" / CHECKPOINT_DIR).iterdir()) == ["state.json", "step-000002.rank0.npz"]
    resumed = run_simulation(config(tmp_path / "parts", extra), resume=True)
    assert resumed.report["resumed_after_step"] == 2 and resumed.report["status"] == "completed"
    assert_same_run(resumed, uninterrupted)
    rows = (tmp_path / "parts" / "steps.csv").read_text().splitlines()
    assert len(rows) == 1 + len(FACTORS)  # the table covers the whole run


def test_resume_refuses_a_missing_checkpoint_or_another_configuration(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        run_simulation(config(tmp_path / "none"), resume=True)
    assert not (tmp_path / "none").exists()  # nothing was written
    with pytest.raises(Stop):
        run_simulation(config(tmp_path / "run"), observer=stop_after(1))
    table = (tmp_path / "run" / "steps.csv").read_text()
    changed = config(tmp_path / "run")
    changed["problem"]["load"] *= 1.01
    with pytest.raises(CheckpointError, match=r"different configuration \(sections \['problem'\]\)"):
        run_simulation(changed, resume=True)
    assert (tmp_path / "run" / "steps.csv").read_text() == table  # untouched by the refused resume


def test_resume_refuses_history_stored_in_another_dtype(tmp_path, spiking):
    with pytest.raises(Stop):
        run_simulation(config(tmp_path, spiking), observer=stop_after(1))
    saved = tmp_path / CHECKPOINT_DIR / "step-000001.rank0.npz"
    with np.load(saved) as npz:
        arrays = dict(npz)
    other = np.float32 if arrays["history"].dtype == np.float64 else np.float64
    np.savez(saved, **{**arrays, "history": arrays["history"].astype(other)})
    with pytest.raises(CheckpointError, match=f"history stored as {np.dtype(other)}"):
        run_simulation(config(tmp_path, spiking), resume=True)


def test_a_resumed_run_writes_its_fields_beside_the_first_part(tmp_path):
    fields = {"output": {"fields": True}}
    with pytest.raises(Stop):
        run_simulation(config(tmp_path, fields), observer=stop_after(3))
    run_simulation(config(tmp_path, fields), resume=True)
    assert (tmp_path / "displacement.bp").is_dir() and (tmp_path / "displacement_from_0004.bp").is_dir()
    assert (tmp_path / "cell_fields_from_0004.bp").is_dir()


def test_command_line_resume(tmp_path):
    from typer.testing import CliRunner

    from femsnn.cli import app

    path = tmp_path / "run.toml"
    path.write_text(to_toml(config(tmp_path / "out")))
    result = CliRunner().invoke(app, ["simulate", str(path), "--resume"])
    assert result.exit_code == 2 and "no checkpoint to resume from" in result.output
    assert CliRunner().invoke(app, ["simulate", str(path)]).exit_code == 0
    result = CliRunner().invoke(app, ["simulate", str(path), "--resume"])  # a finished run resumes to itself
    assert result.exit_code == 0 and f"{len(FACTORS)} converged increments" in result.output


@pytest.mark.mpi
def test_resume_on_two_ranks(tmp_path):
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        pytest.skip("run under mpiexec -n 2")
    shared = Path(comm.bcast(str(tmp_path), root=0))
    uninterrupted = run_simulation(config(shared / "whole"), comm)
    with pytest.raises(Stop):
        run_simulation(config(shared / "parts"), comm, observer=stop_after(2))
    files = sorted(p.name for p in (shared / "parts" / CHECKPOINT_DIR).iterdir())
    assert files == ["state.json", "step-000002.rank0.npz", "step-000002.rank1.npz"]
    resumed = run_simulation(config(shared / "parts"), comm, resume=True)
    assert_same_run(resumed, uninterrupted)
