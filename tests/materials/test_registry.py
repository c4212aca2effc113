"""Material configs: strict schemas, the factory, and the errors a user sees."""

from __future__ import annotations

import json

import pytest

from femsnn.config import ConfigError, Strict, load_config
from femsnn.materials import (
    ElasticConfig,
    J2Plasticity,
    LinearElastic,
    MaterialConfig,
    MaterialInputError,
    UniaxialPlasticity,
    config_from_description,
    make_material,
    material_types,
    parse_material_config,
)


def test_known_types():
    assert list(material_types()) == ["j2", "uniaxial", "elastic", "spiking"]


@pytest.mark.parametrize(
    ("section", "state", "cls"),
    [
        ({"type": "j2", "E": 7e4, "nu": 0.3, "sigma_y": 250.0, "H_iso": 707.0}, "plane_strain", J2Plasticity),
        ({"type": "uniaxial", "E": 2.1e5, "sigma_y": 300.0, "K_iso": 2.1e3}, "uniaxial_stress", UniaxialPlasticity),
        ({"type": "elastic", "E": 7e4, "nu": 0.3}, "3d", LinearElastic),
    ],
)
def test_make_material_builds_the_described_material(section, state, cls):
    material = make_material(section, state)
    assert isinstance(material, cls)
    description = json.loads(json.dumps(material.describe()))  # fit for JSON reports
    assert description["stress_state"] == state
    for key, value in section.items():
        if key != "type":
            assert description[key] == value
    rebuilt = make_material(config_from_description(description), state)  # e.g. from a dataset's meta
    assert rebuilt.describe() == material.describe()


def test_a_material_without_a_description_schema_cannot_be_rebuilt():
    with pytest.raises(ConfigError, match="'SpikingMaterial' cannot be rebuilt from its description; these can: J2Plasticity"):
        config_from_description({"type": "SpikingMaterial", "model": "m.pt"})


def test_make_material_accepts_a_parsed_config():
    material = make_material(ElasticConfig(E=1.0, nu=0.0), "uniaxial_stress")
    assert material.describe() == {"type": "LinearElastic", "stress_state": "uniaxial_stress", "E": 1.0, "nu": 0.0}


def test_unknown_or_missing_type_lists_the_known_types():
    with pytest.raises(ConfigError, match="unknown material type 'spiky'; known types: 'j2', 'uniaxial', 'elastic', 'spiking'"):
        parse_material_config({"type": "spiky"})
    with pytest.raises(ConfigError, match="no material type given"):
        parse_material_config({"E": 1.0})


def test_unknown_keys_and_bad_values_are_named():
    with pytest.raises(ConfigError, match=r"(?s)nu: Input should be less than 0.5.*yield: unknown key"):
        parse_material_config({"type": "j2", "E": 1.0, "nu": 0.5, "sigma_y": 1.0, "yield": 2.0})
    with pytest.raises(ConfigError, match="H_kin: Input should be greater than or equal to 0"):
        parse_material_config({"type": "j2", "E": 1.0, "nu": 0.3, "sigma_y": 1.0, "H_kin": -1.0})
    with pytest.raises(ConfigError, match="E: Input should be a finite number"):
        parse_material_config({"type": "elastic", "E": float("inf"), "nu": 0.3})


def test_wrong_stress_state_for_the_material_raises():
    with pytest.raises(MaterialInputError, match="UniaxialPlasticity works in stress state 'uniaxial_stress'"):
        make_material({"type": "uniaxial", "E": 1.0, "sigma_y": 1.0}, "plane_strain")


class _Simulation(Strict):
    material: MaterialConfig


def test_material_section_inside_a_toml_config(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[material]\ntype = "j2"\nE = 70e3\nnu = 0.3\nsigma_y = 250.0\n')
    material = make_material(load_config(good, _Simulation).material, "3d")
    assert isinstance(material, J2Plasticity) and material.H_iso == 0.0
    bad = tmp_path / "bad.toml"
    bad.write_text('[material]\ntype = "plastic"\nE = 70e3\n')
    with pytest.raises(ConfigError, match="'j2', 'uniaxial', 'elastic'"):
        load_config(bad, _Simulation)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"backend": "lava-sim-float", "tangent": "surrogate"}, "tangent must be 'elastic' or 'secant'"),
        ({"backend": "lava-sim-fixed", "device": "cuda"}, "runs on the CPU in float64"),
        ({"backend": "lava-sim-float", "history_dtype": "float32"}, "runs on the CPU in float64"),
        ({"backend": "loihi"}, "backend"),
        ({"backend": "lava-sim-float", "rotations": 4}, "runs one network per point: rotations must be 1"),
        ({"rotations": 0}, "rotations"),
        ({"rotations": 2.5}, "rotations"),
    ],
)
def test_spiking_backend_options_are_checked_before_any_model_is_read(extra, message):
    with pytest.raises(ConfigError, match=message):
        parse_material_config({"type": "spiking", "model": "does-not-matter.pt", **extra})
