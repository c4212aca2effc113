"""The interface every femsnn regressor network shares (spiking or not), pure torch.

A regressor maps a sequence of real inputs (batch B, steps T, n_inputs) to a sequence of real
outputs (B, T, n_outputs). Its recurrent state is a flat ``dict[str, Tensor]`` of per-sample
tensors (B, *shape) held *outside* the network, so that a batch of quadrature points can be stepped
one load step at a time and their state stored as history variables:

    state = net.init_state(batch)                  # zeros (or the layer's rest state)
    y, state = net.step(x_t, state)                # one time step; never mutates its input state
    Y = net(X)                                     # whole sequences: loops step over T

``state_spec`` declares names and per-sample shapes (e.g. ``{"layer0.membrane": (64,),
"layer0.cell": (64,), ...}``): it is the history_spec of the spiking material.
Networks work in standardised units; normalisation lives in the model artefact, not here.

The same stepping contract (``StatefulModule``) is shared by the building blocks of
:mod:`femsnn.snn` (spiking layers, the membrane decoder), whose outputs need not be regressions.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping

import torch
from torch import Tensor, nn

State = dict[str, Tensor]


class StatefulModule(nn.Module):
    """A module stepped one time step at a time, its recurrent state held outside in a dict."""

    n_inputs: int
    n_outputs: int

    @property
    @abstractmethod
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        """Recurrent state: name -> per-sample shape, in a fixed order."""

    @abstractmethod
    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step: x (B, n_inputs), state -> y (B, n_outputs), new state (input state untouched)."""

    def init_state(self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> State:
        """State of batch samples at rest (zeros)."""
        p = next(self.parameters())
        return {
            k: torch.zeros((batch, *shape), device=device or p.device, dtype=dtype or p.dtype)
            for k, shape in self.state_spec.items()
        }

    def forward(self, x: Tensor, state: State | None = None) -> Tensor:
        """Whole sequences x (B, T, n_inputs) -> y (B, T, n_outputs), starting from state or rest."""
        state = self.init_state(x.shape[0], x.device, x.dtype) if state is None else state
        outputs = []
        for t in range(x.shape[1]):
            y, state = self.step(x[:, t], state)
            outputs.append(y)
        return torch.stack(outputs, dim=1)


class Regressor(StatefulModule):
    """Base class: subclasses set n_inputs / n_outputs and implement state_spec and step."""


def check_step_input(x: Tensor, state: Mapping[str, Tensor], n_inputs: int, spec: Mapping[str, tuple[int, ...]]) -> None:
    """Raise ValueError unless x is (B, n_inputs) and state holds exactly spec's names with shapes (B, *shape).

    Guards against silent broadcasting (e.g. a state of batch 1 stepped with a batch of B inputs).
    """
    if x.ndim != 2 or x.shape[1] != n_inputs:
        raise ValueError(f"input must have shape (B, {n_inputs}), got {tuple(x.shape)}")
    if state.keys() != spec.keys():
        missing, extra = sorted(spec.keys() - state.keys()), sorted(state.keys() - spec.keys())
        raise ValueError(f"state names do not match the network: missing {missing}, unexpected {extra}")
    batch = x.shape[0]
    for name, shape in spec.items():
        if tuple(state[name].shape) != (batch, *shape):
            raise ValueError(f"state '{name}' must have shape {(batch, *shape)}, got {tuple(state[name].shape)}")
