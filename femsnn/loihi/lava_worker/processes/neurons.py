"""femsnn's neurons as Lava Processes, each with a ``floating_pt`` and a ``fixed_pt`` ProcessModel.

Weights live in Lava ``Dense`` processes (one step of delay per hop); these processes hold the
neuron state and add the bias. Sequences stream back to back: a process whose input is ``delay``
steps behind the injector sees step k = (time_step - origin - delay) mod period of its current
sequence, starts it from rest when k = 0 and, on its last step (k = period - 1), feeds the *rest*
value back on ``r_out`` (spikes H(0 - U_thr) for rlif, h = 0 for slstm) so that the recurrent
Dense delivers the right feedback at the next sequence's first step. ``period`` and ``origin``
are Vars that the worker sets before each batch.

State input/output (processes built with a ``state_offset``): instead of rest, each sequence starts
from a given state. The ``state_in`` port receives, at the last step before a sequence's first step,
the state vector holding that sequence's initial state in this process's slice (membrane, then cell
for slstm); the process feeds it back on ``r_out`` at once and starts from it at the next step. The
process writes its state after every step into its state slot of the readout. Without a
``state_offset``, ``state_in`` stays unconnected (Lava then delivers zeros) and sequences start from rest.

Ports: ``a_in`` synaptic current; ``s_out`` spikes; ``v_out`` real membrane (graded payload);
``r_out`` recurrent feedback; ``readout`` a vector of ``readout_size`` zeros in which the process
writes, from ``readout_offset`` (None: no readout), its spike count (neuron layers) or membranes
(integrators): all readouts connect to one Extractor, whose InPort sums them (Lava 0.10 cannot
concatenate ports).
The equations are those of :mod:`lava_worker.dynamics` (imported absolutely: Lava re-imports this
file as a bare module).
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.io.injector import Injector

from lava_worker import dynamics

FLOAT, FIXED = float, np.int64


class _SequenceProcess(AbstractProcess):
    """Common parts of processes that restart at every sequence: period, origin, readout slot."""

    def __init__(
        self,
        *,
        shape: tuple[int, ...],
        delay: int,
        readout_size: int,
        readout_offset: int | None,
        state_size: int = 1,
        state_offset: int | None = None,
        readout_state_offset: int | None = None,
        **params,
    ) -> None:
        super().__init__(
            shape=shape, delay=delay, readout_size=readout_size, readout_offset=readout_offset,
            state_offset=state_offset, readout_state_offset=readout_state_offset, **params,
        )  # fmt: skip
        self.period = Var(shape=(1,), init=1)
        self.origin = Var(shape=(1,), init=1)
        self.readout = OutPort(shape=(readout_size,))
        self.state_in = InPort(shape=(state_size,))


class LeakyNeurons(_SequenceProcess):
    """LIF neurons (rlif when r_out feeds a recurrent Dense back into a_in): per-neuron β, U_thr, bias."""

    def __init__(self, *, beta: np.ndarray, threshold: np.ndarray, bias: np.ndarray, reset: str, **params) -> None:
        n = threshold.shape[0]
        super().__init__(shape=(n,), reset=reset, **params)
        self.a_in = InPort(shape=(n,))
        self.s_out, self.v_out, self.r_out = OutPort(shape=(n,)), OutPort(shape=(n,)), OutPort(shape=(n,))
        self.beta = Var(shape=(n,), init=beta)
        self.threshold = Var(shape=(n,), init=threshold)
        self.bias = Var(shape=(n,), init=bias)
        self.membrane = Var(shape=(n,), init=0)


class SLSTMNeurons(_SequenceProcess):
    """Spiking LSTM neurons: gate currents (4n: i, f, g, o) in, membrane h and cell c as state."""

    def __init__(self, *, threshold: np.ndarray, bias: np.ndarray, reset: str, **params) -> None:
        n = threshold.shape[0]
        super().__init__(shape=(n,), reset=reset, **params)
        self.a_in = InPort(shape=(4 * n,))
        self.s_out, self.v_out, self.r_out = OutPort(shape=(n,)), OutPort(shape=(n,)), OutPort(shape=(n,))
        self.threshold = Var(shape=(n,), init=threshold)
        self.bias = Var(shape=(4 * n,), init=bias)
        self.membrane = Var(shape=(n,), init=0)
        self.cell = Var(shape=(n,), init=0)


class LeakyIntegrators(_SequenceProcess):
    """Decoder stage: non-resetting leaky integrators (per-neuron β, bias) that emit their membrane."""

    def __init__(self, *, beta: np.ndarray, bias: np.ndarray, **params) -> None:
        n = beta.shape[0]
        super().__init__(shape=(n,), **params)
        self.a_in = InPort(shape=(n,))
        self.v_out = OutPort(shape=(n,))
        self.beta = Var(shape=(n,), init=beta)
        self.bias = Var(shape=(n,), init=bias)
        self.membrane = Var(shape=(n,), init=0)


class StreamInput(Injector):
    """Lava's Injector, whose fixed-point model emits integer (state-unit) payloads for Dense."""


class _SequenceModel(PyLoihiProcessModel):
    """Step of the current sequence from time_step, origin, period and the process's delay."""

    period: np.ndarray = LavaPyType(np.ndarray, np.int64)
    origin: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params=proc_params)
        n = self.proc_params["shape"][0]
        self.start_state = (np.zeros(n), np.zeros(n))  # (membrane, cell) the next sequence starts from

    def sequence_step(self) -> int:
        """0 at the first step of each sequence, period - 1 at its last."""
        return int((self.time_step - self.origin[0] - self.proc_params["delay"]) % self.period[0])

    def send_readout(self, values: np.ndarray, state: tuple[np.ndarray, ...]) -> None:
        """Send values and the state in this process's slots of an otherwise zero readout vector (where it has slots)."""
        offset, state_offset = self.proc_params["readout_offset"], self.proc_params["readout_state_offset"]
        if offset is None and state_offset is None:
            return
        vector = np.zeros(self.proc_params["readout_size"], dtype=values.dtype)
        if offset is not None:
            vector[offset : offset + values.shape[0]] = values
        if state_offset is not None:
            vector[state_offset : state_offset + sum(v.shape[0] for v in state)] = np.concatenate(state)
        self.readout.send(vector)

    def receive_start_state(self, parts: int) -> tuple[np.ndarray, ...]:
        """Receive the state vector; this process's slice split into parts (membrane[, cell]), zeros without state input."""
        vector = self.state_in.recv()
        offset, n = self.proc_params["state_offset"], self.proc_params["shape"][0]
        if offset is None:
            return tuple(np.zeros(n, dtype=vector.dtype) for _ in range(parts))
        return tuple(vector[offset + p * n : offset + (p + 1) * n].copy() for p in range(parts))


class _LeakyModel(_SequenceModel):
    """(R)LIF step shared by the float and fixed-point models (which set the types and ``step``)."""

    def run_spk(self) -> None:
        current = self.a_in.recv() + self.bias
        start = self.receive_start_state(1)
        k = self.sequence_step()
        if k == 0:
            self.membrane[:] = self.start_state[0]
        membrane, spikes = self.step(self.membrane, current, self.beta, self.threshold, self.proc_params["reset"])
        self.membrane[:] = membrane
        self.s_out.send(spikes)
        self.v_out.send(membrane)
        self.send_readout(np.array([spikes.sum()]), (membrane,))
        if k == self.period[0] - 1:
            self.start_state = start
            self.r_out.send((start[0] > self.threshold).astype(spikes.dtype))
        else:
            self.r_out.send(spikes)


@implements(proc=LeakyNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLeakyNeuronsFloat(_LeakyModel):
    """(R)LIF neurons in float64."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    r_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    readout: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    state_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    beta: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    threshold: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    bias: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    membrane: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    step = staticmethod(dynamics.lif_step)


@implements(proc=LeakyNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyLeakyNeuronsFixed(_LeakyModel):
    """(R)LIF neurons in Loihi 2 fixed point (24-bit state units, 12-bit decay)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FIXED, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FIXED, precision=1)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FIXED, precision=24)
    r_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FIXED, precision=1)
    readout: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FIXED)
    state_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FIXED, precision=24)
    beta: np.ndarray = LavaPyType(np.ndarray, FIXED, precision=12)
    threshold: np.ndarray = LavaPyType(np.ndarray, FIXED, precision=24)
    bias: np.ndarray = LavaPyType(np.ndarray, FIXED, precision=24)
    membrane: np.ndarray = LavaPyType(np.ndarray, FIXED, precision=24)
    step = staticmethod(dynamics.lif_step_fixed)


class _SLSTMModel(_SequenceModel):
    """SLSTM step shared by the float and fixed-point models (which set the types and ``step``)."""

    def run_spk(self) -> None:
        current = self.a_in.recv() + self.bias
        start = self.receive_start_state(2)
        k = self.sequence_step()
        if k == 0:
            self.membrane[:], self.cell[:] = self.start_state
        membrane, cell, spikes = self.step(self.membrane, self.cell, current, self.threshold, self.proc_params["reset"])
        self.membrane[:] = membrane
        self.cell[:] = cell
        self.s_out.send(spikes)
        self.v_out.send(membrane)
        self.send_readout(np.array([spikes.sum()]), (membrane, cell))
        if k == self.period[0] - 1:
            self.start_state = start
            self.r_out.send(start[0])
        else:
            self.r_out.send(membrane)


@implements(proc=SLSTMNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySLSTMNeuronsFloat(_SLSTMModel):
    """Spiking LSTM neurons in float64."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    r_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    readout: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    state_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    threshold: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    bias: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    membrane: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    cell: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    step = staticmethod(dynamics.slstm_step)


@implements(proc=SLSTMNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySLSTMNeuronsFixed(_SLSTMModel):
    """Spiking LSTM neurons in Loihi 2 fixed point (24-bit states, piecewise-linear table gates)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FIXED, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FIXED, precision=1)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FIXED, precision=24)
    r_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FIXED, precision=24)
    readout: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FIXED)
    state_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FIXED, precision=24)
    threshold: np.ndarray = LavaPyType(np.ndarray, FIXED, precision=24)
    bias: np.ndarray = LavaPyType(np.ndarray, FIXED, precision=24)
    membrane: np.ndarray = LavaPyType(np.ndarray, FIXED, precision=24)
    cell: np.ndarray = LavaPyType(np.ndarray, FIXED, precision=24)
    step = staticmethod(dynamics.slstm_step_fixed)


class _IntegratorModel(_SequenceModel):
    """Integrator step shared by the float and fixed-point models (which set the types and ``step``)."""

    def run_spk(self) -> None:
        current = self.a_in.recv() + self.bias
        start = self.receive_start_state(1)
        k = self.sequence_step()
        if k == 0:
            self.membrane[:] = self.start_state[0]
        self.membrane[:] = self.step(self.membrane, current, self.beta)
        self.v_out.send(self.membrane)
        self.send_readout(self.membrane, (self.membrane,))
        if k == self.period[0] - 1:
            self.start_state = start


@implements(proc=LeakyIntegrators, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLeakyIntegratorsFloat(_IntegratorModel):
    """Decoder integrators in float64."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    readout: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    state_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    beta: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    bias: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    membrane: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    step = staticmethod(dynamics.integrator_step)


@implements(proc=LeakyIntegrators, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyLeakyIntegratorsFixed(_IntegratorModel):
    """Decoder integrators in Loihi 2 fixed point."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FIXED, precision=24)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FIXED, precision=24)
    readout: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FIXED, precision=24)
    state_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FIXED, precision=24)
    beta: np.ndarray = LavaPyType(np.ndarray, FIXED, precision=12)
    bias: np.ndarray = LavaPyType(np.ndarray, FIXED, precision=24)
    membrane: np.ndarray = LavaPyType(np.ndarray, FIXED, precision=24)
    step = staticmethod(dynamics.integrator_step_fixed)


class _StreamInputModel(PyLoihiProcessModel):
    """Lava's Injector model (PyLoihiInjectorModel, which cannot be subclassed once decorated)."""

    in_port: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params=proc_params)
        channel_config = self.proc_params["channel_config"]
        self._zeros = np.zeros(self.proc_params["shape"])
        self._receive_when_empty = channel_config.get_receive_empty_function()
        self._receive_when_not_empty = channel_config.get_receive_not_empty_function()

    def run_spk(self) -> None:
        self._zeros.fill(0)
        waiting = self.in_port.csp_ports[-1]._queue.qsize()
        if waiting == 0:
            data = self._receive_when_empty(self.in_port, self._zeros)
        else:
            data = self._receive_when_not_empty(self.in_port, self._zeros, waiting)
        self.out_port.send(data)


@implements(proc=StreamInput, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyStreamInputFloat(_StreamInputModel):
    """Injected float inputs, passed on as they are."""

    out_port: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)


@implements(proc=StreamInput, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyStreamInputFixed(_StreamInputModel):
    """Injected integer-valued inputs (state units), passed on as int64 graded payloads."""

    out_port: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FIXED, precision=24)
