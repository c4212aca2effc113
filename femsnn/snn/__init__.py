"""Spiking regressors (Henkes, Eshraghian & Wessels 2022) in pure torch, with explicit state.

Public API (stable; science notes, section 3):

Surrogate (:mod:`femsnn.snn.surrogate`)
    ``spike(x, slope=2.0) -> Tensor``: H(x > 0) forward, arctan derivative (α/2)/(1 + (π α x/2)²) backward.
    ``surrogate_derivative(x, slope=2.0)``; ``ArcTanSpike`` (the autograd.Function).

Layers (:mod:`femsnn.snn.neurons`), each a :class:`~femsnn.snn.base.StatefulModule`
    ``LIF(n_in, n_out, reset="subtract", surrogate_slope=2.0)``: params ``linear`` (W, b), ``beta``,
    ``threshold`` (per neuron, both 0.1 initially); state ``membrane``.
    ``RLIF(n_in, n_out, reset="subtract", surrogate_slope=2.0)``: LIF + ``recurrent`` (V, no bias) on the
    layer's previous spikes; state ``membrane`` (previous spikes = H(membrane - threshold)).
    ``SLSTM(n_in, n_out, reset="subtract", surrogate_slope=2.0)``: params ``lstm_cell`` (torch LSTMCell),
    ``threshold`` (uniform [0, 1] initially); state ``membrane`` (h), ``cell`` (c).
    ``layer.step(x (B, n_in), state) -> (spikes (B, n_out), new_state)``; ``layer.spikes(state)``;
    reset modes ``RESETS = ("subtract", "zero", "none")``.

Decoder (:mod:`femsnn.snn.decoder`)
    ``MembraneDecoder(n_hidden, n_outputs, population, beta_init=None)``: ``linear1``, ``beta1``,
    ``linear2``, ``beta2``; state ``membrane1``, ``membrane2``; output k = mean of population neurons
    [k·population, (k+1)·population).

Regressors (:mod:`femsnn.snn.networks`), subclasses of :class:`~femsnn.snn.base.Regressor`
    ``SpikingRegressor(n_inputs, n_outputs, neuron="slstm", hidden=(64, 64, 64), population=32,
    reset="subtract", surrogate_slope=2.0)``: modules ``layer0``, ``layer1``, ..., ``decoder``; state
    ``layer{i}.membrane`` (+ ``layer{i}.cell`` for SLSTM), ``decoder.membrane1``, ``decoder.membrane2``.
    ``net.spikes(state) -> {"layer{i}": (B, n_i)}``: the spikes of the step that produced state (spike-rate
    monitoring; differentiable through the surrogate).
    ``LSTMRegressor(n_inputs, n_outputs, hidden=64, layers=3, population=32)``: ``lstm`` (torch LSTM,
    batch_first), ``linear1``, LeakyReLU, ``linear2``; state ``layer{i}.hidden``, ``layer{i}.cell``.
    Both: ``state_spec``, ``init_state(batch, device=None, dtype=None)``, ``step(x, state) -> (y, new_state)``
    (pure; ValueError on a mismatched input or state), ``forward(x (B, T, n_inputs), state=None)``.
    ``regressor_spec(net) -> dict`` (JSON-able architecture) and ``build_regressor(spec) -> Regressor``
    (``ConfigError`` naming the bad key); ``SpikingRegressorSpec``, ``LSTMRegressorSpec``, ``RegressorSpec``
    (pydantic schemas, usable in config files).
    ``EnsembleRegressor([SpikingRegressor, ...])``: modules ``member0``, ``member1``, ...; output = mean of the
    members' outputs; state ``member{i}.<member state name>``; spec ``{"kind": "ensemble", "members": [...]}``
    (``EnsembleRegressorSpec``). Model files of seeds trained on the same data combine with
    :func:`femsnn.train.artifact.combine_models` (``femsnn ensemble``).
"""

from femsnn.snn.base import Regressor, State, StatefulModule
from femsnn.snn.decoder import MembraneDecoder
from femsnn.snn.networks import (
    NEURONS,
    EnsembleRegressor,
    EnsembleRegressorSpec,
    LSTMRegressor,
    LSTMRegressorSpec,
    RegressorSpec,
    SpikingRegressor,
    SpikingRegressorSpec,
    build_regressor,
    regressor_spec,
)
from femsnn.snn.neurons import LIF, RESETS, RLIF, SLSTM
from femsnn.snn.surrogate import spike

__all__ = [
    "LIF",
    "NEURONS",
    "EnsembleRegressor",
    "EnsembleRegressorSpec",
    "RESETS",
    "RLIF",
    "SLSTM",
    "LSTMRegressor",
    "LSTMRegressorSpec",
    "MembraneDecoder",
    "Regressor",
    "RegressorSpec",
    "SpikingRegressor",
    "SpikingRegressorSpec",
    "State",
    "StatefulModule",
    "build_regressor",
    "regressor_spec",
    "spike",
]
