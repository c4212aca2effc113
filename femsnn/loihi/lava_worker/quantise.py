"""Loihi 2 fixed-point parameters of an exported network (post-training quantisation, numpy only).

Weights: each matrix gets an 8-bit signed mantissa m and one shared exponent e, chosen so that the
largest |weight| uses the full mantissa range. They are stored in the form Lava's bit-accurate
``Dense`` model consumes (``weights = 2 m``, even values in [-256, 254] in its MIXED sign mode;
``weight_exp = e``): the synaptic current is ``(weights @ payload) << e`` (``>> -e`` when e < 0,
rounding down as the hardware does), in state units of 2^-FRACTION_BITS. Payloads are spikes
(0/1) or graded values (inputs, membranes) in state units. Biases and thresholds become state
units, β a DECAY_BITS fraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dynamics import DECAY_BITS, FRACTION_BITS, saturate
from .network import Network

WEIGHT_BITS = 8
MANTISSA_MIN, MANTISSA_MAX = -(1 << (WEIGHT_BITS - 1)), (1 << (WEIGHT_BITS - 1)) - 1


@dataclass(frozen=True)
class FixedDense:
    """A weight matrix in Lava Dense fixed-point form: weights = 2 m (int64) and the shared exponent."""

    weights: np.ndarray
    exponent: int

    def current(self, payload: np.ndarray) -> np.ndarray:
        """Synaptic current of integer payloads (..., n_in) -> (..., n_out), as Lava's bit-accurate Dense."""
        accumulated = payload.astype(np.int64) @ self.weights.T
        return accumulated << self.exponent if self.exponent > 0 else accumulated >> -self.exponent


@dataclass(frozen=True)
class FixedLayer:
    """A spiking layer's integer parameters, named as in :class:`~.network.SpikingLayer`."""

    kind: str
    reset: str
    input_weight: FixedDense
    bias: np.ndarray
    threshold: np.ndarray
    beta: np.ndarray | None
    recurrent_weight: FixedDense | None


@dataclass(frozen=True)
class FixedStage:
    """A decoder integrator stage's integer parameters, named as in :class:`~.network.IntegratorStage`."""

    weight: FixedDense
    bias: np.ndarray
    beta: np.ndarray


@dataclass(frozen=True)
class FixedSkip:
    """The skip connection's integer parameters: a graded-input Dense and the bias in state units."""

    weight: FixedDense
    bias: np.ndarray

    def apply(self, payload: np.ndarray) -> np.ndarray:
        """Skip output in state units for integer input payloads (..., n_inputs)."""
        return saturate(self.weight.current(payload) + self.bias)


@dataclass(frozen=True)
class FixedNetwork:
    """All integer parameters of a network for the fixed-point models."""

    layers: tuple[FixedLayer, ...]
    decoder: tuple[FixedStage, ...]
    skip: FixedSkip | None = None


def weight_exponent(largest: float, graded: bool) -> int:
    """Shared exponent of a matrix whose largest |weight| is largest: that weight gets the full 8-bit mantissa."""
    if largest == 0.0:
        return 0
    return _scale_bits(graded) - int(np.floor(np.log2(MANTISSA_MAX / largest)))


def mantissa_scale(exponent: int, graded: bool) -> float:
    """Factor taking a float weight to its mantissa before rounding: m = clip(rint(weight · factor))."""
    return 2.0 ** (_scale_bits(graded) - exponent)


def quantise_dense(weight: np.ndarray, graded: bool) -> FixedDense:
    """8-bit mantissa and shared exponent for a float matrix driven by spikes or graded state-unit payloads."""
    exponent = weight_exponent(float(np.max(np.abs(weight))) if weight.size else 0.0, graded)
    mantissa = np.clip(np.rint(weight * mantissa_scale(exponent, graded)), MANTISSA_MIN, MANTISSA_MAX)
    return FixedDense(weights=2 * mantissa.astype(np.int64), exponent=exponent)


def _scale_bits(graded: bool) -> int:
    """log2 of (current in state units) / (2 · weight · payload): payloads are spikes (0/1) or graded state units."""
    # current (state units) = weight · value · 2^F; payload = value (spikes) or value · 2^F (graded); weights = 2 m
    return (0 if graded else FRACTION_BITS) - 1


def to_state_units(values: np.ndarray) -> np.ndarray:
    """Real values -> saturated integers in units of 2^-FRACTION_BITS."""
    return saturate(np.rint(np.asarray(values, dtype=np.float64) * (1 << FRACTION_BITS)))


def from_state_units(values: np.ndarray) -> np.ndarray:
    """Integers in units of 2^-FRACTION_BITS -> float64."""
    return np.asarray(values, dtype=np.float64) / (1 << FRACTION_BITS)


def quantise_decay(beta: np.ndarray) -> np.ndarray:
    """β in [0, 1] -> unsigned DECAY_BITS fraction."""
    return np.rint(beta * (1 << DECAY_BITS)).astype(np.int64)


def quantise_network(net: Network) -> FixedNetwork:
    """Integer parameters of every layer and decoder stage of net."""
    layers = []
    for i, layer in enumerate(net.layers):
        layers.append(
            FixedLayer(
                kind=layer.kind,
                reset=layer.reset,
                input_weight=quantise_dense(layer.input_weight, graded=i == 0),
                bias=to_state_units(layer.bias),
                threshold=to_state_units(layer.threshold),
                beta=None if layer.beta is None else quantise_decay(layer.beta),
                recurrent_weight=None
                if layer.recurrent_weight is None
                else quantise_dense(layer.recurrent_weight, graded=layer.kind == "slstm"),
            )
        )
    decoder = tuple(
        FixedStage(quantise_dense(s.weight, graded=True), to_state_units(s.bias), quantise_decay(s.beta)) for s in net.decoder
    )
    skip = None if net.skip is None else FixedSkip(quantise_dense(net.skip.weight, graded=True), to_state_units(net.skip.bias))
    return FixedNetwork(tuple(layers), decoder, skip)
