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

Two implementations of ``step``, chosen by torch's mode:

- ``differentiable_step``: plain torch ops with the arctan surrogate; used whenever autograd may be
  recording (training, surrogate tangents, torch.func transforms). Its numbers are the reference.
- ``inference_step`` (under ``torch.inference_mode()`` only): one GEMM per layer of the input buffer
  [x | recurrent input | 1] against the stacked weights [W_x | W_rec | b], then in-place elementwise
  updates; spikes can be written straight into the next layer's input buffer. It agrees with the
  reference to rounding (different summation order; SLSTM's tanh computed as 2 σ(2x) - 1, which is
  cheaper than torch's tanh on CPU), so a membrane within rounding of its threshold may spike on one
  path and not on the other. The stacked weights are rebuilt at every call (a few microseconds), so
  they can never be stale.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from femsnn.snn.base import State, StatefulModule
from femsnn.snn.sequence import slstm_sequence
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


def leaky_membrane_(current: Tensor, beta: Tensor, membrane: Tensor, reset: Tensor, threshold: Tensor, mode: str) -> Tensor:
    """:func:`leaky_membrane` in place on current (inference path; reset is a 0/1 float mask, membrane is not touched)."""
    decay = beta.clamp(0, 1)
    if mode == "zero":
        return current.addcmul_(decay, membrane * (1 - reset))
    current.addcmul_(decay, membrane)
    if mode == "subtract":
        current.addcmul_(reset, threshold, value=-1)
    return current


def check_inference_input(x: Tensor, state: State, weight: Tensor) -> None:
    """Raise ValueError unless x and every state tensor have the weights' dtype and device (the inference path
    copies into buffers, which would otherwise cast silently)."""
    for name, tensor in {"input": x, **state}.items():
        if tensor.dtype != weight.dtype or tensor.device != weight.device:
            raise ValueError(
                f"{name} is {tensor.dtype} on {tensor.device}, the network is {weight.dtype} on {weight.device}"
            )


class SpikingLayer(StatefulModule):
    """Common parts of the spiking layers: sizes, reset mode, surrogate slope, per-neuron threshold.

    Subclasses implement ``differentiable_step`` and, for the inference path, ``n_recurrent_inputs``,
    ``stacked_weight``, ``write_recurrent_input`` and ``update_from_preactivation``.
    """

    #: columns of the recurrent part of the inference input buffer
    n_recurrent_inputs: int = 0

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

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step (module docstring): the inference path under ``torch.inference_mode()``, else the reference."""
        if not torch.is_inference_mode_enabled():
            return self.differentiable_step(x, state)
        inputs = self.inference_inputs(x.shape[0], x)
        inputs[:, : self.n_inputs] = x
        spikes = torch.empty((x.shape[0], self.n_outputs), dtype=x.dtype, device=x.device)
        return spikes, self.inference_step(inputs, state, spikes)

    @abstractmethod
    def differentiable_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """The reference step with autograd and surrogate gradients: (B, n_in) -> spikes (B, n_out), new state."""

    def inference_inputs(self, batch: int, like: Tensor) -> Tensor:
        """An uninitialised input buffer (batch, n_in + n_recurrent_inputs + 1) with like's dtype and device."""
        return torch.empty((batch, self.n_inputs + self.n_recurrent_inputs + 1), dtype=like.dtype, device=like.device)

    def inference_step(self, inputs: Tensor, state: State, spikes: Tensor | None) -> State:
        """Inference path given the buffer with x in ``inputs[:, :n_in]`` (the rest is filled here): returns the new
        state and writes this step's spikes into spikes (B, n_out), a view of the next layer's buffer, or skips them."""
        weight = self.stacked_weight()
        check_inference_input(inputs, state, weight)
        self.write_recurrent_input(state, inputs[:, self.n_inputs : -1])
        inputs[:, -1] = 1
        new_state = self.update_from_preactivation(torch.mm(inputs, weight.t()), state)
        if spikes is not None:
            torch.gt(new_state["membrane"], self.threshold, out=spikes)
        return new_state

    def inference_step_with_jacobian(self, x: Tensor, state: State, downstream: Tensor) -> tuple[State, Tensor]:
        """Inference step from x (B, n_in), and d (downstream U_t) / d x_t (B, m, n_in) for a fixed linear map
        ``downstream`` (m, n_out) of the new membrane: exact, as the reset reads only U_{t-1}. Here for
        membranes linear in x (LIF, RLIF: downstream W, the same for every row)."""
        new_state = self.step(x, state)[1]
        return new_state, (downstream @ self.linear.weight).expand(x.shape[0], -1, -1)

    @abstractmethod
    def stacked_weight(self) -> Tensor:
        """[W_x | W_rec | bias] (rows, n_in + n_recurrent_inputs + 1), built anew from the parameters."""

    def write_recurrent_input(self, state: State, out: Tensor) -> None:
        """Write the recurrent part of the inference input (B, n_recurrent_inputs) from the previous state (none here)."""

    @abstractmethod
    def update_from_preactivation(self, preactivation: Tensor, state: State) -> State:
        """New state from the GEMM output (B, rows), in place on it (inference path)."""

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

    def differentiable_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """U_t = β U_{t-1} + W x_t + b - R_t U_thr (by reset mode); returns S_t and {membrane: U_t}."""
        previous = state["membrane"]
        membrane = leaky_membrane(self.beta, previous, self.linear(x), self.reset_signal(previous), self.threshold, self.reset)
        return spike(membrane - self.threshold, self.surrogate_slope), {"membrane": membrane}

    def stacked_weight(self) -> Tensor:
        """[W | b] (n_out, n_in + 1)."""
        return torch.cat([self.linear.weight, self.linear.bias[:, None]], dim=1)

    def update_from_preactivation(self, preactivation: Tensor, state: State) -> State:
        """U_t from the input current W x_t + b, in place."""
        previous = state["membrane"]
        reset = self.reset_signal(previous)
        return {"membrane": leaky_membrane_(preactivation, self.beta, previous, reset, self.threshold, self.reset)}


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
        self.n_recurrent_inputs = n_out

    def differentiable_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """U_t = β U_{t-1} + W x_t + b + V S_{t-1} - R_t U_thr (by reset mode); returns S_t and {membrane: U_t}."""
        previous = state["membrane"]
        previous_spikes = spike(previous - self.threshold, self.surrogate_slope)
        current = self.linear(x) + self.recurrent(previous_spikes)
        membrane = leaky_membrane(self.beta, previous, current, previous_spikes.detach(), self.threshold, self.reset)
        return spike(membrane - self.threshold, self.surrogate_slope), {"membrane": membrane}

    def stacked_weight(self) -> Tensor:
        """[W | V | b] (n_out, n_in + n_out + 1)."""
        return torch.cat([self.linear.weight, self.recurrent.weight, self.linear.bias[:, None]], dim=1)

    def write_recurrent_input(self, state: State, out: Tensor) -> None:
        """The previous spikes S_{t-1} = H(U_{t-1} - U_thr)."""
        torch.gt(state["membrane"], self.threshold, out=out)

    def update_from_preactivation(self, preactivation: Tensor, state: State) -> State:
        """U_t from the current W x_t + b + V S_{t-1}, in place (the reset mask R_t equals S_{t-1})."""
        previous = state["membrane"]
        reset = self.reset_signal(previous)
        return {"membrane": leaky_membrane_(preactivation, self.beta, previous, reset, self.threshold, self.reset)}


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
        self.n_recurrent_inputs = n_out

    @property
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        """``membrane`` h (n_out,) and ``cell`` c (n_out,)."""
        return {"membrane": (self.n_outputs,), "cell": (self.n_outputs,)}

    def differentiable_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
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

    def differentiable_sequence(self, x: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """:meth:`differentiable_step` over all steps of x (T, B, n_in) as one autograd node (femsnn.snn.sequence):
        returns spikes (T, B, n_out), the new state and the membranes (T, B, n_out)."""
        cell = self.lstm_cell
        # W_ih^T made contiguous: autograd then forms its gradient as x^T d_pre, several times faster for few inputs
        pre = torch.addmm(cell.bias_ih + cell.bias_hh, x.flatten(0, 1), cell.weight_ih.t().contiguous()).unflatten(0, x.shape[:2])
        spikes, membranes, last_cell = slstm_sequence(
            pre, cell.weight_hh, self.threshold, state["membrane"], state["cell"], self.reset, self.surrogate_slope
        )
        return spikes, {"membrane": membranes[-1], "cell": last_cell}, membranes

    def stacked_weight(self) -> Tensor:
        """[W_ih | W_hh | b_ih + b_hh] (4 n_out, n_in + n_out + 1), the cell-gate rows g doubled (tanh x = 2 σ(2x) - 1)."""
        cell, n = self.lstm_cell, self.n_outputs
        weight = torch.cat([cell.weight_ih, cell.weight_hh, (cell.bias_ih + cell.bias_hh)[:, None]], dim=1)
        weight[2 * n : 3 * n] *= 2  # exact: a power of two
        return weight

    def write_recurrent_input(self, state: State, out: Tensor) -> None:
        """The previous membrane h_{t-1}."""
        out.copy_(state["membrane"])

    def update_from_preactivation(self, preactivation: Tensor, state: State) -> State:
        """LSTM gates (i, f, 2g, o) -> c_t, h̃_t with sigmoids only, in place on the gate buffer; then the reset."""
        return self._update_from_gates(preactivation, state, False)[0]

    def inference_step_with_jacobian(self, x: Tensor, state: State, downstream: Tensor) -> tuple[State, Tensor]:
        """As the base class, with the per-row derivative of h_t = o tanh(c_t) through the four gates:
        d h / d x = Σ_gates D_gate W_gate, contracted with downstream in one GEMM (B, 4 n_out) @ (4 n_out, m n_in)."""
        inputs = self.inference_inputs(x.shape[0], x)
        inputs[:, : self.n_inputs] = x
        self.write_recurrent_input(state, inputs[:, self.n_inputs : -1])
        inputs[:, -1] = 1
        new_state, factors = self._update_from_gates(torch.mm(inputs, self.stacked_weight().t()), state, True)
        n, m = self.n_outputs, downstream.shape[0]
        weight = self.lstm_cell.weight_ih.view(4, n, 1, self.n_inputs).clone()
        weight[2] *= 4  # the cell-gate factor holds σ'(2 a_g), and d tanh(a) / da = 4 σ'(2a)
        gate_weights = weight * downstream.t().reshape(1, n, m, 1)
        return new_state, torch.mm(factors, gate_weights.reshape(4 * n, m * self.n_inputs)).view(-1, m, self.n_inputs)

    def _update_from_gates(self, preactivation: Tensor, state: State, jacobian: bool) -> tuple[State, Tensor | None]:
        """:meth:`update_from_preactivation`; with jacobian, also the gate factors D (B, 4 n_out) of d h_t / d x_t:
        (o (1 - tanh² c) g i', o (1 - tanh² c) c_{t-1} f', o (1 - tanh² c) i σ'(2 a_g), tanh c o') with σ' = σ (1 - σ)."""
        gates = preactivation.sigmoid_()
        factors = torch.addcmul(gates, gates, gates, value=-1) if jacobian else None  # σ' of every gate
        input_gate, forget_gate, cell_gate, output_gate = gates.chunk(4, dim=1)
        cell_gate.mul_(2).sub_(1)  # tanh(g)
        cell = torch.mul(forget_gate, state["cell"]).addcmul_(input_gate, cell_gate)
        tanh_cell = torch.mul(cell, 2).sigmoid_().mul_(2).sub_(1)
        if factors is None:
            membrane = tanh_cell.mul_(output_gate)  # o tanh(c_t)
        else:
            membrane = torch.mul(tanh_cell, output_gate)
            through_cell = torch.addcmul(output_gate, membrane, tanh_cell, value=-1)  # o (1 - tanh² c)
            d_input, d_forget, d_cell, d_output = factors.chunk(4, dim=1)
            d_input.mul_(through_cell).mul_(cell_gate)
            d_forget.mul_(through_cell).mul_(state["cell"])
            d_cell.mul_(through_cell).mul_(input_gate)
            d_output.mul_(tanh_cell)
        if self.reset != "none":
            previous = state["membrane"]
            fired = torch.gt(previous, self.threshold, out=cell_gate)  # the cell-gate slice is free again
            if self.reset == "subtract":
                membrane.addcmul_(fired, self.threshold, value=-1)
            else:
                membrane.mul_(1 - fired)
                if factors is not None:
                    factors.view(-1, 4, self.n_outputs).mul_((1 - fired)[:, None, :])
        return {"membrane": membrane, "cell": cell}, factors
