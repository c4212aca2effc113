"""Standardisation: per-component and the authors' scalar fit, guards, round trips."""

import numpy as np
import pytest
import torch

from femsnn.train.normalisation import Normalisation


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    inputs = rng.normal([1.0, -2.0, 0.0], [0.5, 3.0, 1e-3], size=(20, 7, 3))
    targets = rng.normal(100.0, 50.0, size=(20, 7, 2))
    return inputs, targets


def test_component_fit_is_mean_and_unbiased_std_per_component(arrays):
    inputs, targets = arrays
    norm = Normalisation.fit(inputs, targets)
    np.testing.assert_allclose(norm.input_mean, inputs.reshape(-1, 3).mean(0))
    np.testing.assert_allclose(norm.input_std, inputs.reshape(-1, 3).std(0, ddof=1))
    np.testing.assert_allclose(norm.target_std, targets.reshape(-1, 2).std(0, ddof=1))


def test_scalar_fit_matches_torch_std_mean_of_everything_as_the_authors(arrays):
    inputs, targets = arrays
    norm = Normalisation.fit(inputs, targets, mode="scalar")
    std, mean = torch.std_mean(torch.as_tensor(inputs))
    np.testing.assert_allclose(norm.input_mean, [mean.item()] * 3, rtol=1e-12)
    np.testing.assert_allclose(norm.input_std, [std.item()] * 3, rtol=1e-12)


def test_round_trip_numpy_and_torch(arrays):
    inputs, targets = arrays
    norm = Normalisation.fit(inputs, targets)
    std_targets = norm.encode_targets(targets)
    np.testing.assert_allclose(std_targets.reshape(-1, 2).mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(norm.decode_targets(std_targets), targets, rtol=1e-13)
    t = torch.as_tensor(targets, dtype=torch.float32)
    back = norm.decode_targets(norm.encode_targets(t))
    assert back.dtype == torch.float32
    np.testing.assert_allclose(back.numpy(), targets, rtol=1e-5)


def test_constant_component_gets_unit_std_not_nan(arrays):
    inputs, targets = arrays
    inputs = inputs.copy()
    inputs[..., 2] = 0.0
    norm = Normalisation.fit(inputs, targets)
    assert norm.input_std[2] == 1.0
    assert np.all(np.isfinite(norm.encode_inputs(inputs)))


def test_from_arrays_checks_its_input(arrays):
    norm = Normalisation.fit(*arrays)
    back = Normalisation.from_arrays({k: torch.as_tensor(v) for k, v in norm.to_arrays().items()}, "component")
    np.testing.assert_array_equal(back.target_mean, norm.target_mean)
    bad = {**norm.to_arrays(), "target_std": np.array([1.0, 0.0])}
    with pytest.raises(ValueError, match="positive"):
        Normalisation.from_arrays(bad, "component")
    with pytest.raises(ValueError, match="mode"):
        Normalisation.fit(*arrays, mode="minmax")
