"""The Lava worker end to end: Lava's simulation against torch and numpy, backends, watchdog."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import pytest

from femsnn.loihi.env import lava_python, worker_environment
from femsnn.loihi.export import export_regressor, network_from_regressor
from femsnn.loihi.lava_worker.reference import simulate_fixed
from femsnn.loihi.worker import LavaWorker, LavaWorkerError

from .conftest import normalisation, random_regressor, torch_run

pytestmark = [pytest.mark.lava, pytest.mark.usefixtures("lava_env")]


@pytest.fixture(scope="module")
def lava_loihi_installed() -> bool:
    """Whether the worker environment has Intel's lava-loihi extension."""
    probe = "from lava.utils.loihi import is_installed; print(is_installed())"
    out = subprocess.run([str(lava_python()), "-c", probe], env=worker_environment(), capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def physical_inputs(batch: int, steps: int, seed: int) -> np.ndarray:
    norm = normalisation()
    return np.random.default_rng(seed).standard_normal((batch, steps, 2)) * norm.input_std + norm.input_mean


@pytest.mark.parametrize(("neuron", "skip"), [("lif", False), ("rlif", False), ("slstm", False), ("slstm", True)])
def test_float_simulation_equals_torch(tmp_path, neuron, skip):
    net, norm = random_regressor(neuron, skip=skip), normalisation()
    path = export_regressor(net, tmp_path / "net.npz", norm)
    with LavaWorker(path, backend="sim-float") as worker:
        assert worker.backend == "sim-float"
        with pytest.raises(ValueError, match="shape"):
            worker.run(np.zeros((2, 3, 5)))
        for batch, steps, seed in ((3, 9, 0), (2, 5, 1)):  # a second batch of other length through the same graph
            x = physical_inputs(batch, steps, seed)
            expected, counts = torch_run(net, norm, x)
            result = worker.run(x)
            assert counts.sum() > 0
            np.testing.assert_array_equal(result.spike_counts, counts)
            assert np.abs(result.outputs - expected).max() <= 1e-6 * np.abs(expected).max()
    with pytest.raises(LavaWorkerError, match="stopped"):
        worker.run(x)


@pytest.mark.parametrize(("neuron", "backend", "skip"), [("rlif", "sim-fixed", False), ("slstm", "auto", False), ("slstm", "sim-fixed", True)])
def test_fixed_point_simulation_equals_the_numpy_fixed_point_reference(tmp_path, lava_loihi_installed, neuron, backend, skip):
    if backend == "auto" and lava_loihi_installed:
        pytest.skip("lava-loihi is installed: auto would run on Loihi")
    net, norm = random_regressor(neuron, seed=3, skip=skip), normalisation()
    path = export_regressor(net, tmp_path / "net.npz", norm)
    exported = network_from_regressor(net, norm)
    x = physical_inputs(3, 8, 2)
    expected = simulate_fixed(exported, exported.standardise_inputs(x))
    with LavaWorker(path, backend=backend) as worker:
        assert worker.backend == "sim-fixed"  # auto says it fell back to the fixed-point simulator
        result = worker.run(x)
    assert result.backend == "sim-fixed"
    np.testing.assert_array_equal(result.spike_counts, expected.spike_counts)
    np.testing.assert_array_equal(result.outputs, exported.physical_outputs(expected.outputs))


def test_hw_without_lava_loihi_names_it(tmp_path, lava_loihi_installed):
    if lava_loihi_installed:
        pytest.skip("lava-loihi is installed")
    path = export_regressor(random_regressor("lif"), tmp_path / "net.npz")
    with pytest.raises(LavaWorkerError, match="lava-loihi"):
        LavaWorker(path, backend="hw")


def interrupted_run(worker: LavaWorker, x: np.ndarray, sig: signal.Signals) -> tuple[float, str]:
    """Send sig to the worker at its first progress report: seconds from then until LavaWorkerError, its message."""
    signalled = []

    def hit(done: int, total: int) -> None:
        if not signalled:
            os.kill(worker.pid, sig)
            signalled.append(time.monotonic())

    with pytest.raises(LavaWorkerError) as info:
        worker.run(x, progress=hit)
    return time.monotonic() - signalled[0], str(info.value)


@pytest.mark.slow
def test_killed_worker_is_a_clear_error_and_a_new_worker_runs(tmp_path):
    net, norm = random_regressor("slstm"), normalisation()
    path = export_regressor(net, tmp_path / "net.npz", norm)
    x = physical_inputs(20, 10, 4)
    before = x.copy()
    worker = LavaWorker(path, backend="sim-float", timeout=20)
    elapsed, message = interrupted_run(worker, x, signal.SIGKILL)
    assert elapsed < 20 and "crashed" in message
    np.testing.assert_array_equal(x, before)
    with LavaWorker(path, backend="sim-float") as fresh:
        expected, _ = torch_run(net, norm, x[:2])
        assert np.abs(fresh.run(x[:2]).outputs - expected).max() <= 1e-6 * np.abs(expected).max()


@pytest.mark.slow
def test_hung_worker_times_out(tmp_path):
    path = export_regressor(random_regressor("lif"), tmp_path / "net.npz")
    worker = LavaWorker(path, backend="sim-float")
    worker.timeout = 3  # for the run only: start-up alone can take longer on a busy machine
    elapsed, message = interrupted_run(worker, physical_inputs(20, 10, 5), signal.SIGSTOP)
    assert 3 <= elapsed < 10 and "watchdog time of 3 s" in message
    with pytest.raises(ProcessLookupError):
        os.kill(worker.pid, 0)


@pytest.mark.slow
def test_interrupted_run_closes_at_once(tmp_path):
    path = export_regressor(random_regressor("lif"), tmp_path / "net.npz")
    worker = LavaWorker(path, backend="sim-float", timeout=60)

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        worker.run(physical_inputs(20, 10, 6), progress=interrupt)
    start = time.monotonic()
    worker.close()
    assert time.monotonic() - start < 5
    with pytest.raises(ProcessLookupError):
        os.kill(worker.pid, 0)
