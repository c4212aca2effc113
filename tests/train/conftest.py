"""Tiny data and networks shared by the training tests (seconds, not minutes)."""

import pytest
import torch
from pydantic import TypeAdapter

from femsnn.snn.networks import SpikingRegressor
from femsnn.train.data import GeneratorSettings, generate


@pytest.fixture(scope="session")
def tiny_data():
    """Isotropic-hardening triangles of 12 steps with strain increments: 24 / 8 / 8 paths."""
    settings = TypeAdapter(GeneratorSettings).validate_python(
        {"generator": "isotropic_hardening", "steps": 12, "n_train": 24, "n_val": 8, "n_test": 8, "increments": True}
    )
    return generate(settings)


@pytest.fixture
def tiny_net():
    """A 2-layer SLSTM regressor of 8 neurons per layer for 2 inputs, 1 output."""
    torch.manual_seed(0)
    return SpikingRegressor(2, 1, "slstm", [8, 8], population=4)
