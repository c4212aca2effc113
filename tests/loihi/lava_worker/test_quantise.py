"""Loihi 2 fixed point: 8-bit mantissas with a shared exponent, 12-bit decays, lookup gates."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.loihi.export import network_from_regressor
from femsnn.loihi.lava_worker import dynamics
from femsnn.loihi.lava_worker.quantise import from_state_units, quantise_decay, quantise_dense, to_state_units
from femsnn.loihi.lava_worker.reference import simulate_fixed, simulate_float

from ..conftest import random_regressor


@pytest.mark.parametrize("graded", [False, True])
@pytest.mark.parametrize("scale", [1e-3, 0.3, 40.0])
def test_weights_get_8_bit_mantissas_and_one_exponent(graded, scale):
    weight = np.random.default_rng(0).standard_normal((5, 7)) * scale
    fixed = quantise_dense(weight, graded)
    mantissa = fixed.weights // 2
    assert np.all(fixed.weights % 2 == 0) and mantissa.min() >= -128 and mantissa.max() <= 127
    assert np.abs(mantissa).max() >= 64  # the exponent makes the largest weight use the 8 bits
    unit = 2.0 ** (fixed.exponent + 1 - (0 if graded else dynamics.FRACTION_BITS))
    np.testing.assert_allclose(mantissa * unit, weight, rtol=0, atol=unit / 2)


def test_dense_currents_match_float_within_the_rounding_bounds():
    rng = np.random.default_rng(1)
    weight, values = rng.standard_normal((6, 9)) * 0.2, rng.standard_normal((4, 9))
    lsb = 2.0**-dynamics.FRACTION_BITS
    graded = quantise_dense(weight, graded=True)
    mantissa_unit = 2.0 ** (graded.exponent + 1)
    bound = mantissa_unit / 2 * np.abs(values).sum(axis=1, keepdims=True) + np.abs(weight).sum(axis=1) * lsb / 2 + lsb
    current = from_state_units(graded.current(to_state_units(values)))
    assert np.all(np.abs(current - values @ weight.T) <= bound)

    binary = quantise_dense(weight, graded=False)
    spikes = (values > 0).astype(np.int64)
    mantissa_unit = 2.0 ** (binary.exponent + 1) * lsb
    current = from_state_units(binary.current(spikes))
    assert np.all(np.abs(current - spikes @ weight.T) <= mantissa_unit / 2 * spikes.sum(axis=1, keepdims=True))


def test_state_units_saturate_at_24_bits():
    assert to_state_units(np.array([1e9, -1e9])).tolist() == [dynamics.STATE_MAX, dynamics.STATE_MIN]
    assert dynamics.STATE_MAX == 2**23 - 1


def test_decay_is_a_12_bit_fraction():
    assert quantise_decay(np.array([0.0, 0.5, 1.0])).tolist() == [0, 2048, 4096]
    assert dynamics.decay(np.array([4096, -4096, 3]), np.array([2048])).tolist() == [2048, -2048, 2]


def test_gate_tables_follow_sigmoid_and_tanh():
    z = np.linspace(-10, 10, 2001)
    sig = dynamics.gate_lookup(dynamics.SIGMOID_TABLE, to_state_units(z)) / 2.0**dynamics.GATE_BITS
    tanh = dynamics.gate_lookup(dynamics.TANH_TABLE, to_state_units(z)) / 2.0**dynamics.GATE_BITS
    assert np.abs(sig - 1 / (1 + np.exp(-z))).max() < 3e-4  # interpolated: ~40x better than the bare table
    assert np.abs(tanh - np.tanh(z)).max() < 3e-4
    assert np.all(np.diff(sig) >= 0) and np.all(np.diff(tanh) >= 0)


@pytest.mark.parametrize(("neuron", "skip"), [("lif", False), ("rlif", False), ("slstm", False), ("slstm", True)])
def test_fixed_point_network_stays_close_to_float(neuron, skip):
    net = network_from_regressor(random_regressor(neuron, skip=skip))
    x = np.random.default_rng(2).standard_normal((2, 10, 2))
    exact, fixed = simulate_float(net, x), simulate_fixed(net, x)
    scale = np.abs(exact.outputs).max()
    assert np.abs(fixed.outputs - exact.outputs).max() < 0.1 * scale
    assert abs(int(fixed.spike_counts.sum()) - int(exact.spike_counts.sum())) <= 0.1 * exact.spike_counts.sum()
