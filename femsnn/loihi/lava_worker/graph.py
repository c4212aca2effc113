"""The Lava process graph of an exported network: built and compiled once, then fed batch after batch.

Graph: StreamInput -> Dense -> layer0 -> Dense -> layer1 ... -> (last layer's membrane) Dense ->
integrators -> Dense -> integrators; rlif/slstm layers also have a recurrent Dense from ``r_out``
back into their own ``a_in``. Every Dense adds one step of delay, so a process ``d`` Dense hops
from the input sees sequence step t at Lava step origin + d + t. One Extractor receives the last
decoder stage's membranes and every layer's spike count (each in its slot of the readout vector);
the worker realigns them by each source's delay. A skip connection is a Dense from the input to
n_outputs integrators with β = 0 (they hold W x + b for one step, no memory), read out in their own
slot one step after the input and added to the vote. A batch of B sequences of T steps runs B·T + D steps (D: the output's
delay), with zero inputs at the end to drain the pipeline.

With ``state_io``, a second injector streams initial states (one vector in the order of
:func:`~.network.state_layout`, each process reading its slice one step before its sequence starts) and
every process also writes its state into the readout, so a batch can start from given states and
return its final ones: with T = 1 this is one network step of B independent samples (e.g. the
quadrature points of a finite-element mesh within one Newton iteration).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
from lava.utils.weightutils import SignMode

from .network import Network, Skip, state_layout
from .processes.neurons import LeakyIntegrators, LeakyNeurons, SLSTMNeurons, StreamInput
from .quantise import FixedDense, FixedSkip, from_state_units, quantise_network, to_state_units

BACKENDS = ("sim-float", "sim-fixed", "hw")
GRADED_MESSAGE_BITS = 24
#: sequence steps the host may send ahead of what it has received (below the channel buffers)
WINDOW = 32
_BUFFER = 2 * WINDOW
#: the skip connection's integrators are one Dense hop from the input
SKIP_DELAY = 1


@dataclass(frozen=True)
class BatchResult:
    """Standardised outputs (B, T, n_outputs), spike counts per step and layer (B, T, n_layers), final states."""

    outputs: np.ndarray
    spike_counts: np.ndarray
    final_state: np.ndarray | None = None  # (B, state size) after each sequence's last step (graphs with state_io)


def _dense(weight: np.ndarray | FixedDense, graded: bool, name: str) -> Dense:
    """A Lava Dense for a float matrix or a fixed-point one (mantissas, shared exponent)."""
    bits = GRADED_MESSAGE_BITS if graded else 0
    if isinstance(weight, FixedDense):
        return Dense(
            weights=weight.weights,
            weight_exp=weight.exponent,
            num_weight_bits=8,
            sign_mode=SignMode.MIXED,
            num_message_bits=bits,
            name=name,
        )
    return Dense(weights=weight, num_message_bits=bits, name=name)


class LavaNetwork:
    """An exported network as a compiled Lava graph on one backend; :meth:`run` streams batches through it."""

    def __init__(self, net: Network, backend: str, state_io: bool = False) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.net = net
        self.fixed = backend != "sim-float"
        params = quantise_network(net) if self.fixed else net  # same attribute names, integer or float values
        n_vote, n_layers = net.decoder[-1].n_neurons, len(net.layers)
        self.skip_offset = n_vote + n_layers
        self.state_size = sum(size for _, size in state_layout(net)) if state_io else 0
        self.state_base = self.skip_offset + (net.n_outputs if net.skip is not None else 0)
        readout_size = self.state_base + self.state_size
        self.input = StreamInput(shape=(net.n_inputs,), buffer_size=_BUFFER)
        self.state_input = StreamInput(shape=(self.state_size,), buffer_size=_BUFFER) if state_io else None
        self.output = Extractor(shape=(readout_size,), buffer_size=_BUFFER)
        self.layer_delays = [i + 1 for i in range(n_layers)]
        self.output_delay = n_layers + len(net.decoder)
        self.sequence_processes: list[LeakyNeurons | SLSTMNeurons | LeakyIntegrators] = []
        self.state_slices: list[tuple[int, slice]] = []  # per sequence process: its delay and its slice of the state vector
        source = self.input.out_port
        for i, layer in enumerate(params.layers):
            common = dict(
                threshold=layer.threshold,
                bias=layer.bias,
                reset=layer.reset,
                delay=self.layer_delays[i],
                readout_size=readout_size,
                readout_offset=n_vote + i,
                name=f"layer{i}",
                **self._state_slot(self.layer_delays[i], (2 if layer.kind == "slstm" else 1) * net.layers[i].n_neurons),
            )
            neurons = SLSTMNeurons(**common) if layer.kind == "slstm" else LeakyNeurons(beta=layer.beta, **common)
            synapse = _dense(layer.input_weight, graded=i == 0, name=f"layer{i}.input")
            source.connect(synapse.s_in)
            synapse.a_out.connect(neurons.a_in)
            if layer.recurrent_weight is not None:
                feedback = _dense(layer.recurrent_weight, graded=layer.kind == "slstm", name=f"layer{i}.recurrent")
                neurons.r_out.connect(feedback.s_in)
                feedback.a_out.connect(neurons.a_in)
            neurons.readout.connect(self.output.in_port)
            self.sequence_processes.append(neurons)
            source = neurons.s_out
        source = neurons.v_out
        for j, stage in enumerate(params.decoder):
            last = j == len(net.decoder) - 1
            integrators = LeakyIntegrators(
                beta=stage.beta,
                bias=stage.bias,
                delay=n_layers + 1 + j,
                readout_size=readout_size,
                readout_offset=0 if last else None,
                name=f"decoder{j}",
                **self._state_slot(n_layers + 1 + j, net.decoder[j].n_neurons),
            )
            synapse = _dense(stage.weight, graded=True, name=f"decoder{j}.input")
            source.connect(synapse.s_in)
            synapse.a_out.connect(integrators.a_in)
            if last or state_io:
                integrators.readout.connect(self.output.in_port)
            self.sequence_processes.append(integrators)
            source = integrators.v_out
        if self.state_input is not None:
            for proc in self.sequence_processes:
                self.state_input.out_port.connect(proc.state_in)
        if params.skip is not None:
            self.sequence_processes.append(self._skip(params.skip, readout_size))
        config = Loihi2HwCfg if backend == "hw" else Loihi2SimCfg
        untagged = {Extractor: PyLoihiExtractorModel}
        self.input.create_runtime(run_cfg=config(select_tag="fixed_pt" if self.fixed else "floating_pt", exception_proc_model_map=untagged))
        self.steps_run, self.period = 0, 0
        self._start()

    def _skip(self, skip: Skip | FixedSkip, readout_size: int) -> LeakyIntegrators:
        """The skip connection: input -> Dense -> memoryless integrators (β = 0) -> readout slot (no state slot)."""
        integrators = LeakyIntegrators(
            beta=np.zeros(self.net.n_outputs, dtype=np.int64 if self.fixed else np.float64),
            bias=skip.bias,
            delay=SKIP_DELAY,
            readout_size=readout_size,
            readout_offset=self.skip_offset,
            name="skip",
        )
        synapse = _dense(skip.weight, graded=True, name="skip.input")
        self.input.out_port.connect(synapse.s_in)
        synapse.a_out.connect(integrators.a_in)
        integrators.readout.connect(self.output.in_port)
        return integrators

    def _state_slot(self, delay: int, width: int) -> dict:
        """Process arguments of the next slice of the state vector (none without state_io); records the slice."""
        if self.state_input is None:
            return {}
        start = self.state_slices[-1][1].stop if self.state_slices else 0
        self.state_slices.append((delay, slice(start, start + width)))
        return {"state_size": self.state_size, "state_offset": start, "readout_state_offset": self.state_base + start}

    def _start(self) -> None:
        """Run one idle step: Lava sets Vars (period, origin) only on a runtime that has started."""
        with self._process_errors():
            self.input.run(condition=RunSteps(num_steps=1, blocking=False))
            self._send(np.zeros(self.net.n_inputs), np.zeros(self.state_size))
            self.output.receive()
            self.input.wait()
        self.steps_run = 1

    def _send(self, inputs: np.ndarray, state: np.ndarray) -> None:
        """Feed one Lava step: the input vector and (graphs with state_io) the state vector."""
        self.input.send(inputs)
        if self.state_input is not None:
            self.state_input.send(state)

    @contextmanager
    def _process_errors(self) -> Iterator[None]:
        """Add the ProcessModels' tracebacks to Lava's RuntimeError (Lava only logs them at INFO level)."""
        try:
            yield
        except RuntimeError as exc:
            actors = self.input.runtime._messaging_infrastructure.actors
            details = "\n".join(actor.exception[1] for actor in actors if actor.exception)
            raise RuntimeError(f"{exc}\n{details}" if details else str(exc)) from exc

    @property
    def n_processes(self) -> int:
        """Lava processes in the graph (each a separate OS process in simulation)."""
        return len(self.input.runtime._executable.process_list)

    def _align(self, period: int) -> None:
        """Tell every sequence process where the next batch starts and how long its sequences are."""
        origin = np.array([self.steps_run + 1])
        for proc in self.sequence_processes:
            proc.origin.set(origin)
            if period != self.period:
                proc.period.set(np.array([period]))
        self.period = period

    def run(
        self, x_std: np.ndarray, initial_state: np.ndarray | None = None, progress: Callable[[int, int], None] | None = None
    ) -> BatchResult:
        """Stream standardised sequences (B, T, n_inputs) through the graph, each from rest or from its row of
        initial_state (B, state size; graphs with state_io); progress(done, total) in Lava steps."""
        batch, steps, n_in = x_std.shape
        if initial_state is not None and (self.state_input is None or initial_state.shape != (batch, self.state_size)):
            raise ValueError(
                f"initial states need a graph built with state_io and shape {(batch, self.state_size)}, got "
                f"{'a graph without state_io' if self.state_input is None else initial_state.shape}"
            )
        payload = to_state_units(x_std).astype(np.float64) if self.fixed else np.asarray(x_std, dtype=np.float64)
        stream = np.zeros((batch * steps + self.output_delay, n_in))
        stream[: batch * steps] = payload.reshape(batch * steps, n_in)
        total = stream.shape[0]
        states = self._state_stream(initial_state, batch, steps, total)
        received = np.empty((total, self.output.in_port.shape[0]))
        with self._process_errors():
            self._align(steps)
            self.input.run(condition=RunSteps(num_steps=total, blocking=False))
            sent = 0
            for i in range(total):
                while sent < min(total, i + WINDOW):
                    self._send(stream[sent], states[sent])
                    sent += 1
                received[i] = self.output.receive()
                if progress is not None and (i + 1) % WINDOW == 0:
                    progress(i + 1, total)
            self.input.wait()
        self.steps_run += total
        return self._realign(received, batch, steps)

    def _state_stream(self, initial_state: np.ndarray | None, batch: int, steps: int, total: int) -> np.ndarray:
        """State vectors per Lava step: each process's slice of sequence b one step before it starts (zeros: rest)."""
        stream = np.zeros((total, self.state_size))
        if initial_state is not None:
            values = to_state_units(initial_state).astype(np.float64) if self.fixed else np.asarray(initial_state, dtype=np.float64)
            starts = np.arange(batch) * steps
            for delay, part in self.state_slices:
                stream[delay - 1 + starts, part] = values[:, part]
        return stream

    def _realign(self, received: np.ndarray, batch: int, steps: int) -> BatchResult:
        """Undo each source's pipeline delay: rows of Lava steps -> (B, T, ...) sequences."""
        n_vote = self.net.decoder[-1].n_neurons
        span = batch * steps
        last_stage = received[self.output_delay : self.output_delay + span, :n_vote]
        if self.fixed:
            last_stage = from_state_units(last_stage)
        outputs = self.net.vote(last_stage)
        if self.net.skip is not None:
            skip = received[SKIP_DELAY : SKIP_DELAY + span, self.skip_offset : self.skip_offset + self.net.n_outputs]
            outputs = outputs + (from_state_units(skip) if self.fixed else skip)
        outputs = outputs.reshape(batch, steps, self.net.n_outputs)
        counts = np.stack([received[d : d + span, n_vote + i] for i, d in enumerate(self.layer_delays)], axis=-1)
        counts = counts.reshape(batch, steps, len(self.layer_delays))
        final_state = None
        if self.state_input is not None:
            final_state = np.empty((batch, self.state_size))
            ends = np.arange(1, batch + 1) * steps - 1
            for delay, part in self.state_slices:
                final_state[:, part] = received[delay + ends, self.state_base + part.start : self.state_base + part.stop]
            if self.fixed:
                final_state = from_state_units(final_state)
        return BatchResult(outputs=outputs, spike_counts=np.rint(counts).astype(np.int64), final_state=final_state)

    def stop(self) -> None:
        """Release the Lava runtime and its processes."""
        self.input.stop()
