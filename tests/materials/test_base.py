"""The material hook's history helpers: packing round trips and history validation."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.materials import J2Plasticity, MaterialInputError, MaterialResponse, UniaxialPlasticity
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


def test_update_into_caller_arrays_copies_for_materials_without_their_own():
    """The base class's out= fallback (computed as usual, then copied) on a material that does not override it."""
    material = UniaxialPlasticity(2.1e5, 300.0, 2.1e3)
    strain, history = np.array([[2e-3], [1e-3]]), material.initial_history(2)
    expected = material.update(strain, history)
    out = MaterialResponse(
        stress=np.empty((2, 1)), tangent=np.empty((2, 1, 1)), history={k: np.empty_like(v) for k, v in expected.history.items()}
    )
    response = material.update(strain, history, out=out)
    assert response.stress is out.stress and response.tangent is out.tangent
    np.testing.assert_array_equal(out.stress, expected.stress)
    np.testing.assert_array_equal(out.tangent, expected.tangent)
    for name, values in expected.history.items():
        assert response.history[name] is out.history[name]
        np.testing.assert_array_equal(out.history[name], values)
    assert material.update(strain, history, tangent=False, out=out).tangent is None


def test_update_into_caller_arrays_refuses_bad_outputs():
    material = J2Plasticity(2e5, 0.3, 300.0)
    strain, history = np.zeros((3, 6)), material.initial_history(3)

    def out(**change):
        arrays = {"stress": np.empty((3, 6)), "tangent": np.empty((3, 6, 6)), "history": material.initial_history(3)} | change
        return MaterialResponse(**arrays)

    read_only = np.empty((3, 6))
    read_only.flags.writeable = False
    cases = [
        (out(stress=np.empty((3, 4))), "out stress must be a float64 array of shape \\(3, 6\\)"),
        (out(stress=np.empty((3, 6), dtype=np.float32)), "float32"),
        (out(tangent=None), "out tangent must be"),
        (out(history={"plastic_strain": np.empty((3, 6))}), "out.history has variables"),
        (out(stress=read_only), "read-only"),
        (out(history=history), "overlaps the strain or the committed history"),
    ]
    for bad, match in cases:
        with pytest.raises(MaterialInputError, match=match):
            material.update(strain, history, out=bad)
    material.update(strain, history, tangent=False, out=out(tangent=None))  # no tangent asked: none needed
