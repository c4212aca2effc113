"""Augmentation by changes of frame: turned paths are still paths of the (isotropic) material, in any frame."""

import copy

import numpy as np
import pytest
import torch

from femsnn.materials import J2Plasticity, drive
from femsnn.snn.networks import SpikingRegressor
from femsnn.train.augment import PathRotations
from femsnn.train.data import J2RandomWalkSettings, generate
from femsnn.train.harness import TrainingSettings, train
from femsnn.train.normalisation import Normalisation

MATERIAL = {"type": "j2", "E": 70e3, "nu": 0.3, "sigma_y": 250.0, "H_iso": 700.0}


def walks(stress_state: str = "plane_strain"):
    settings = J2RandomWalkSettings(
        generator="j2_random_walk", stress_state=stress_state, n_train=16, n_val=4, n_test=4, steps=10,
        increments=True, material=MATERIAL,
    )  # fmt: skip
    return generate(settings)


@pytest.mark.parametrize("stress_state", ["plane_strain", "3d"])
def test_turned_paths_are_paths_of_the_same_material(stress_state):
    data = walks(stress_state).part("train")
    norm = Normalisation.fit(data.inputs, data.targets)
    x, y = (torch.as_tensor(a) for a in (norm.encode_inputs(data.inputs), norm.encode_targets(data.targets)))
    turned_x, turned_y = PathRotations(norm, data.meta)(x, y, torch.Generator().manual_seed(0))
    inputs, stress = norm.decode_inputs(turned_x).numpy(), norm.decode_targets(turned_y).numpy()
    n = stress.shape[-1]
    strain, increments = inputs[..., :n], inputs[..., n:]
    assert np.abs(strain - data.inputs[..., :n]).max() > 1e-3  # the frames did change
    np.testing.assert_allclose(increments, np.diff(strain, axis=1, prepend=0.0), atol=1e-12)
    j2 = J2Plasticity(**{k: v for k, v in MATERIAL.items() if k != "type"}, stress_state=stress_state)
    np.testing.assert_allclose(drive(j2, strain).stress, stress, atol=1e-7)  # J2 is isotropic
    np.testing.assert_allclose(np.linalg.norm(stress, axis=-1), np.linalg.norm(data.targets, axis=-1), rtol=1e-12)


def test_data_without_other_frames_or_strain_inputs_is_refused(tiny_data):
    norm = Normalisation.fit(tiny_data.inputs, tiny_data.targets)
    with pytest.raises(ValueError, match="uniaxial-stress data has no other frames"):
        PathRotations(norm, tiny_data.meta)
    data = walks()
    with pytest.raises(ValueError, match="turns strain inputs"):
        PathRotations(Normalisation.fit(data.inputs, data.targets), {**data.meta, "input_features": ["temperature"]})


def test_training_with_rotations_is_reproducible_and_differs_from_plain_training():
    data = walks()
    torch.manual_seed(0)
    net = SpikingRegressor(8, 4, "slstm", [8], population=4)
    settings = TrainingSettings(epochs=2, batch_size=8, progress=False, threads=1)
    runs = [train(copy.deepcopy(net), data, settings.model_copy(update={"augment": a})) for a in ("rotations", "rotations", "none")]
    weights = [torch.cat([p.flatten() for p in r.net.state_dict().values()]) for r in runs]
    assert torch.equal(weights[0], weights[1])
    assert not torch.allclose(weights[0], weights[2])
