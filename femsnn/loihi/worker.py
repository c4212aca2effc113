"""Main-process client of the Lava worker: start it, load an exported network, stream batches, watch it.

    with LavaWorker("model.npz", backend="auto") as worker:
        print(worker.backend)                    # which backend runs: "hw", "sim-fixed" or "sim-float"
        result = worker.run(strain_paths)        # (B, T, n_inputs) physical units
        result.outputs, result.spike_counts      # (B, T, n_outputs), (B, T, n_layers)

    with LavaWorker("model.npz", backend="sim-float", state_io=True) as worker:
        result = worker.run(inputs[:, None], state=state)   # one step of B samples from given states
        result.final_state                       # {name: (B, size)}, femsnn.snn state names and units

The worker is a subprocess of the Lava interpreter (:mod:`femsnn.loihi.env`) in its own process
group, spoken to over pipes with :mod:`femsnn.loihi.lava_worker.protocol`. A watchdog turns a
crashed worker, or one silent for ``timeout`` seconds (default ``$FEMSNN_LAVA_TIMEOUT`` or 60;
runs report progress every few dozen steps), into a :class:`LavaWorkerError` and kills the whole
group (Lava's own processes included). The caller's arrays are only read; after an error, start
a new LavaWorker. ``auto`` runs on Loihi when the worker has Intel's lava-loihi, else on the
fixed-point simulator (what Loihi would compute); ``backend`` says which.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from femsnn.loihi.env import worker_command, worker_environment
from femsnn.loihi.lava_worker.protocol import ProtocolError, encode_frame, read_frame

Backend = Literal["sim-float", "sim-fixed", "hw", "auto"]
BACKENDS: tuple[str, ...] = get_args(Backend)
TIMEOUT_VAR = "FEMSNN_LAVA_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
_POLL = 0.2
_EXIT_GRACE = 2.0


class LavaWorkerError(RuntimeError):
    """The Lava worker failed, crashed or hung; it has been stopped."""


@dataclass(frozen=True)
class OffloadResult:
    """Outputs (B, T, n_outputs) in physical units, spike counts per step and layer (B, T, n_layers),
    the backend that ran, the worker's wall time for the batch and, for a worker with state_io, the state
    after each sequence's last step ({name: (B, size)} in the network's units)."""

    outputs: np.ndarray
    spike_counts: np.ndarray
    backend: str
    seconds: float
    final_state: dict[str, np.ndarray] | None = None


def default_timeout() -> float:
    """Watchdog time from FEMSNN_LAVA_TIMEOUT (seconds), else DEFAULT_TIMEOUT."""
    value = os.environ.get(TIMEOUT_VAR)
    try:
        timeout = float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        raise ValueError(f"{TIMEOUT_VAR} must be a number of seconds, got {value!r}") from None
    if not timeout > 0:
        raise ValueError(f"{TIMEOUT_VAR} must be positive, got {value!r}")
    return timeout


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the worker's process group (the worker and every process Lava forked) and reap the worker."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


class LavaWorker:
    """One Lava worker process holding one compiled network; see the module docstring."""

    def __init__(
        self, network: str | os.PathLike, backend: Backend = "auto", timeout: float | None = None, *, state_io: bool = False
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        path = Path(network).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"exported network not found: {path}")
        self.timeout = default_timeout() if timeout is None else float(timeout)
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        command = worker_command()
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=worker_environment(),
            start_new_session=True,
        )
        self._finalizer = weakref.finalize(self, _kill_group, self._process)
        self.closed, self._busy = False, False
        self.failure: str | None = None  # why the worker was stopped, if it failed
        self.versions = self._expect("hello")
        self.info = self._request({"kind": "load", "path": str(path), "backend": backend, "state_io": state_io}, expect="loaded")
        self.backend: str = self.info["backend"]
        self.n_inputs: int = self.info["n_inputs"]
        self.n_outputs: int = self.info["n_outputs"]
        #: state names and sizes, in the order of the worker's state vector (empty without state_io)
        self.state_layout: dict[str, int] = {name: size for name, size in self.info["state_layout"]}

    @property
    def pid(self) -> int:
        """Process id of the worker (its process group id too)."""
        return self._process.pid

    def run(
        self,
        inputs: np.ndarray,
        progress: Callable[[int, int], None] | None = None,
        state: Mapping[str, np.ndarray] | None = None,
    ) -> OffloadResult:
        """Run input sequences (B, T, n_inputs), physical units, each from rest or (worker with state_io) from
        its row of state {name: (B, size)}; progress(done, total) in Lava steps."""
        x = np.asarray(inputs, dtype=np.float64)
        if x.ndim != 3 or x.shape[2] != self.n_inputs or min(x.shape[:2]) < 1:
            raise ValueError(f"inputs must have shape (B >= 1, T >= 1, {self.n_inputs}), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("inputs contain NaN or infinite values")
        arrays = {"inputs": x}
        if state is not None:
            arrays["initial_state"] = self._pack_state(state, x.shape[0])
        header, replies = self._request({"kind": "run"}, arrays, expect="result", progress=progress, with_arrays=True)
        final = replies.get("final_state")
        if final is not None:
            bounds = np.cumsum([0, *self.state_layout.values()])
            final = {name: final[:, lo:hi] for name, lo, hi in zip(self.state_layout, bounds[:-1], bounds[1:])}
        return OffloadResult(replies["outputs"], replies["spike_counts"], self.backend, header["seconds"], final)

    def _pack_state(self, state: Mapping[str, np.ndarray], batch: int) -> np.ndarray:
        """{name: (B, size)} -> the worker's state vectors (B, total size); ValueError for other names or shapes."""
        if not self.state_layout:
            raise ValueError("this worker was started without state_io: its sequences start from rest")
        if set(state) != set(self.state_layout):
            raise ValueError(f"state has variables {sorted(state)}, the network has {sorted(self.state_layout)}")
        parts = []
        for name, size in self.state_layout.items():
            part = np.asarray(state[name], dtype=np.float64)
            if part.shape != (batch, size):
                raise ValueError(f"state '{name}' must have shape {(batch, size)}, got {part.shape}")
            parts.append(part)
        packed = np.concatenate(parts, axis=1)
        if not np.all(np.isfinite(packed)):
            raise ValueError("state contains NaN or infinite values")
        return packed

    def close(self) -> None:
        """Stop the Lava runtime and the worker (killing it if it does not answer within the timeout, or if a
        request was interrupted, e.g. by Ctrl-C, so that its reply would come first)."""
        if self.closed:
            return
        if self._busy:
            self._shutdown()
            return
        try:
            self._request({"kind": "close"}, expect="closed")
            self._process.wait(timeout=self.timeout)
        except (LavaWorkerError, subprocess.TimeoutExpired):
            pass
        finally:
            self._shutdown()

    def __enter__(self) -> LavaWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _shutdown(self) -> None:
        """Kill whatever is left of the worker's process group and release the pipes."""
        self.closed = True
        self._finalizer()
        for stream in (self._process.stdin, self._process.stdout):
            stream.close()
        self._stderr.close()

    def _fail(self, what: str) -> LavaWorkerError:
        """Stop the worker and build the error to raise, with the end of its stderr."""
        self._finalizer()
        self._stderr.seek(0)
        tail = self._stderr.read()[-4000:].decode(errors="replace").strip()
        self._shutdown()
        detail = f"\n--- worker stderr (end) ---\n{tail}" if tail else ""
        self.failure = what
        return LavaWorkerError(f"Lava worker (pid {self.pid}) {what}; it has been stopped, start a new LavaWorker{detail}")

    def _request(
        self,
        header: dict[str, Any],
        arrays: dict[str, np.ndarray] | None = None,
        *,
        expect: str,
        progress: Callable[[int, int], None] | None = None,
        with_arrays: bool = False,
    ) -> Any:
        """Send a request and wait for its reply (see _expect)."""
        if self.closed:
            reason = f" after it {self.failure}" if self.failure else ""
            raise LavaWorkerError(f"this Lava worker has been stopped{reason}; start a new LavaWorker")
        self._busy = True
        try:
            for piece in encode_frame(header, arrays):
                self._process.stdin.write(piece)
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._fail(f"died before accepting the '{header['kind']}' request (exit code {self._process.poll()})") from None
        reply = self._expect(expect, progress, with_arrays)
        self._busy = False
        return reply

    def _expect(self, kind: str, progress: Callable[[int, int], None] | None = None, with_arrays: bool = False) -> Any:
        """Read frames until one of kind; progress frames restart the watchdog; error frames raise."""
        while True:
            deadline = time.monotonic() + self.timeout
            try:
                header, arrays = read_frame(lambda n: self._read_exact(n, deadline))
            except ProtocolError as exc:
                raise self._fail(f"sent a malformed reply ({exc})") from None
            if header["kind"] == "progress":
                if progress is not None:
                    progress(header["done"], header["total"])
                continue
            if header["kind"] == "error":
                raise self._fail(f"failed: {header['type']}: {header['message']}")
            if header["kind"] != kind:
                raise self._fail(f"answered '{header['kind']}' where '{kind}' was expected")
            return (header, arrays) if with_arrays else header

    def _read_exact(self, n: int, deadline: float) -> bytes:
        """n bytes from the worker, or LavaWorkerError if it dies, closes the pipe or stays silent past deadline."""
        fd = self._process.stdout.fileno()
        chunks, remaining = [], n
        while remaining:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise self._fail(f"did not answer within the watchdog time of {self.timeout:g} s (hung)")
            ready, _, _ = select.select([fd], [], [], min(wait, _POLL))
            if not ready:
                if self._process.poll() is not None:
                    raise self._fail(f"crashed (exit code {self._process.returncode})")
                continue
            chunk = os.read(fd, remaining)
            if not chunk:
                try:  # let a dying worker finish writing its traceback
                    self._process.wait(timeout=_EXIT_GRACE)
                except subprocess.TimeoutExpired:
                    pass
                raise self._fail(f"closed its output (exit code {self._process.poll()})")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
