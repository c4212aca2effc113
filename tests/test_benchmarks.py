"""The spiking-FE benchmark (issue 4's timing script) runs and prints a ratio consistent with its own table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_spiking_fe.py"


def run_bench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FEMSNN_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_spiking_fe_benchmark_prints_both_runs_and_their_ratio() -> None:
    """Two load steps on the coarse cylinder with the example's model: both rows, and ratio = spiking / reference."""
    result = run_bench("--sizes", "coarse", "--steps", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "cylinder_j2_plane_strain_wide.pt (rotations 4)" in out
    rows = {m[1]: (int(m[2]), float(m[3])) for m in re.finditer(r"^\s*(reference|spiking)\s+(\d+)\s+([\d.]+)", out, re.M)}
    assert rows["reference"][0] == rows["spiking"][0] == 2
    ratio = float(re.search(r"spiking / reference time per load step: ([\d.]+)", out)[1])
    assert ratio == pytest.approx(rows["spiking"][1] / rows["reference"][1], rel=0.01, abs=0.01)


def test_spiking_fe_benchmark_refuses_a_missing_model(tmp_path: Path) -> None:
    """A model path that does not exist stops the benchmark before any work, naming the path."""
    result = run_bench("--model", str(tmp_path / "none.pt"))
    assert result.returncode == 2
    assert "model file not found" in result.stderr and "none.pt" in result.stderr


def test_spiking_fe_benchmark_refuses_no_rotations() -> None:
    """--rotations 0 would average over no frames: refused before any work."""
    result = run_bench("--rotations", "0")
    assert result.returncode == 2 and "--rotations must be at least 1" in result.stderr
