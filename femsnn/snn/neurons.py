"""Spiking neuron layers with explicit state: LIF (eq. 7), recurrent LIF (eq. 19), spiking LSTM (eqs. 23-27).

Every layer is a :class:`~femsnn.snn.base.StatefulModule`: ``step(x, state) -> (spikes, new_state)``
maps a (B, n_in) input to (B, n_out) spikes S_t = H(U_t - U_thr) (strictly greater) and never
touches the state it is given. State (per sample): ``membrane`` U (B, n_out), plus ``cell`` c for
SLSTM. The previous spikes are not stored: S_{t-1} = H(U_{t-1} - U_thr) is recomputed from the
membrane, which gives the same values and the same surrogate gradient as carrying it.

The reset signal R_t = H(U_{t-1} - U_thr) comes from the *previous* membrane and is detached from the
graph (snnTorch >= 0.8 semantics). Reset modes:

- ``subtract``: U_t = β U_{t-1} + I_t - R_t U_thr (eq. 7), the authors' choice;
- ``zero``: U_t = β (1 - R_t) U_{t-1} + I_t (the previous membrane is zeroed before it decays,
  as snnTorch ``Leaky``; snnTorch ``RLeaky`` instead zeroes the new membrane, input included);
- ``none``: U_t = β U_{t-1} + I_t.

β is clamped to [0, 1] in the forward pass, as in snnTorch; U_thr is not constrained.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor, nn

from femsnn.snn.base import State, StatefulModule
from femsnn.snn.surrogate import DEFAULT_SLOPE, spike

Reset = Literal["subtract", "zero", "none"]
RESETS: tuple[str, ...] = get_args(Reset)

#: initial decay rate and threshold of (R)LIF neurons in the authors' code
LIF_BETA_INIT = 0.1
LIF_THRESHOLD_INIT = 0.1


def check_layer_args(n_in: int, n_out: int, reset: str, slope: float) -> None:
    """Raise ValueError for non-positive sizes, an unknown reset mode or a non-positive surrogate slope."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"layer sizes must be positive, got n_in={n_in}, n_out={n_out}")
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
    if not slope > 0:
        raise ValueError(f"surrogate slope must be positive, got {slope}")


def leaky_membrane(beta: Tensor, membrane: Tensor, current: Tensor, reset: Tensor, threshold: Tensor, mode: str) -> Tensor:
    """New membrane of leaky integrators: decay (β clamped to [0, 1]), input current, reset by mode."""
    decay = beta.clamp(0, 1)
    if mode == "subtract":
        return decay * membrane + current - reset * threshold
    if mode == "zero":
        return decay * ((1 - reset) * membrane) + current
    return decay * membrane + current


class SpikingLayer(StatefulModule):
    """Common parts of the spiking layers: sizes, reset mode, surrogate slope, per-neuron threshold."""

    def __init__(self, n_in: int, n_out: int, reset: str, surrogate_slope: float, threshold: Tensor) -> None:
        super().__init__()
        check_layer_args(n_in, n_out, reset, surrogate_slope)
        self.n_inputs, self.n_outputs = n_in, n_out
        self.reset, self.surrogate_slope = reset, float(surrogate_slope)
        self.threshold = nn.Parameter(threshold)

    @property
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        """``membrane`` (n_out,)."""
        return {"membrane": (self.n_outputs,)}

    def spikes(self, state: State) -> Tensor:
        """Spikes H(U - U_thr) of the step that produced state (with surrogate gradient): (B, n_out)."""
        return spike(state["membrane"] - self.threshold, self.surrogate_slope)

    def reset_signal(self, membrane: Tensor) -> Tensor:
        """R_t = H(U_{t-1} - U_thr), detached: which neurons reset at this step."""
        return (membrane > self.threshold).to(membrane.dtype)

    def extra_repr(self) -> str:
        """Sizes and reset mode in the module's printout."""
        return f"n_in={self.n_inputs}, n_out={self.n_outputs}, reset={self.reset!r}, surrogate_slope={self.surrogate_slope}"


class LIF(SpikingLayer):
    """Leaky integrate-and-fire layer (eq. 7): Linear ``linear`` (W, bias) into per-neuron leaky membranes.

    Parameters: ``linear.weight`` (n_out, n_in), ``linear.bias`` (n_out,), ``beta`` (n_out,),
    ``threshold`` (n_out,); β and U_thr start at 0.1 as in the authors' code.
    """

    def __init__(
        self, n_in: int, n_out: int, reset: Reset = "subtract", surrogate_slope: float = DEFAULT_SLOPE
    ) -> None:
        super().__init__(n_in, n_out, reset, surrogate_slope, torch.full((n_out,), LIF_THRESHOLD_INIT))
        self.linear = nn.Linear(n_in, n_out)
        self.beta = nn.Parameter(torch.full((n_out,), LIF_BETA_INIT))

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """U_t = β U_{t-1} + W x_t + b - R_t U_thr (by reset mode); returns S_t and {membrane: U_t}."""
        previous = state["membrane"]
        membrane = leaky_membrane(self.beta, previous, self.linear(x), self.reset_signal(previous), self.threshold, self.reset)
        return spike(membrane - self.threshold, self.surrogate_slope), {"membrane": membrane}


class RLIF(SpikingLayer):
    """Recurrent LIF layer (eq. 19): LIF plus all-to-all recurrent weights V on the layer's previous spikes.

    Parameters: as :class:`LIF`, plus ``recurrent.weight`` V (n_out, n_out), no bias (W's bias covers it).
    Unlike the authors' code, the previous spikes really feed back (science notes, section 3).
    """

    def __init__(
        self, n_in: int, n_out: int, reset: Reset = "subtract", surrogate_slope: float = DEFAULT_SLOPE
    ) -> None:
        super().__init__(n_in, n_out, reset, surrogate_slope, torch.full((n_out,), LIF_THRESHOLD_INIT))
        self.linear = nn.Linear(n_in, n_out)
        self.recurrent = nn.Linear(n_out, n_out, bias=False)
        self.beta = nn.Parameter(torch.full((n_out,), LIF_BETA_INIT))

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """U_t = β U_{t-1} + W x_t + b + V S_{t-1} - R_t U_thr (by reset mode); returns S_t and {membrane: U_t}."""
        previous = state["membrane"]
        previous_spikes = spike(previous - self.threshold, self.surrogate_slope)
        current = self.linear(x) + self.recurrent(previous_spikes)
        membrane = leaky_membrane(self.beta, previous, current, previous_spikes.detach(), self.threshold, self.reset)
        return spike(membrane - self.threshold, self.surrogate_slope), {"membrane": membrane}


class SLSTM(SpikingLayer):
    """Spiking LSTM layer (eqs. 23-27): ``lstm_cell`` (torch LSTMCell) with hidden h = membrane, cell c = cell.

    The recurrence uses the real-valued membrane h (after reset); c is never reset. Parameters:
    ``lstm_cell.weight_ih`` (4 n_out, n_in), ``lstm_cell.weight_hh`` (4 n_out, n_out), ``lstm_cell.bias_ih``,
    ``lstm_cell.bias_hh`` (gate order i, f, g, o as torch), ``threshold`` (n_out,) initialised uniform in [0, 1].
    State is carried whatever n_in and n_out (snnTorch >= 0.8 forgets it when they differ).
    """

    def __init__(
        self, n_in: int, n_out: int, reset: Reset = "subtract", surrogate_slope: float = DEFAULT_SLOPE
    ) -> None:
        super().__init__(n_in, n_out, reset, surrogate_slope, torch.rand(n_out))
        self.lstm_cell = nn.LSTMCell(n_in, n_out)

    @property
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        """``membrane`` h (n_out,) and ``cell`` c (n_out,)."""
        return {"membrane": (self.n_outputs,), "cell": (self.n_outputs,)}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """h̃_t, c_t = LSTMCell(x_t, (h_{t-1}, c_{t-1})); h_t = h̃_t reset by mode; returns S_t and {membrane, cell}."""
        previous = state["membrane"]
        candidate, cell = self.lstm_cell(x, (previous, state["cell"]))
        if self.reset == "subtract":
            membrane = candidate - self.reset_signal(previous) * self.threshold
        elif self.reset == "zero":
            membrane = candidate * (1 - self.reset_signal(previous))
        else:
            membrane = candidate
        return spike(membrane - self.threshold, self.surrogate_slope), {"membrane": membrane, "cell": cell}
