"""Throughput of one batched SLSTM-regressor step against torch.nn.LSTM and against plain GEMMs, one run.

The spiking material steps every quadrature point once per Newton iteration, so what matters is one
``SpikingRegressor.step`` on a large batch. Timed in one run, interleaved, best of --repeats:

- ``inference``: the step under ``torch.inference_mode()`` (the inference path of femsnn.snn.neurons);
- ``reference``: the differentiable step under ``torch.no_grad()`` (what a step cost before that path);
- ``lstm``: ``torch.nn.LSTM`` with the same input size, hidden size and layers, one step of the same batch
  (sequence length 1, state passed in; no decoder);
- ``lstm reg``: the paper's LSTM baseline regressor (femsnn.snn.LSTMRegressor: that LSTM plus its dense head and
  population vote, the work the spiking decoder does), one ``step`` of the same batch;
  ``reference`` and ``lstm reg`` run up to REFERENCE_MAX points only; beyond, the other cases are timed one after
  the other instead of interleaved, each freeing its arrays first (all held at once exceed 24 GiB in float64);
- ``gemm``: ``torch.mm`` of exactly the inference step's GEMM shapes into preallocated outputs.

Columns: times per step (ms, CPU time: the machine is shared, CPU time discounts waiting for a core),
``vs lstm`` = LSTM time / inference time (throughput ratio, target >= 1), ``vs reg`` = LSTM regressor time /
inference time (like for like: both with their heads), ``gemm share`` = GEMM time /
inference time (the step's FLOP rate over the machine's GEMM FLOP rate for those shapes, target >= 0.5),
``speedup`` = reference / inference, and the largest difference between the two paths' outputs.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch

from femsnn.runtime import configure_torch
from femsnn.snn import LSTMRegressor, SpikingRegressor

REFERENCE_MAX = 100_000


def best_times(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float]]:
    """Shortest (wall, CPU) seconds of each run over repeats interleaved rounds (one warm-up call each)."""
    for run in runs.values():
        run()
    best = {name: (float("inf"), float("inf")) for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def gemm_shapes(net: SpikingRegressor, batch: int) -> list[tuple[int, int, int]]:
    """(M, K, N) of every GEMM of one inference step: one per spiking layer, two in the decoder."""
    shapes = [(batch, *layer.stacked_weight().t().shape) for layer in net.spiking_layers]
    decoder = net.decoder
    return shapes + [(batch, *decoder.linear1.weight.t().shape), (batch, *decoder.linear2.weight.t().shape)]


def gemm_run(shapes: list[tuple[int, int, int]], dtype: torch.dtype) -> Callable[[], None]:
    """torch.mm of each shape into a preallocated output (random operands; the shapes share storage, so that
    batch 1e6 in float64 fits in memory)."""
    a_store = torch.randn(max(m * k for m, k, _ in shapes), dtype=dtype)
    b_store = torch.randn(max(k * n for _, k, n in shapes), dtype=dtype)
    out_store = torch.empty(max(m * n for m, _, n in shapes), dtype=dtype)
    operands = [(a_store[: m * k].view(m, k), b_store[: k * n].view(k, n), out_store[: m * n].view(m, n)) for m, k, n in shapes]

    def run() -> None:
        for a, b, out in operands:
            torch.mm(a, b, out=out)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=float, nargs="+", default=[1e3, 1e4, 1e5, 1e6], help="points per step")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64, 64], help="SLSTM layer sizes (all equal)")
    parser.add_argument("--population", type=int, default=32, help="population neurons per output")
    parser.add_argument("--inputs", type=int, default=8, help="inputs per point (8: plane-strain Mandel strain and increment)")
    parser.add_argument("--outputs", type=int, default=4, help="outputs per point (4: plane-strain stress)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest on a shared machine)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per case (best kept)")
    args = parser.parse_args()
    if len(set(args.hidden)) != 1:
        parser.error("--hidden sizes must be equal (torch.nn.LSTM stacks layers of one size)")
    configure_torch(args.threads)
    torch.manual_seed(0)
    n_hidden, n_layers = args.hidden[0], len(args.hidden)
    print(f"SLSTM regressor {args.inputs} -> {args.hidden} -> {args.population}x{args.outputs}; torch threads "
          f"{torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'dtype':>8} {'points':>7} {'inference':>9} {'reference':>9} {'lstm':>7} {'gemm':>7} {'Mpt/s':>6}"
          f" {'vs lstm':>7} {'vs reg':>6} {'gemm share':>10} {'speedup':>7} {'max diff':>8}   (times: CPU ms; wall ratios)")
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        net = SpikingRegressor(args.inputs, args.outputs, "slstm", args.hidden, args.population).to(dtype)
        lstm = torch.nn.LSTM(args.inputs, n_hidden, num_layers=n_layers, batch_first=True).to(dtype)
        baseline = LSTMRegressor(args.inputs, args.outputs, n_hidden, n_layers, args.population).to(dtype)
        for size in args.batches:
            batch = int(size)
            x = torch.randn(batch, args.inputs, dtype=dtype)

            def spiking_step(mode: Callable[[], object]) -> Callable[[], None]:
                """One SLSTM step from a state away from rest, under mode (inference_mode: inference path)."""
                with torch.inference_mode():
                    state = net.step(x, net.step(x, net.init_state(batch))[1])[1]

                def run() -> None:
                    with mode():
                        net.step(x, state)

                return run

            def lstm_step() -> Callable[[], None]:
                h0 = torch.randn(n_layers, batch, n_hidden, dtype=dtype).tanh()
                c0 = torch.randn(n_layers, batch, n_hidden, dtype=dtype)

                def run() -> None:
                    with torch.inference_mode():
                        lstm(x.unsqueeze(1), (h0, c0))

                return run

            def lstm_regressor_step() -> Callable[[], None]:
                state = {k: torch.randn(batch, *shape, dtype=dtype) for k, shape in baseline.state_spec.items()}

                def run() -> None:
                    with torch.inference_mode():
                        baseline.step(x, state)

                return run

            setups = {"inference": lambda: spiking_step(torch.inference_mode), "lstm": lstm_step, "gemm": lambda: gemm_run(gemm_shapes(net, batch), dtype)}
            difference = float("nan")
            if batch <= REFERENCE_MAX:
                setups |= {"reference": lambda: spiking_step(torch.no_grad), "lstm reg": lstm_regressor_step}
                with torch.inference_mode():
                    state = net.step(x, net.init_state(batch))[1]
                    reference = net.step(x, state)[0]
                with torch.no_grad():
                    difference = (net.step(x, state)[0] - reference).abs().max().item()
                best = best_times({name: setup() for name, setup in setups.items()}, args.repeats)
            else:  # one case at a time, each freeing its arrays before the next allocates
                best = {name: best_times({name: setup()}, args.repeats)[name] for name, setup in setups.items()}
            cpu = {name: t[1] for name, t in best.items()}
            cpu |= {name: float("nan") for name in ("reference", "lstm reg") if name not in cpu}
            wall = {name: t[0] for name, t in best.items()}
            print(
                f"{dtype_name:>8} {batch:>7} {1e3 * cpu['inference']:>9.2f} {1e3 * cpu['reference']:>9.2f}"
                f" {1e3 * cpu['lstm']:>7.2f} {1e3 * cpu['gemm']:>7.2f} {batch / cpu['inference'] / 1e6:>6.2f}"
                f" {cpu['lstm'] / cpu['inference']:>7.2f} {cpu['lstm reg'] / cpu['inference']:>6.2f} {cpu['gemm'] / cpu['inference']:>10.2f}"
                f" {cpu['reference'] / cpu['inference']:>7.2f} {difference:>8.1e}"
                f"   wall: vs lstm {wall['lstm'] / wall['inference']:.2f}, gemm share {wall['gemm'] / wall['inference']:.2f}"
            )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
