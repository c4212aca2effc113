"""Regressor networks: the spiking regressor of the paper (eqs. 10-13, 29) and its LSTM baseline (eq. 30).

Both follow :class:`femsnn.snn.base.Regressor` (explicit state, pure ``step``); their architecture
round-trips through a JSON-able dict (:func:`regressor_spec` / :func:`build_regressor`) so that model
artefacts can store it next to the ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Literal, get_args

import torch
from pydantic import Field, PositiveFloat, PositiveInt
from torch import Tensor, nn

from femsnn.config import ConfigError, Strict, parse_config
from femsnn.snn.base import Regressor, State, check_step_input
from femsnn.snn.decoder import MembraneDecoder
from femsnn.snn.neurons import LIF, LIF_BETA_INIT, RLIF, SLSTM, Reset, SpikingLayer, check_inference_input
from femsnn.snn.surrogate import DEFAULT_SLOPE

#: the inference step runs batches of more than ONE_BLOCK_MAX rows in blocks of INFERENCE_BLOCK rows, so that
#: the work buffers (4 n_hidden gate values per row for SLSTM) are reused by the allocator instead of being
#: allocated and first touched at the full batch size. Measured on a 3x64 SLSTM: 1e5 points 20-30 % faster in
#: blocks of 2048..4096 rows than in one; 1e4 points fastest in one block (splitting costs a copy of the state).
INFERENCE_BLOCK = 4096
ONE_BLOCK_MAX = 16384

Neuron = Literal["lif", "rlif", "slstm"]
NEURONS: tuple[str, ...] = get_args(Neuron)
_LAYERS: dict[str, type[SpikingLayer]] = {"lif": LIF, "rlif": RLIF, "slstm": SLSTM}


def substate(state: Mapping[str, Tensor], prefix: str) -> State:
    """The entries of state under ``prefix.``, with the prefix removed."""
    head = prefix + "."
    return {k[len(head):]: v for k, v in state.items() if k.startswith(head)}


def prefixed(state: Mapping[str, Tensor], prefix: str) -> State:
    """state with every name put under ``prefix.``."""
    return {f"{prefix}.{k}": v for k, v in state.items()}


def skip_connection(n_inputs: int, n_outputs: int) -> nn.Linear:
    """A linear input -> output map starting at zero (the network alone), fitted before training."""
    linear = nn.Linear(n_inputs, n_outputs)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


def with_skip(skip: nn.Linear | None, x: Tensor, y: Tensor) -> Tensor:
    """y plus the skip connection's linear map of x (y itself without one)."""
    return y if skip is None else y + skip(x)


class SpikingRegressor(Regressor):
    """Constant-current input -> spiking layers ``layer0``.. -> membrane ``decoder`` -> population vote.

    The real input x_t drives the first layer at every step (eq. 10); layers pass spikes on; the
    decoder reads the last layer's real membrane (as coded by the authors). State names:
    ``layer{i}.membrane`` (+ ``layer{i}.cell`` for SLSTM), ``decoder.membrane1``, ``decoder.membrane2``.
    Initialised as the authors' code: decoder β = 0.1 for (R)LIF networks, uniform in [0, 1] for SLSTM.
    skip: add a linear map of the input, y = vote + W_skip x + b_skip (``skip``, zero until fitted,
    :func:`femsnn.train.harness.fit_skip`), so that the spiking part learns only the nonlinear remainder.
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        neuron: Neuron = "slstm",
        hidden: Sequence[int] = (64, 64, 64),
        population: int = 32,
        reset: Reset = "subtract",
        surrogate_slope: float = DEFAULT_SLOPE,
        skip: bool = False,
    ) -> None:
        super().__init__()
        if neuron not in NEURONS:
            raise ValueError(f"neuron must be one of {NEURONS}, got {neuron!r}")
        if len(hidden) == 0:
            raise ValueError("hidden must list at least one layer size")
        sizes = [int(n_inputs), *(int(h) for h in hidden)]
        self.n_inputs, self.n_outputs = int(n_inputs), int(n_outputs)
        self.neuron, self.hidden, self.population = neuron, tuple(sizes[1:]), int(population)
        self.reset, self.surrogate_slope = reset, float(surrogate_slope)
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.add_module(f"layer{i}", _LAYERS[neuron](n_in, n_out, reset, surrogate_slope))
        decoder_beta = None if neuron == "slstm" else LIF_BETA_INIT
        self.decoder = MembraneDecoder(sizes[-1], self.n_outputs, self.population, beta_init=decoder_beta)
        self.skip = skip_connection(self.n_inputs, self.n_outputs) if skip else None
        spec = {}
        for i, layer in enumerate(self.spiking_layers):
            spec.update(prefixed(layer.state_spec, f"layer{i}"))
        self._state_spec = spec | prefixed(self.decoder.state_spec, "decoder")

    @property
    def spiking_layers(self) -> list[SpikingLayer]:
        """The spiking layers, input side first."""
        return [getattr(self, f"layer{i}") for i in range(len(self.hidden))]

    @property
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        """``layer{i}.membrane`` (+ ``layer{i}.cell``), ``decoder.membrane1``, ``decoder.membrane2``."""
        return dict(self._state_spec)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step of the whole network: x (B, n_inputs) -> y (B, n_outputs), new state.

        Under ``torch.inference_mode()`` the layers take the inference path (:mod:`femsnn.snn.neurons`), each
        writing its spikes straight into the next layer's input buffer.
        """
        check_step_input(x, state, self.n_inputs, self._state_spec)
        if torch.is_inference_mode_enabled():
            return self._inference_step(x, state)
        new_state: State = {}
        signal = x
        for i, layer in enumerate(self.spiking_layers):
            signal, layer_state = layer.step(signal, substate(state, f"layer{i}"))
            new_state.update(prefixed(layer_state, f"layer{i}"))
        y, decoder_state = self.decoder.step(layer_state["membrane"], substate(state, "decoder"))
        new_state.update(prefixed(decoder_state, "decoder"))
        return with_skip(self.skip, x, y), new_state

    def forward(self, x: Tensor, state: State | None = None) -> Tensor:
        """Whole sequences x (B, T, n_inputs) -> y (B, T, n_outputs), starting from state or rest (:meth:`sequence`
        for SLSTM networks outside inference mode, else looping :meth:`step`)."""
        if self.neuron != "slstm" or torch.is_inference_mode_enabled():
            return super().forward(x, state)
        return self.sequence(x, state)[0]

    def sequence(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State, dict[str, Tensor]]:
        """Whole sequences x (B, T, n_inputs) from state (rest if None): outputs (B, T, n_outputs), the final state
        and every layer's spikes {``layer{i}``: (B, T, n_i)}, with surrogate gradients.

        SLSTM networks outside inference mode run layer by layer over all steps (:mod:`femsnn.snn.sequence`): the
        numbers of looping :meth:`step`, to rounding, at a fraction of the training cost. Others loop step.
        """
        if x.ndim != 3 or x.shape[1] < 1 or x.shape[2] != self.n_inputs:
            raise ValueError(f"input must have shape (B, T >= 1, {self.n_inputs}), got {tuple(x.shape)}")
        state = self.init_state(x.shape[0], x.device, x.dtype) if state is None else state
        check_step_input(x[:, 0], state, self.n_inputs, self._state_spec)
        if self.neuron != "slstm" or torch.is_inference_mode_enabled():
            return self._looped_sequence(x, state)
        new_state: State = {}
        spikes: dict[str, Tensor] = {}
        signal = x.transpose(0, 1)
        for i, layer in enumerate(self.spiking_layers):
            signal, layer_state, membranes = layer.differentiable_sequence(signal, substate(state, f"layer{i}"))
            new_state.update(prefixed(layer_state, f"layer{i}"))
            spikes[f"layer{i}"] = signal.transpose(0, 1)
        y, decoder_state = self.decoder.sequence(membranes, substate(state, "decoder"))
        new_state.update(prefixed(decoder_state, "decoder"))
        return with_skip(self.skip, x, y.transpose(0, 1)), new_state, spikes

    def _looped_sequence(self, x: Tensor, state: State) -> tuple[Tensor, State, dict[str, Tensor]]:
        """:meth:`sequence` by looping :meth:`step` (any neuron, inference mode included)."""
        outputs, spikes = [], {f"layer{i}": [] for i in range(len(self.hidden))}
        for t in range(x.shape[1]):
            y, state = self.step(x[:, t], state)
            outputs.append(y)
            for name, layer_spikes in self.spikes(state).items():
                spikes[name].append(layer_spikes)
        return torch.stack(outputs, dim=1), state, {k: torch.stack(v, dim=1) for k, v in spikes.items()}

    def _inference_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """:meth:`step` through the layers' inference paths, in blocks of rows for large batches (INFERENCE_BLOCK)."""
        check_inference_input(x, state, self.decoder.linear1.weight)
        batch = x.shape[0]
        if batch <= ONE_BLOCK_MAX:
            return self._inference_block(x, state)
        y = x.new_empty((batch, self.n_outputs))
        new_state = {k: x.new_empty((batch, *shape)) for k, shape in self._state_spec.items()}
        for start in range(0, batch, INFERENCE_BLOCK):
            rows = slice(start, start + INFERENCE_BLOCK)
            y[rows], block_state = self._inference_block(x[rows], {k: v[rows] for k, v in state.items()})
            for k, v in block_state.items():
                new_state[k][rows] = v
        return y, new_state

    def _inference_block(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """The inference step of one block of rows; the last layer's spikes are not formed (not used)."""
        layers, batch = self.spiking_layers, x.shape[0]
        new_state: State = {}
        inputs = layers[0].inference_inputs(batch, x)
        inputs[:, : self.n_inputs] = x
        for i, layer in enumerate(layers):
            following = layers[i + 1].inference_inputs(batch, x) if i + 1 < len(layers) else None
            spikes = None if following is None else following[:, : layer.n_outputs]
            layer_state = layer.inference_step(inputs, substate(state, f"layer{i}"), spikes)
            new_state.update(prefixed(layer_state, f"layer{i}"))
            inputs = following
        y, decoder_state = self.decoder.step(layer_state["membrane"], substate(state, "decoder"))
        new_state.update(prefixed(decoder_state, "decoder"))
        return with_skip(self.skip, x, y), new_state

    def spikes(self, state: State) -> dict[str, Tensor]:
        """Per-layer spikes {``layer{i}``: (B, n_i)} of the step that produced state (for spike-rate monitoring)."""
        return {f"layer{i}": layer.spikes(substate(state, f"layer{i}")) for i, layer in enumerate(self.spiking_layers)}

    @property
    def exact_input_jacobian(self) -> bool:
        """Whether :meth:`step_with_input_jacobian` applies (one spiking layer)."""
        return len(self.hidden) == 1

    def step_with_input_jacobian(self, x: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """Inference step and the exact d y / d x (B, n_outputs, n_inputs), without autograd, for ONE spiking layer.

        The decoder is linear in the layer's membrane, which is smooth in x (the reset reads the previous
        membrane), so the derivative is the layer's input Jacobian times the decoder's input map (+ the skip).
        Deeper networks reach the decoder only through spikes (piecewise constant in x): ValueError.
        """
        if len(self.hidden) != 1:
            raise ValueError(f"an exact input Jacobian exists for one spiking layer, this network has {len(self.hidden)}")
        check_step_input(x, state, self.n_inputs, self._state_spec)
        with torch.inference_mode():
            layer_state, jacobian = self.layer0.inference_step_with_jacobian(x, substate(state, "layer0"), self.decoder.input_map())
            y, decoder_state = self.decoder.step(layer_state["membrane"], substate(state, "decoder"))
            if self.skip is not None:
                jacobian = jacobian + self.skip.weight
        return with_skip(self.skip, x, y), prefixed(layer_state, "layer0") | prefixed(decoder_state, "decoder"), jacobian


class LSTMRegressor(Regressor):
    """The paper's baseline (eq. 30): ``lstm`` (torch LSTM, ``layers`` × ``hidden``) -> ``linear1`` ->
    LeakyReLU -> ``linear2`` (hidden -> population·n_outputs) -> population mean per output.

    State names ``layer{i}.hidden``, ``layer{i}.cell``. ``forward`` runs torch's fused multi-step LSTM;
    ``step`` runs one step of it; both give the same numbers. skip: as for :class:`SpikingRegressor`.
    """

    def __init__(
        self, n_inputs: int, n_outputs: int, hidden: int = 64, layers: int = 3, population: int = 32, skip: bool = False
    ) -> None:
        super().__init__()
        if min(n_inputs, n_outputs, hidden, layers, population) < 1:
            raise ValueError(
                f"sizes must be positive, got n_inputs={n_inputs}, n_outputs={n_outputs}, hidden={hidden}, "
                f"layers={layers}, population={population}"
            )
        self.n_inputs, self.n_outputs = int(n_inputs), int(n_outputs)
        self.hidden, self.layers, self.population = int(hidden), int(layers), int(population)
        self.lstm = nn.LSTM(self.n_inputs, self.hidden, num_layers=self.layers, batch_first=True)
        self.linear1 = nn.Linear(self.hidden, self.hidden)
        self.activation = nn.LeakyReLU()
        self.linear2 = nn.Linear(self.hidden, self.population * self.n_outputs)
        self.skip = skip_connection(self.n_inputs, self.n_outputs) if skip else None
        self._state_spec = {
            f"layer{i}.{name}": (self.hidden,) for i in range(self.layers) for name in ("hidden", "cell")
        }

    @property
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        """``layer{i}.hidden``, ``layer{i}.cell`` for each LSTM layer."""
        return dict(self._state_spec)

    def vote(self, hidden: Tensor) -> Tensor:
        """Top LSTM layer's hidden state (..., hidden) -> outputs (..., n_outputs) through the dense head."""
        out = self.linear2(self.activation(self.linear1(hidden)))
        return out.unflatten(-1, (self.n_outputs, self.population)).mean(dim=-1)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step: x (B, n_inputs) -> y (B, n_outputs), new state."""
        check_step_input(x, state, self.n_inputs, self._state_spec)
        out, (h, c) = self.lstm(x.unsqueeze(1), self._stacked(state))
        new_state: State = {}
        for i in range(self.layers):
            new_state[f"layer{i}.hidden"], new_state[f"layer{i}.cell"] = h[i], c[i]
        return with_skip(self.skip, x, self.vote(out[:, 0])), new_state

    def forward(self, x: Tensor, state: State | None = None) -> Tensor:
        """Whole sequences x (B, T, n_inputs) -> y (B, T, n_outputs) in one fused LSTM call."""
        if x.ndim != 3 or x.shape[2] != self.n_inputs:
            raise ValueError(f"input must have shape (B, T, {self.n_inputs}), got {tuple(x.shape)}")
        if state is None:
            out, _ = self.lstm(x)
        else:
            check_step_input(x[:, 0], state, self.n_inputs, self._state_spec)
            out, _ = self.lstm(x, self._stacked(state))
        return with_skip(self.skip, x, self.vote(out))

    def _stacked(self, state: State) -> tuple[Tensor, Tensor]:
        """State dict -> torch's (h0, c0), each (layers, B, hidden)."""
        h = torch.stack([state[f"layer{i}.hidden"] for i in range(self.layers)])
        c = torch.stack([state[f"layer{i}.cell"] for i in range(self.layers)])
        return h, c


class EnsembleRegressor(Regressor):
    """The mean output of independently trained spiking regressors ``member0``, ``member1``, ... (a population vote
    across networks): one network whose state is the members' states side by side, ``member{i}.<name>``.

    Members map the same inputs to the same outputs; trained with different seeds, their errors partly cancel.
    """

    def __init__(self, members: Sequence[SpikingRegressor]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        if not all(isinstance(m, SpikingRegressor) for m in members):
            raise ValueError(f"ensemble members must be spiking regressors, got {[type(m).__name__ for m in members]}")
        sizes = {(m.n_inputs, m.n_outputs) for m in members}
        if len(sizes) != 1:
            raise ValueError(f"ensemble members must map the same inputs to the same outputs, got {sorted(sizes)}")
        if len({id(m) for m in members}) != len(members):
            raise ValueError("ensemble members must be distinct networks (the same one given twice)")
        kinds = {(p.dtype, p.device) for m in members for p in m.parameters()}
        if len(kinds) != 1:
            raise ValueError(f"ensemble members must share dtype and device, got {sorted(map(str, kinds))}")
        (self.n_inputs, self.n_outputs), = sizes
        self.n_members = len(members)
        for i, member in enumerate(members):
            self.add_module(f"member{i}", member)
        self._state_spec = {}
        for i, member in enumerate(self.members):
            self._state_spec.update({f"member{i}.{k}": shape for k, shape in member.state_spec.items()})

    @property
    def members(self) -> list[SpikingRegressor]:
        """The member networks, in order."""
        return [getattr(self, f"member{i}") for i in range(self.n_members)]

    @property
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        """Every member's state under ``member{i}.``."""
        return dict(self._state_spec)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step of every member; y is the mean of their outputs."""
        check_step_input(x, state, self.n_inputs, self._state_spec)
        y, new_state, _ = self._each_member(lambda member, s: member.step(x, s), state)
        return y, new_state

    def forward(self, x: Tensor, state: State | None = None) -> Tensor:
        """Whole sequences: the mean of the members' forward passes."""
        state = self.init_state(x.shape[0], x.device, x.dtype) if state is None else state
        return torch.stack([m(x, substate(state, f"member{i}")) for i, m in enumerate(self.members)]).mean(dim=0)

    def sequence(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State, dict[str, Tensor]]:
        """Whole sequences through every member's :meth:`SpikingRegressor.sequence`: mean output, final state, spikes."""
        if x.ndim != 3 or x.shape[1] < 1 or x.shape[2] != self.n_inputs:
            raise ValueError(f"input must have shape (B, T >= 1, {self.n_inputs}), got {tuple(x.shape)}")
        state = self.init_state(x.shape[0], x.device, x.dtype) if state is None else state
        check_step_input(x[:, 0], state, self.n_inputs, self._state_spec)
        y, new_state, spikes = self._each_member(lambda member, s: member.sequence(x, s), state)
        return y, new_state, {k: v for i, (member_spikes,) in enumerate(spikes) for k, v in prefixed(member_spikes, f"member{i}").items()}

    def spikes(self, state: State) -> dict[str, Tensor]:
        """Per-layer spikes of every member, ``member{i}.layer{j}``: (B, n_j)."""
        return {k: v for i, m in enumerate(self.members) for k, v in prefixed(m.spikes(substate(state, f"member{i}")), f"member{i}").items()}

    @property
    def exact_input_jacobian(self) -> bool:
        """Whether :meth:`step_with_input_jacobian` applies (every member has one spiking layer)."""
        return all(m.exact_input_jacobian for m in self.members)

    def step_with_input_jacobian(self, x: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """Inference step and the exact d y / d x: the mean of the members' (one spiking layer each; else ValueError)."""
        check_step_input(x, state, self.n_inputs, self._state_spec)
        y, new_state, jacobians = self._each_member(lambda member, s: member.step_with_input_jacobian(x, s), state)
        return y, new_state, torch.stack([jacobian for (jacobian,) in jacobians]).mean(dim=0)

    def _each_member(self, call: Callable, state: State) -> tuple[Tensor, State, list[tuple]]:
        """call(member, its state) -> (y, new state, *extra) for every member: the mean y, the members' new states
        under ``member{i}.``, and each member's extras in order."""
        outputs, new_state, extras = [], {}, []
        for i, member in enumerate(self.members):
            y, member_state, *extra = call(member, substate(state, f"member{i}"))
            outputs.append(y)
            new_state.update(prefixed(member_state, f"member{i}"))
            extras.append(tuple(extra))
        return torch.stack(outputs).mean(dim=0), new_state, extras


class SpikingRegressorSpec(Strict):
    """Architecture of a :class:`SpikingRegressor` (constructor arguments)."""

    kind: Literal["spiking"] = "spiking"
    n_inputs: PositiveInt
    n_outputs: PositiveInt
    neuron: Neuron
    hidden: list[PositiveInt] = Field(min_length=1)
    population: PositiveInt
    reset: Reset = "subtract"
    surrogate_slope: PositiveFloat = DEFAULT_SLOPE
    skip: bool = False


class LSTMRegressorSpec(Strict):
    """Architecture of an :class:`LSTMRegressor` (constructor arguments)."""

    kind: Literal["lstm"] = "lstm"
    n_inputs: PositiveInt
    n_outputs: PositiveInt
    hidden: PositiveInt
    layers: PositiveInt = 3
    population: PositiveInt
    skip: bool = False


class EnsembleRegressorSpec(Strict):
    """Architecture of an :class:`EnsembleRegressor`: its members' specs."""

    kind: Literal["ensemble"] = "ensemble"
    members: list[SpikingRegressorSpec] = Field(min_length=2)


#: either architecture, told apart by ``kind`` (usable as a field of a config schema)
RegressorSpec = Annotated[SpikingRegressorSpec | LSTMRegressorSpec, Field(discriminator="kind")]
_SPECS: dict[str, type[Strict]] = {"spiking": SpikingRegressorSpec, "lstm": LSTMRegressorSpec, "ensemble": EnsembleRegressorSpec}
_CLASSES: dict[str, type[Regressor]] = {"spiking": SpikingRegressor, "lstm": LSTMRegressor}


def build_regressor(spec: Mapping | SpikingRegressorSpec | LSTMRegressorSpec | EnsembleRegressorSpec) -> Regressor:
    """A freshly initialised regressor from an architecture dict (``kind``: "spiking", "lstm" or "ensemble");
    ConfigError if invalid."""
    if isinstance(spec, Strict):
        spec = spec.model_dump()
    kind = spec.get("kind")
    if kind not in _SPECS:
        raise ConfigError(f"regressor spec: 'kind' must be one of {sorted(_SPECS)}, got {kind!r}")
    parsed = parse_config(dict(spec), _SPECS[kind], source="regressor spec")
    if isinstance(parsed, EnsembleRegressorSpec):
        return EnsembleRegressor([SpikingRegressor(**m.model_dump(exclude={"kind"})) for m in parsed.members])
    return _CLASSES[kind](**parsed.model_dump(exclude={"kind"}))


def regressor_spec(net: Regressor) -> dict:
    """The architecture of net as a JSON-able dict that :func:`build_regressor` rebuilds."""
    if isinstance(net, SpikingRegressor):
        return SpikingRegressorSpec(
            n_inputs=net.n_inputs,
            n_outputs=net.n_outputs,
            neuron=net.neuron,
            hidden=list(net.hidden),
            population=net.population,
            reset=net.reset,
            surrogate_slope=net.surrogate_slope,
            skip=net.skip is not None,
        ).model_dump()
    if isinstance(net, LSTMRegressor):
        return LSTMRegressorSpec(
            n_inputs=net.n_inputs,
            n_outputs=net.n_outputs,
            hidden=net.hidden,
            layers=net.layers,
            population=net.population,
            skip=net.skip is not None,
        ).model_dump()
    if isinstance(net, EnsembleRegressor):
        return EnsembleRegressorSpec(members=[regressor_spec(m) for m in net.members]).model_dump()
    raise TypeError(f"no architecture spec for {type(net).__name__}")
