"""One time step of each neuron kind, in float64 and in Loihi 2 fixed point (numpy only).

The single home of the neuron equations on the Lava side: the Lava ProcessModels and the numpy
reference network both call these functions. Arrays may carry leading batch axes. ``current`` is
the total synaptic input of the step *including the bias*.

Float equations (science notes, section 3; same operation order as :mod:`femsnn.snn.neurons`):

* leaky membrane, R_t = H(U_{t-1} - U_thr): ``subtract`` U_t = β U_{t-1} + I_t - R_t U_thr,
  ``zero`` U_t = β (1 - R_t) U_{t-1} + I_t, ``none`` U_t = β U_{t-1} + I_t; S_t = H(U_t - U_thr);
* slstm: gates (i, f, g, o) = I_t; c_t = σ(f) c_{t-1} + σ(i) tanh(g); h̃_t = σ(o) tanh(c_t);
  h_t = h̃_t reset by R_t = H(h_{t-1} - U_thr) (``subtract`` h̃ - R U_thr, ``zero`` h̃ (1 - R));
* integrator (decoder): m_t = β m_{t-1} + I_t.

Fixed point: every state, current, bias and threshold is a signed integer in units of
2^-FRACTION_BITS saturated to STATE_BITS; β is an unsigned DECAY_BITS fraction (β_q = round(β 4096));
σ and tanh are tables at the edges of 2^-6 bins over [-8, 8] with GATE_BITS-fraction outputs, interpolated
linearly between edges with one integer multiply and shift (a piecewise-linear gate, as Loihi 2 neuron microcode
can compute; plain lookup without interpolation cost ~2x the output error of a trained SLSTM), constant beyond
(GATE_BITS = FRACTION_BITS, so the product of two gate values shifted by GATE_BITS is in state units).
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray
STATE_BITS = 24
FRACTION_BITS = 12
DECAY_BITS = 12
GATE_BITS = 12
STATE_MIN, STATE_MAX = -(1 << (STATE_BITS - 1)), (1 << (STATE_BITS - 1)) - 1
_HALF_DECAY = 1 << (DECAY_BITS - 1)
_HALF_GATE = 1 << (GATE_BITS - 1)

#: gate tables: TABLE_SIZE bins of 2^-6 over [-8, 8] (inputs in units of 2^-FRACTION_BITS), values at the bin edges
TABLE_SHIFT = FRACTION_BITS - 6
TABLE_SIZE = 1024
TABLE_OFFSET = (TABLE_SIZE // 2) << TABLE_SHIFT  # input of the first edge, negated
_HALF_BIN = 1 << (TABLE_SHIFT - 1)


def _gate_table(fn) -> np.ndarray:
    """fn at the TABLE_SIZE + 1 bin edges, in units of 2^-GATE_BITS."""
    edges = (np.arange(TABLE_SIZE + 1) - TABLE_SIZE // 2) * 2.0 ** (TABLE_SHIFT - FRACTION_BITS)
    return np.rint(fn(edges) * (1 << GATE_BITS)).astype(np.int64)


SIGMOID_TABLE = _gate_table(lambda z: 1.0 / (1.0 + np.exp(-z)))
TANH_TABLE = _gate_table(np.tanh)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, float64."""
    return 1.0 / (1.0 + np.exp(-z))


def leaky_membrane(beta: Array, membrane: Array, current: Array, reset: Array, threshold: Array, mode: str) -> Array:
    """New float membrane of leaky neurons from the previous one, the current and the reset signal R."""
    if mode == "subtract":
        return beta * membrane + current - reset * threshold
    if mode == "zero":
        return beta * ((1 - reset) * membrane) + current
    return beta * membrane + current


def lif_step(membrane: Array, current: Array, beta: Array, threshold: Array, mode: str) -> tuple[Array, Array]:
    """(R)LIF float step: previous membrane, current -> new membrane, spikes (0./1.)."""
    reset = (membrane > threshold).astype(np.float64)
    new = leaky_membrane(beta, membrane, current, reset, threshold, mode)
    return new, (new > threshold).astype(np.float64)


def slstm_step(membrane: Array, cell: Array, gates: Array, threshold: Array, mode: str) -> tuple[Array, Array, Array]:
    """SLSTM float step: previous h, c and gate currents (..., 4n) -> new h, new c, spikes."""
    i, f, g, o = np.split(gates, 4, axis=-1)
    new_cell = sigmoid(f) * cell + sigmoid(i) * np.tanh(g)
    candidate = sigmoid(o) * np.tanh(new_cell)
    reset = (membrane > threshold).astype(np.float64)
    if mode == "subtract":
        new = candidate - reset * threshold
    elif mode == "zero":
        new = candidate * (1 - reset)
    else:
        new = candidate
    return new, new_cell, (new > threshold).astype(np.float64)


def integrator_step(membrane: np.ndarray, current: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Non-resetting leaky integrator float step."""
    return beta * membrane + current


def saturate(values: np.ndarray) -> np.ndarray:
    """Clip integers to the signed STATE_BITS range (as Loihi's state registers), int64."""
    return np.clip(values, STATE_MIN, STATE_MAX).astype(np.int64)


def decay(values: np.ndarray, beta_q: np.ndarray) -> np.ndarray:
    """β_q · v / 2^DECAY_BITS rounded half up, in integers."""
    return (values * beta_q + _HALF_DECAY) >> DECAY_BITS


def lif_step_fixed(membrane: Array, current: Array, beta_q: Array, threshold_q: Array, mode: str) -> tuple[Array, Array]:
    """(R)LIF fixed-point step: integer membrane, current -> new membrane, spikes (0/1 int64)."""
    reset = membrane > threshold_q
    if mode == "subtract":
        new = decay(membrane, beta_q) + current - reset * threshold_q
    elif mode == "zero":
        new = decay(np.where(reset, 0, membrane), beta_q) + current
    else:
        new = decay(membrane, beta_q) + current
    new = saturate(new)
    return new, (new > threshold_q).astype(np.int64)


def gate_lookup(table: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Gate of integer inputs z (units 2^-FRACTION_BITS): the table interpolated linearly, rounded half up;
    constant beyond [-8, 8]."""
    offset = np.clip(z, -TABLE_OFFSET, TABLE_OFFSET) + TABLE_OFFSET
    index = np.minimum(offset >> TABLE_SHIFT, TABLE_SIZE - 1)
    fraction = offset - (index << TABLE_SHIFT)
    return table[index] + (((table[index + 1] - table[index]) * fraction + _HALF_BIN) >> TABLE_SHIFT)


def slstm_step_fixed(membrane: Array, cell: Array, gates: Array, threshold_q: Array, mode: str) -> tuple[Array, Array, Array]:
    """SLSTM fixed-point step: integer h, c, gate currents -> new h, new c, spikes (0/1 int64)."""
    i, f, g, o = np.split(gates, 4, axis=-1)
    si, sf, so = gate_lookup(SIGMOID_TABLE, i), gate_lookup(SIGMOID_TABLE, f), gate_lookup(SIGMOID_TABLE, o)
    new_cell = saturate((sf * cell + si * gate_lookup(TANH_TABLE, g) + _HALF_GATE) >> GATE_BITS)
    candidate = (so * gate_lookup(TANH_TABLE, new_cell) + _HALF_GATE) >> GATE_BITS
    reset = membrane > threshold_q
    if mode == "subtract":
        new = candidate - reset * threshold_q
    elif mode == "zero":
        new = np.where(reset, 0, candidate)
    else:
        new = candidate
    new = saturate(new)
    return new, new_cell, (new > threshold_q).astype(np.int64)


def integrator_step_fixed(membrane: np.ndarray, current: np.ndarray, beta_q: np.ndarray) -> np.ndarray:
    """Non-resetting leaky integrator fixed-point step."""
    return saturate(decay(membrane, beta_q) + current)
