"""Throughput of one batched SLSTM-regressor step against torch.nn.LSTM of equal sizes doing one step, one run.

The spiking material steps every quadrature point once per Newton iteration, so what matters is one
``SpikingRegressor.step`` on a large batch (inference mode: no autograd graph). The yardstick is
``torch.nn.LSTM`` with the same input size, hidden size and number of layers stepping the same batch
once (sequence length 1, state passed in); ratio = SLSTM-regressor time / LSTM time (the regressor
also runs its decoder, population vote and state checks). Prints one row per dtype and batch size.
"""

from __future__ import annotations

import argparse
import time

import torch

from femsnn.runtime import configure_torch
from femsnn.snn import SpikingRegressor


def best_times(runs: list, repeats: int) -> list[float]:
    """Shortest wall time (seconds) of each call over repeats rounds, the calls interleaved within a round
    so that load from other processes hits them alike; one warm-up call each."""
    for run in runs:
        run()
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=float, nargs="+", default=[1e3, 1e4, 1e5], help="points per step")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64, 64], help="SLSTM layer sizes (all equal)")
    parser.add_argument("--population", type=int, default=32, help="population neurons per output")
    parser.add_argument("--inputs", type=int, default=4, help="inputs per point (4: plane-strain Mandel strain)")
    parser.add_argument("--outputs", type=int, default=4, help="outputs per point (4: plane-strain stress)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: FEMSNN_TORCH_THREADS or torch's)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per case (best kept)")
    args = parser.parse_args()
    if len(set(args.hidden)) != 1:
        parser.error("--hidden sizes must be equal (torch.nn.LSTM stacks layers of one size)")
    configure_torch(args.threads)
    torch.manual_seed(0)
    n_hidden, n_layers = args.hidden[0], len(args.hidden)
    print(f"SLSTM regressor {args.inputs} -> {args.hidden} -> {args.population}x{args.outputs}; torch threads {torch.get_num_threads()}")
    print(f"{'dtype':>8} {'points':>8} {'slstm ms':>9} {'Mpoints/s':>9} {'lstm ms':>8} {'Mpoints/s':>9} {'ratio':>6}")
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        net = SpikingRegressor(args.inputs, args.outputs, "slstm", args.hidden, args.population).to(dtype)
        lstm = torch.nn.LSTM(args.inputs, n_hidden, num_layers=n_layers, batch_first=True).to(dtype)
        for size in args.batches:
            batch = int(size)
            x = torch.randn(batch, args.inputs, dtype=dtype)
            with torch.inference_mode():
                state = net.step(x, net.init_state(batch))[1]  # a state away from rest
                h0 = torch.randn(n_layers, batch, n_hidden, dtype=dtype).tanh()
                c0 = torch.randn(n_layers, batch, n_hidden, dtype=dtype)
                slstm_s, lstm_s = best_times([lambda: net.step(x, state), lambda: lstm(x.unsqueeze(1), (h0, c0))], args.repeats)
            print(
                f"{dtype_name:>8} {batch:>8} {1e3 * slstm_s:>9.2f} {batch / slstm_s / 1e6:>9.2f}"
                f" {1e3 * lstm_s:>8.2f} {batch / lstm_s / 1e6:>9.2f} {slstm_s / lstm_s:>6.2f}"
            )


if __name__ == "__main__":
    main()
