"""Time per step of the Lava simulation (float and fixed point) against the torch model, same network, one run.

A random spiking regressor (default: the paper's SLSTM shape scaled down to 3 x 64, population 32)
runs the same batch of sequences in torch (batched over sequences, and one sequence at a time) and
in the Lava worker, which streams sequences back to back, one Lava step per sequence step. Lava
start-up (worker spawn, compile) is reported separately. Needs the Lava worker environment
(``make lava-venv`` or FEMSNN_LAVA_PYTHON).
Run: python benchmarks/bench_lava.py [--neuron slstm] [--hidden 64 64 64] [--batch 4] [--steps 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from femsnn.loihi.env import LavaEnvironmentError, lava_python
from femsnn.loihi.export import export_regressor
from femsnn.loihi.worker import LavaWorker
from femsnn.runtime import configure_torch
from femsnn.snn.networks import NEURONS, SpikingRegressor


def torch_seconds(net: SpikingRegressor, x: torch.Tensor, repeats: int) -> tuple[float, np.ndarray]:
    """Best wall time of net(x) over repeats, and its outputs."""
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            y = net(x)
            best = min(best, time.perf_counter() - start)
    return best, y.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neuron", choices=NEURONS, default="slstm")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64, 64])
    parser.add_argument("--population", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4, help="sequences per batch")
    parser.add_argument("--steps", type=int, default=100, help="steps per sequence")
    parser.add_argument("--backends", nargs="+", default=["sim-float", "sim-fixed"], choices=["sim-float", "sim-fixed"])
    args = parser.parse_args()
    try:
        lava_python()
    except LavaEnvironmentError as exc:
        sys.exit(f"bench_lava: {exc}")
    configure_torch()
    torch.manual_seed(0)
    net = SpikingRegressor(1, 1, neuron=args.neuron, hidden=args.hidden, population=args.population).eval()
    x = torch.randn(args.batch, args.steps, 1)
    sample_steps = args.batch * args.steps
    print(f"{args.neuron} {'x'.join(map(str, args.hidden))}, population {args.population}: {args.batch} sequences "
          f"x {args.steps} steps, torch threads {torch.get_num_threads()}")

    batched, reference = torch_seconds(net, x, repeats=3)
    single, _ = torch_seconds(net, x[:1], repeats=3)
    torch_step = batched / args.steps
    print(f"torch, batch of {args.batch}: {1e3 * torch_step:8.3f} ms per time step  "
          f"({1e3 * batched / sample_steps:.3f} ms per sequence step)")
    print(f"torch, batch of 1:  {1e3 * single / args.steps:8.3f} ms per time step")

    with tempfile.TemporaryDirectory() as scratch:
        path = export_regressor(net, Path(scratch) / "net.npz")
        for backend in args.backends:
            start = time.perf_counter()
            with LavaWorker(path, backend=backend) as worker:
                startup = time.perf_counter() - start
                result = worker.run(x.numpy())
            lava_steps = sample_steps + worker.info["output_delay"]
            lava_step = result.seconds / lava_steps
            error = np.abs(result.outputs - reference).max() / np.abs(reference).max()
            print(f"lava {backend:9s}: {1e3 * lava_step:8.3f} ms per Lava step ({worker.info['processes']} processes, "
                  f"{lava_steps} steps incl. {worker.info['output_delay']} of pipeline delay), start-up {startup:.2f} s, "
                  f"max error vs torch {error:.1e} of max |y|")
            print(f"  ratio Lava step / torch time step (batch {args.batch}): {lava_step / torch_step:8.1f}; "
                  f"Lava / torch for the whole batch: {result.seconds / batched:8.1f}")


if __name__ == "__main__":
    main()
