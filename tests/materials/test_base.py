"""The material hook's history helpers: packing round trips and history validation."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.materials import J2Plasticity, MaterialInputError
from femsnn.materials.base import check_history, history_width, pack_history, unpack_history


def test_pack_and_unpack_round_trip_without_copies():
    spec = J2Plasticity(2e5, 0.3, 300.0).history_spec
    assert history_width(spec) == 13
    rng = np.random.default_rng(0)
    history = {name: rng.normal(size=(4, *shape)) for name, shape in spec.items()}
    packed = np.empty((4, history_width(spec)))
    pack_history(history, spec, packed)
    views = unpack_history(packed, spec)
    for name in spec:
        np.testing.assert_array_equal(views[name], history[name])
        assert np.shares_memory(views[name], packed)


def test_check_history_names_missing_and_misshapen_variables():
    spec = {"plastic_strain": (6,), "equivalent_plastic_strain": ()}
    with pytest.raises(MaterialInputError, match="material expects"):
        check_history({"plastic_strain": np.zeros((2, 6))}, spec, 2)
    with pytest.raises(MaterialInputError, match="equivalent_plastic_strain"):
        check_history({"plastic_strain": np.zeros((2, 6)), "equivalent_plastic_strain": np.zeros((3,))}, spec, 2)
