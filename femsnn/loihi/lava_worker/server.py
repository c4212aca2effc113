"""The worker's request loop: frames in on stdin, frames out on the original stdout.

Requests (header ``kind``) and replies:

* on start the worker sends ``hello`` (Python, numpy and Lava versions, whether lava-loihi is installed);
* ``load`` {path, backend, state_io}: build and compile the Lava graph (with state input/output if
  asked) -> ``loaded`` {backend that will run, processes, output_delay, build_seconds, state_layout
  [[name, size], ...] (empty without state_io)};
* ``run`` {inputs (B, T, n_inputs) physical units, optional initial_state (B, state size)} ->
  ``progress`` {done, total} every few steps, then ``result`` {seconds, steps} with arrays outputs
  (B, T, n_outputs, physical units), spike_counts (B, T, n_layers) and, with state_io, final_state
  (B, state size);
* ``close`` -> ``closed``, then the worker exits.

Any failure is answered with ``error`` {type, message, traceback} (the main process then ends a
worker whose run failed). Whatever Lava prints goes to stderr, never into the protocol.
"""

from __future__ import annotations

import os
import platform
import sys
import time
import traceback
from importlib import metadata
from typing import Any, BinaryIO

import numpy as np

from .network import load_network, state_layout
from .protocol import read_frame, stream_reader, write_frame

BACKEND_CHOICES = ("sim-float", "sim-fixed", "hw", "auto")


def lava_loihi_installed() -> bool:
    """Whether Intel's lava-loihi extension (needed for Loihi2HwCfg) can be imported."""
    from lava.utils.loihi import is_installed

    return is_installed()


def resolve_backend(backend: str) -> str:
    """The backend that will run: ``auto`` is hw with lava-loihi, else the fixed-point simulator."""
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"backend must be one of {BACKEND_CHOICES}, got {backend!r}")
    installed = lava_loihi_installed()
    if backend == "hw" and not installed:
        raise RuntimeError(
            "backend 'hw' needs Intel's lava-loihi extension (Loihi2HwCfg), which is not installed in the "
            f"Lava worker environment ({sys.executable}); use backend 'sim-fixed' or 'sim-float', or 'auto' "
            "to simulate when no Loihi is available"
        )
    if backend == "auto":
        return "hw" if installed else "sim-fixed"
    return backend


class Server:
    """Holds at most one compiled graph and answers requests until ``close`` or end of input."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.graph = None
        self.network = None

    def send(self, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> None:
        write_frame(self.out, header, arrays)

    def hello(self) -> None:
        self.send(
            {
                "kind": "hello",
                "pid": os.getpid(),
                "python": platform.python_version(),
                "numpy": np.__version__,
                "lava": metadata.version("lava-nc"),
                "lava_loihi": lava_loihi_installed(),
            }
        )

    def discard_graph(self) -> None:
        """Stop and forget the current Lava graph, if any."""
        graph, self.graph = self.graph, None
        if graph is not None:
            graph.stop()

    def load(self, header: dict[str, Any]) -> None:
        from .graph import LavaNetwork

        backend = resolve_backend(header["backend"])
        network = load_network(header["path"])
        self.discard_graph()
        start = time.perf_counter()
        state_io = bool(header.get("state_io", False))
        self.graph, self.network = LavaNetwork(network, backend, state_io), network
        self.send(
            {
                "kind": "loaded",
                "backend": backend,
                "processes": self.graph.n_processes,
                "output_delay": self.graph.output_delay,
                "build_seconds": time.perf_counter() - start,
                "n_inputs": network.n_inputs,
                "n_outputs": network.n_outputs,
                "n_layers": len(network.layers),
                "state_layout": state_layout(network) if state_io else [],
            }
        )

    def run(self, arrays: dict[str, np.ndarray]) -> None:
        if self.graph is None:
            raise RuntimeError("no network loaded: send 'load' first")
        inputs = arrays["inputs"]
        if inputs.ndim != 3 or inputs.shape[2] != self.network.n_inputs or min(inputs.shape[:2]) < 1:
            raise ValueError(f"inputs must have shape (B >= 1, T >= 1, {self.network.n_inputs}), got {inputs.shape}")
        start = time.perf_counter()
        result = self.graph.run(
            self.network.standardise_inputs(inputs),
            arrays.get("initial_state"),
            progress=lambda done, total: self.send({"kind": "progress", "done": done, "total": total}),
        )
        replies = {"outputs": self.network.physical_outputs(result.outputs), "spike_counts": result.spike_counts}
        if result.final_state is not None:
            replies["final_state"] = result.final_state
        self.send({"kind": "result", "seconds": time.perf_counter() - start, "steps": int(inputs.shape[0] * inputs.shape[1])}, replies)

    def serve(self, stream: BinaryIO) -> None:
        """Answer requests from stream until ``close`` or the main process goes away."""
        read_exact = stream_reader(stream)
        self.hello()
        while True:
            try:
                header, arrays = read_frame(read_exact)
            except EOFError:
                break
            kind = header.get("kind")
            if kind == "close":
                self.discard_graph()
                self.send({"kind": "closed"})
                break
            try:
                if kind == "load":
                    self.load(header)
                elif kind == "run":
                    self.run(arrays)
                else:
                    raise ValueError(f"unknown request kind {kind!r}")
            except Exception as exc:
                self.send({"kind": "error", "type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()})


def main() -> None:
    """Entry point: keep the protocol on a private copy of stdout and send fd 1 (prints) to stderr."""
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    with os.fdopen(protocol_fd, "wb") as out:
        Server(out).serve(sys.stdin.buffer)
