"""The example of femsnn materials in a user's own dolfinx script runs and gives the elastic answer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_dolfinx" / "plate_in_tension.py"


def test_own_dolfinx_example_converges_and_starts_elastic():
    spec = importlib.util.spec_from_file_location("plate_in_tension", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    curves = example.main(["--cells", "2", "--steps", "3"])
    assert [len(rows) for rows in curves.values()] == [3, 3]  # every step converged, both materials
    u_x, force, iterations = curves["j2"][0]
    strain = u_x / 10.0  # free top edge: uniaxial stress in plane strain, sigma_xx = E / (1 - nu^2) e_xx
    assert force == pytest.approx(70e3 / (1 - 0.3**2) * strain * 10.0, rel=1e-9)
    assert iterations == 1
