"""The strain-driven material-point driver: shapes, equivalence with step-by-step updates, errors."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.materials import J2Plasticity, MaterialInputError, UniaxialPlasticity, drive


def test_shapes_of_stress_tangent_and_history():
    material = J2Plasticity(2e5, 0.3, 300.0, H_kin=1e3, stress_state="plane_strain")
    paths = np.random.default_rng(0).normal(scale=2e-3, size=(5, 7, 4))
    result = drive(material, paths, tangent=True)
    assert result.stress.shape == (5, 7, 4) and result.tangent.shape == (5, 7, 4, 4)
    assert {k: v.shape for k, v in result.history.items()} == {
        "plastic_strain": (5, 7, 4),
        "back_stress": (5, 7, 4),
        "equivalent_plastic_strain": (5, 7),
    }
    lean = drive(material, paths, keep_history=False)
    assert lean.tangent is None and lean.history == {}
    np.testing.assert_array_equal(lean.stress, result.stress)


def test_drive_equals_step_by_step_updates():
    material = UniaxialPlasticity(2.1e5, 300.0, K_iso=2.1e3)
    paths = np.linspace(0, 0.01, 6)[None, :, None] * np.array([1.0, -0.5])[:, None, None]
    result = drive(material, paths, dt=np.arange(1.0, 7.0), tangent=True)
    history = material.initial_history(2)
    for t in range(6):
        step = material.update(paths[:, t], history, dt=t + 1.0)
        np.testing.assert_array_equal(result.stress[:, t], step.stress)
        np.testing.assert_array_equal(result.tangent[:, t], step.tangent)
        history = step.history
        for name, value in history.items():
            np.testing.assert_array_equal(result.history[name][:, t], value)


def test_bad_paths_and_steps_raise():
    material = J2Plasticity(2e5, 0.3, 300.0)
    with pytest.raises(MaterialInputError, match=r"\(paths, steps, 6\)"):
        drive(material, np.zeros((3, 6)))
    with pytest.raises(MaterialInputError, match=r"\(paths, steps, 6\)"):
        drive(material, np.zeros((2, 3, 4)))
    bad = np.zeros((2, 3, 6))
    bad[1, 2, 0] = np.nan
    with pytest.raises(MaterialInputError, match="NaN or inf"):
        drive(material, bad)
    with pytest.raises(MaterialInputError, match="one value per step"):
        drive(material, np.zeros((2, 3, 6)), dt=[1.0, 1.0])
    with pytest.raises(MaterialInputError, match="dt must be positive"):
        drive(material, np.zeros((2, 3, 6)), dt=-1.0)
