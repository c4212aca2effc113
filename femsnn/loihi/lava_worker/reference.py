"""Pure-numpy simulation of an exported network, float64 or fixed point: the Lava graph's yardstick.

Runs the same step functions (:mod:`.dynamics`) and, in fixed point, the same integer synapses
(:mod:`.quantise`) as the Lava ProcessModels, batched over sequences, without any pipeline delay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dynamics
from .network import Network
from .quantise import FixedNetwork, from_state_units, quantise_network, to_state_units


@dataclass(frozen=True)
class Simulation:
    """Standardised outputs (B, T, n_outputs) and spike counts per step and layer (B, T, n_layers)."""

    outputs: np.ndarray
    spike_counts: np.ndarray


def _check_inputs(net: Network, x_std: np.ndarray) -> np.ndarray:
    x = np.asarray(x_std, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != net.n_inputs:
        raise ValueError(f"inputs must have shape (B, T, {net.n_inputs}), got {x.shape}")
    return x


def simulate_float(net: Network, x_std: np.ndarray) -> Simulation:
    """Float64 run of standardised input sequences (B, T, n_inputs) from rest."""
    x = _check_inputs(net, x_std)
    batch, steps, _ = x.shape
    membranes = [np.zeros((batch, layer.n_neurons)) for layer in net.layers]
    cells = [np.zeros((batch, layer.n_neurons)) for layer in net.layers]
    stages = [np.zeros((batch, s.n_neurons)) for s in net.decoder]
    outputs = np.empty((batch, steps, net.n_outputs))
    counts = np.empty((batch, steps, len(net.layers)), dtype=np.int64)
    for t in range(steps):
        signal = x[:, t]
        for i, layer in enumerate(net.layers):
            current = signal @ layer.input_weight.T + layer.bias
            if layer.kind == "slstm":
                current = current + membranes[i] @ layer.recurrent_weight.T
                membranes[i], cells[i], spikes = dynamics.slstm_step(membranes[i], cells[i], current, layer.threshold, layer.reset)
            else:
                if layer.kind == "rlif":
                    current = current + (membranes[i] > layer.threshold) @ layer.recurrent_weight.T
                membranes[i], spikes = dynamics.lif_step(membranes[i], current, layer.beta, layer.threshold, layer.reset)
            counts[:, t, i] = spikes.sum(axis=1)
            signal = spikes
        signal = membranes[-1]
        for j, stage in enumerate(net.decoder):
            stages[j] = dynamics.integrator_step(stages[j], signal @ stage.weight.T + stage.bias, stage.beta)
            signal = stages[j]
        outputs[:, t] = net.vote(signal) if net.skip is None else net.vote(signal) + net.skip.apply(x[:, t])
    return Simulation(outputs, counts)


def simulate_fixed(net: Network, x_std: np.ndarray, fixed: FixedNetwork | None = None) -> Simulation:
    """Loihi 2 fixed-point run of standardised input sequences (B, T, n_inputs) from rest."""
    x = _check_inputs(net, x_std)
    fixed = fixed or quantise_network(net)
    batch, steps, _ = x.shape
    payload = to_state_units(x)
    membranes = [np.zeros((batch, layer.n_neurons), dtype=np.int64) for layer in net.layers]
    cells = [np.zeros((batch, layer.n_neurons), dtype=np.int64) for layer in net.layers]
    stages = [np.zeros((batch, s.n_neurons), dtype=np.int64) for s in net.decoder]
    outputs = np.empty((batch, steps, net.n_outputs))
    counts = np.empty((batch, steps, len(net.layers)), dtype=np.int64)
    for t in range(steps):
        signal = payload[:, t]
        for i, layer in enumerate(fixed.layers):
            current = layer.input_weight.current(signal) + layer.bias
            if layer.kind == "slstm":
                current = current + layer.recurrent_weight.current(membranes[i])
                membranes[i], cells[i], spikes = dynamics.slstm_step_fixed(membranes[i], cells[i], current, layer.threshold, layer.reset)
            else:
                if layer.kind == "rlif":
                    current = current + layer.recurrent_weight.current(membranes[i] > layer.threshold)
                membranes[i], spikes = dynamics.lif_step_fixed(membranes[i], current, layer.beta, layer.threshold, layer.reset)
            counts[:, t, i] = spikes.sum(axis=1)
            signal = spikes
        signal = membranes[-1]
        for j, stage in enumerate(fixed.decoder):
            stages[j] = dynamics.integrator_step_fixed(stages[j], stage.weight.current(signal) + stage.bias, stage.beta)
            signal = stages[j]
        outputs[:, t] = net.vote(from_state_units(signal))
        if fixed.skip is not None:
            outputs[:, t] += from_state_units(fixed.skip.apply(payload[:, t]))
    return Simulation(outputs, counts)
