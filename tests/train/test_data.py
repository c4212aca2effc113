"""Data generators against the authors' code, the dataset file format, input features, seeds."""

import json

import numpy as np
import pytest
from pydantic import TypeAdapter

from femsnn.config import ConfigError, parse_config
from femsnn.mandel import von_mises
from femsnn.materials import J2Plasticity, drive
from femsnn.train.data import (
    Dataset,
    DatasetFileError,
    GeneratorSettings,
    IsotropicHardeningSettings,
    concatenate,
    generate,
    hold_to_length,
    ramberg_osgood_stress,
    strain_inputs,
    strain_step_inputs,
)

SETTINGS = TypeAdapter(GeneratorSettings)


def settings(**kw):
    return SETTINGS.validate_python(kw)


def authors_isotropic_hardening(strains, yield_stress=300.0, elastic_modulus=2.1e5, hardening_modulus=2.1e3):
    """Transcription of ``isotropic_hardening`` in the authors' src/dataset.py (float64, one path)."""
    strain_plastic, alpha, stresses = 0.0, 0.0, []
    for strain in strains:
        trial = elastic_modulus * (strain - strain_plastic)
        f = abs(trial) - (yield_stress + hardening_modulus * alpha)
        if f < 0:
            stresses.append(trial)
        else:
            dgamma = f / (hardening_modulus + elastic_modulus)
            stresses.append((1 - dgamma * elastic_modulus / abs(trial)) * trial)
            alpha += dgamma
            strain_plastic += np.sign(trial) * dgamma
    return np.array(stresses)


@pytest.fixture(scope="module")
def iso():
    return generate(settings(generator="isotropic_hardening", n_train=64, n_val=16, n_test=16))


def test_isotropic_hardening_paths_are_the_authors_triangles(iso):
    strain = iso.strain[..., 0]
    assert iso.inputs.shape == iso.targets.shape == iso.strain.shape == (96, 100, 1)
    peak = strain[:, 49]
    assert np.all((peak > 0) & (peak < 0.01))
    np.testing.assert_array_equal(strain[:, 50], peak)  # the peak is repeated
    np.testing.assert_array_equal(strain[:, 50:], strain[:, 49::-1])  # unloading mirrors loading
    np.testing.assert_allclose(strain[:, :50], peak[:, None] * np.linspace(0, 1, 50), rtol=1e-15, atol=0)
    assert np.all(strain[:, -1] == 0)


def test_isotropic_hardening_labels_equal_the_authors_return_mapping(iso):
    for path in range(0, 96, 7):
        expected = authors_isotropic_hardening(iso.strain[path, :, 0])
        np.testing.assert_allclose(iso.targets[path, :, 0], expected, rtol=1e-12, atol=1e-9)


def test_isotropic_hardening_reyields_in_compression_as_often_as_the_closed_form_says():
    s = IsotropicHardeningSettings(generator="isotropic_hardening", n_train=20000, n_val=1, n_test=1)
    data = generate(s).part("train")
    unload_strain = np.diff(data.strain[:, 49:, 0], axis=1)
    unload_stress = np.diff(data.targets[:, 49:, 0], axis=1)
    reyielded = np.any(np.abs(unload_stress - s.E * unload_strain) > 1e-6, axis=1)
    # reverse yield iff E e_max > 2 (sigma_y + K alpha) with alpha = (e_max - sigma_y/E) E / (E + K)
    EK = s.E * s.hardening_modulus / (s.E + s.hardening_modulus)
    threshold = (2 * s.sigma_y - 2 * EK * s.sigma_y / s.E) / (s.E - 2 * EK)
    expected = 1 - threshold / s.max_strain
    sigma = np.sqrt(expected * (1 - expected) / len(reyielded))
    assert abs(reyielded.mean() - expected) < 4 * sigma
    assert 0.70 < reyielded.mean() < 0.73  # the "72 %" of the science notes


def test_ramberg_osgood_solves_the_power_law_with_yield_stress_as_only_input():
    data = generate(settings(generator="ramberg_osgood", n_train=32, n_val=8, n_test=8))
    assert data.inputs.shape == (48, 20, 1) and data.input_features == ("yield_stress",)
    yield_stress = data.inputs[:, 0, 0]
    assert np.all(data.inputs == yield_stress[:, None, None]) and np.all((yield_stress >= 100) & (yield_stress <= 500))
    np.testing.assert_array_equal(data.strain[0, :, 0], np.linspace(0, 0.01, 20))
    e, s = data.strain[..., 0], data.targets[..., 0]
    residual = e - s / 2.1e5 - 0.002 * (s / yield_stress[:, None]) ** 10
    assert np.max(np.abs(residual)) < 1e-13
    assert np.all(np.diff(s, axis=1) > 0)


def test_ramberg_osgood_rejects_negative_strain():
    with pytest.raises(ValueError, match="non-negative"):
        ramberg_osgood_stress(np.array([-1e-3]), np.array([300.0]), 2.1e5, 10.0)


def test_elasticity_is_hookes_law_on_ramps():
    data = generate(settings(generator="elasticity", steps=10, n_train=8, n_val=2, n_test=2))
    np.testing.assert_array_equal(data.targets, 2.1e5 * data.strain)
    e = data.strain[..., 0]
    np.testing.assert_allclose(e, e[:, -1:] * np.linspace(0, 1, 10), rtol=1e-15)
    assert np.all((e[:, -1] > 0) & (e[:, -1] < 0.01))


@pytest.mark.parametrize("state, n", [("3d", 6), ("plane_strain", 4)])
def test_j2_random_walks_load_unload_reverse_and_are_labelled_by_drive(state, n):
    data = generate(settings(generator="j2_random_walk", stress_state=state, n_train=24, n_val=4, n_test=4, increments=True))
    strain, stress = data.strain, data.targets
    assert strain.shape == stress.shape == (32, 100, n) and data.inputs.shape == (32, 100, 2 * n)
    if state == "plane_strain":
        assert np.all(strain[..., 2] == 0)
    assert np.linalg.norm(strain, axis=-1).max() <= 0.01 * (1 + 1e-12)
    steps = np.diff(strain, axis=1)
    reversals = np.einsum("ptk,ptk->pt", steps[:, 1:], steps[:, :-1]) < 0
    assert reversals.any(axis=1).mean() > 0.5  # most paths turn back at least once
    sizes = np.linalg.norm(steps, axis=-1)
    assert sizes.max() > 5 * np.median(sizes)  # varied step sizes
    material = J2Plasticity(2.1e5, 0.3, 300.0, H_iso=2.1e3, stress_state=state)
    np.testing.assert_array_equal(stress, drive(material, strain).stress)
    assert von_mises(stress).max() > 300.0  # the walks go plastic


def test_increments_are_rebuilt_from_strain_alone():
    data = generate(settings(generator="isotropic_hardening", increments=True, n_train=4, n_val=2, n_test=2))
    strain = data.strain
    np.testing.assert_array_equal(data.inputs[..., 0], strain[..., 0])
    np.testing.assert_array_equal(data.inputs[:, 0, 1], strain[:, 0, 0])
    np.testing.assert_array_equal(data.inputs[:, 1:, 1], np.diff(strain[..., 0], axis=1))
    t = 37
    np.testing.assert_array_equal(strain_step_inputs(strain[:, t], strain[:, t - 1], True), data.inputs[:, t])
    np.testing.assert_array_equal(data.inputs_for(("strain",)), strain)
    assert data.input_features == ("strain", "strain_increment")
    assert data.meta["input_names"] == ["strain_xx", "strain_increment_xx"]


def test_seeds_are_reproducible_and_splits_independent():
    a = generate(settings(generator="j2_random_walk", n_train=8, n_val=4, n_test=4, steps=20))
    b = generate(settings(generator="j2_random_walk", n_train=8, n_val=4, n_test=4, steps=20))
    c = generate(settings(generator="j2_random_walk", n_train=12, n_val=4, n_test=4, steps=20))
    d = generate(settings(generator="j2_random_walk", n_train=8, n_val=4, n_test=4, steps=20, seed=7))
    np.testing.assert_array_equal(a.strain, b.strain)
    np.testing.assert_array_equal(a.part("test").strain, c.part("test").strain)
    assert not np.array_equal(a.part("test").strain, d.part("test").strain)


def test_dataset_file_round_trip(tmp_path, iso):
    path = iso.save(tmp_path / "iso.npz")
    back = Dataset.load(path)
    for name in ("inputs", "targets", "strain", "split"):
        np.testing.assert_array_equal(getattr(back, name), getattr(iso, name))
    assert back.meta == iso.meta
    assert back.meta["generator"]["generator"] == "isotropic_hardening"
    assert back.meta["material"]["K_iso"] == 2.1e3
    assert len(back.part("val")) == 16


def test_foreign_or_damaged_dataset_files_are_refused(tmp_path, iso):
    with pytest.raises(DatasetFileError, match="not found"):
        Dataset.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(DatasetFileError, match="missing"):
        Dataset.load(tmp_path / "foreign.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DatasetFileError, match="not a readable"):
        Dataset.load(tmp_path / "text.npz")
    arrays = dict(inputs=iso.inputs, targets=iso.targets, strain=iso.strain, split=iso.split)
    np.savez(tmp_path / "v2.npz", **arrays, meta=np.array(json.dumps({**iso.meta, "version": 2})))
    with pytest.raises(DatasetFileError, match="version 2"):
        Dataset.load(tmp_path / "v2.npz")
    np.savez(tmp_path / "short.npz", **{**arrays, "targets": iso.targets[:, :50]}, meta=np.array(json.dumps(iso.meta)))
    with pytest.raises(DatasetFileError, match="targets"):
        Dataset.load(tmp_path / "short.npz")
    with pytest.raises(DatasetFileError, match="needs"):
        iso.inputs_for(("yield_stress",))


def test_bad_generator_settings_are_config_errors():
    from femsnn.config import Strict

    class Wrapper(Strict):
        data: GeneratorSettings

    with pytest.raises(ConfigError, match="max_strain"):
        parse_config({"data": {"generator": "isotropic_hardening", "max_strain": -1}}, Wrapper)
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config({"data": {"generator": "elasticity", "K": 1.0}}, Wrapper)
    with pytest.raises(ConfigError, match="steps"):
        parse_config({"data": {"generator": "isotropic_hardening", "steps": 99}}, Wrapper)
    with pytest.raises(ConfigError, match="generator"):
        parse_config({"data": {"generator": "hyperelastic"}}, Wrapper)


def test_strain_inputs_start_from_rest():
    strain = np.arange(6.0).reshape(1, 3, 2)
    np.testing.assert_array_equal(strain_inputs(strain, True)[0, 0], [0, 1, 0, 1])


def test_hold_to_length_holds_the_last_state_with_zero_increments():
    data = generate(settings(generator="j2_random_walk", steps=10, n_train=3, n_val=1, n_test=1, increments=True))
    held = hold_to_length(data, 14)
    assert held.inputs.shape == (5, 14, 12)
    np.testing.assert_array_equal(held.strain[:, 10:], np.repeat(data.strain[:, -1:], 4, axis=1))
    np.testing.assert_array_equal(held.targets[:, 10:], np.repeat(data.targets[:, -1:], 4, axis=1))
    assert np.all(held.inputs[:, 10:, 6:] == 0)
    with pytest.raises(ValueError, match="shorter"):
        hold_to_length(data, 5)


def test_concatenate_joins_paths_of_one_material_and_refuses_others():
    a = generate(settings(generator="j2_random_walk", steps=10, n_train=3, n_val=1, n_test=1))
    b = generate(settings(generator="j2_random_walk", steps=6, n_train=2, n_val=1, n_test=1, seed=3))
    both = concatenate([a, b], a.meta)
    assert both.inputs.shape == (9, 10, 6) and len(both.part("train")) == 5
    other = generate(settings(generator="j2_random_walk", stress_state="plane_strain", steps=10, n_train=1, n_val=1, n_test=1))
    with pytest.raises(DatasetFileError, match="differ"):
        concatenate([a, other], a.meta)
