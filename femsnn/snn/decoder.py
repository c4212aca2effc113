"""The membrane decoder and population vote, as the authors coded them (paper eqs. 11-12).

The last spiking layer's real membrane (not its spikes) goes through

    membrane1_t = β1 membrane1_{t-1} + W1 U_t + b1          (n_hidden neurons)
    membrane2_t = β2 membrane2_{t-1} + W2 membrane1_t + b2  (population × n_outputs neurons)
    y_t[k]      = mean of membrane2_t over output k's population neurons [k·n_o, (k+1)·n_o)

leaky integrators without spikes or reset (β clamped to [0, 1], learnable per neuron). Under
``torch.inference_mode()`` the step runs as (b + β membrane_{t-1}) then one in-place GEMM accumulation
per layer, which agrees with the reference to rounding (see :mod:`femsnn.snn.neurons`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from femsnn.snn.base import State, StatefulModule
from femsnn.snn.sequence import leaky_scan


class MembraneDecoder(StatefulModule):
    """Two non-resetting leaky integrator layers then a population mean per output component.

    Parameters: ``linear1`` (n_hidden -> n_hidden), ``beta1`` (n_hidden,), ``linear2``
    (n_hidden -> population·n_outputs), ``beta2`` (population·n_outputs,). State: ``membrane1``,
    ``membrane2``. beta_init: a constant initial β, or None for uniform in [0, 1] (authors: 0.1 for
    (R)LIF networks, uniform for SLSTM networks).
    """

    def __init__(self, n_hidden: int, n_outputs: int, population: int, beta_init: float | None = None) -> None:
        super().__init__()
        if n_hidden < 1 or n_outputs < 1 or population < 1:
            raise ValueError(
                f"decoder sizes must be positive, got n_hidden={n_hidden}, n_outputs={n_outputs}, population={population}"
            )
        self.n_inputs, self.n_outputs, self.population = n_hidden, n_outputs, population
        n_vote = population * n_outputs
        self.linear1 = nn.Linear(n_hidden, n_hidden)
        self.linear2 = nn.Linear(n_hidden, n_vote)
        if beta_init is None:
            self.beta1, self.beta2 = nn.Parameter(torch.rand(n_hidden)), nn.Parameter(torch.rand(n_vote))
        else:
            self.beta1 = nn.Parameter(torch.full((n_hidden,), float(beta_init)))
            self.beta2 = nn.Parameter(torch.full((n_vote,), float(beta_init)))

    @property
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        """``membrane1`` (n_hidden,), ``membrane2`` (population·n_outputs,)."""
        return {"membrane1": (self.n_inputs,), "membrane2": (self.population * self.n_outputs,)}

    def step(self, membrane: Tensor, state: State) -> tuple[Tensor, State]:
        """Last spiking layer's membrane (B, n_hidden) -> outputs (B, n_outputs) and new decoder state."""
        if torch.is_inference_mode_enabled():
            membrane1 = leaky_linear_(self.linear1, self.beta1, state["membrane1"], membrane)
            membrane2 = leaky_linear_(self.linear2, self.beta2, state["membrane2"], membrane1)
        else:
            membrane1 = self.beta1.clamp(0, 1) * state["membrane1"] + self.linear1(membrane)
            membrane2 = self.beta2.clamp(0, 1) * state["membrane2"] + self.linear2(membrane1)
        vote = membrane2.unflatten(-1, (self.n_outputs, self.population)).mean(dim=-1)
        return vote, {"membrane1": membrane1, "membrane2": membrane2}

    def sequence(self, membranes: Tensor, state: State) -> tuple[Tensor, State]:
        """:meth:`step` over all steps of the last layer's membranes (T, B, n_hidden) with one GEMM per layer and one
        autograd node per leaky scan (femsnn.snn.sequence): outputs (T, B, n_outputs) and the new state."""
        membrane1 = leaky_scan(self.beta1.clamp(0, 1), sequence_linear(self.linear1, membranes), state["membrane1"])
        membrane2 = leaky_scan(self.beta2.clamp(0, 1), sequence_linear(self.linear2, membrane1), state["membrane2"])
        vote = membrane2.unflatten(-1, (self.n_outputs, self.population)).mean(dim=-1)
        return vote, {"membrane1": membrane1[-1], "membrane2": membrane2[-1]}

    def input_map(self) -> Tensor:
        """d y_t / d U_t (n_outputs, n_hidden): the population mean of W2 W1, the same at every step and state
        (leaky integrators are linear, and their decay acts on the previous membranes only)."""
        vote_weight = self.linear2.weight.unflatten(0, (self.n_outputs, self.population)).mean(dim=1)
        return vote_weight @ self.linear1.weight

    def extra_repr(self) -> str:
        """Sizes in the module's printout."""
        return f"n_hidden={self.n_inputs}, n_outputs={self.n_outputs}, population={self.population}"


def leaky_linear_(linear: nn.Linear, beta: Tensor, previous: Tensor, inputs: Tensor) -> Tensor:
    """b + β previous + inputs W^T as one pass and one accumulating GEMM (inference path; previous untouched)."""
    return torch.addcmul(linear.bias, beta.clamp(0, 1), previous).addmm_(inputs, linear.weight.t())


def sequence_linear(linear: nn.Linear, inputs: Tensor) -> Tensor:
    """linear over (T, B, n_in) as one GEMM against W^T made contiguous (autograd's weight gradient is then x^T d_out,
    the faster layout on CPU); same values as linear(inputs)."""
    flat = torch.addmm(linear.bias, inputs.flatten(0, 1), linear.weight.t().contiguous())
    return flat.unflatten(0, inputs.shape[:2])
