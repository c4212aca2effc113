"""Fixtures of the material tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _floating_point_errors_raise():
    """Overflow, division by zero or an invalid operation inside a material fails the test."""
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        yield
