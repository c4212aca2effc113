"""Small random spiking regressors for the Loihi tests, and the Lava worker environment check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from femsnn.loihi.env import LavaEnvironmentError, lava_python
from femsnn.snn.networks import SpikingRegressor
from femsnn.train.normalisation import Normalisation


def random_regressor(neuron: str, reset: str = "subtract", seed: int = 0, skip: bool = False) -> SpikingRegressor:
    """A float64 regressor 2 -> 3 (hidden 8, 6; population 4) with varied β and thresholds, some negative.

    Negative thresholds make neurons fire from rest, which exercises the rest-state feedback at
    sequence boundaries; varied β make the leak matter. skip: with a random skip connection.
    """
    torch.manual_seed(seed)
    net = SpikingRegressor(2, 3, neuron=neuron, hidden=(8, 6), population=4, reset=reset, skip=skip).double()
    with torch.no_grad():
        if skip:
            net.skip.weight.normal_()
            net.skip.bias.normal_()
        for layer in net.spiking_layers:
            layer.threshold.uniform_(-0.2, 0.6)
            if neuron != "slstm":
                layer.beta.uniform_(0.2, 1.0)
        net.decoder.beta1.uniform_(0.5, 1.0)
        net.decoder.beta2.uniform_(0.5, 1.0)
    return net.eval()


def normalisation() -> Normalisation:
    """A non-trivial normalisation for 2 inputs and 3 outputs."""
    return Normalisation(np.array([0.5, -1.0]), np.array([2.0, 0.25]), np.array([10.0, -5.0, 0.0]), np.array([100.0, 3.0, 1.0]))


def torch_run(net: SpikingRegressor, norm: Normalisation, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The torch network on physical inputs (B, T, n_in): physical outputs and spike counts (B, T, n_layers)."""
    inputs = torch.as_tensor(norm.encode_inputs(x), dtype=torch.float64)
    state = net.init_state(x.shape[0])
    outputs, counts = [], []
    with torch.no_grad():
        for t in range(x.shape[1]):
            y, state = net.step(inputs[:, t], state)
            outputs.append(y)
            counts.append(torch.stack([s.sum(dim=1) for s in net.spikes(state).values()], dim=-1))
    y_std = torch.stack(outputs, dim=1).numpy()
    return norm.decode_targets(y_std), torch.stack(counts, dim=1).numpy().astype(np.int64)


@pytest.fixture(scope="session")
def lava_env() -> None:
    """Skip (saying how to fix it) when the Lava worker interpreter is not installed."""
    try:
        lava_python()
    except LavaEnvironmentError as exc:
        pytest.skip(str(exc))
