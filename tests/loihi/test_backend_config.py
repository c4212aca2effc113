"""A spiking material section with a Lava backend builds the Lava-run material."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.loihi.backend import LavaSpikingMaterial
from femsnn.materials import make_material, parse_material_config
from tests.fem.helpers import tiny_spiking_model


@pytest.mark.lava
@pytest.mark.usefixtures("lava_env")
def test_lava_backend_from_a_config_section_steps_like_torch(tmp_path):
    model = tiny_spiking_model(tmp_path / "model.pt")
    section = {"type": "spiking", "model": str(model), "backend": "lava-sim-float"}
    material = make_material(parse_material_config(section), "plane_strain")
    reference = make_material(parse_material_config({**section, "backend": "torch", "dtype": "float64"}), "plane_strain")
    assert isinstance(material, LavaSpikingMaterial)
    with material:
        assert material.backend == "sim-float"
        strain = np.random.default_rng(0).normal(scale=1e-3, size=(5, 4))
        history = material.initial_history(5)
        got, want = material.update(strain, history), reference.update(strain, history)
    np.testing.assert_allclose(got.stress, want.stress, rtol=1e-9, atol=1e-9)
