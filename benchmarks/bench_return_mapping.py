"""Throughput of the J2 return mapping against a plain memory copy of the same bytes, measured in one run.

For each stress state, batch size and tangent choice, every point is loaded plastically from a committed
plastic state (the return is active everywhere). The effective bandwidth counts the bytes the update must
move (strain and committed history read; stress, trial history and tangent written); the roofline is
np.copyto moving as many bytes (half read, half written) into a destination that is already paged in.
Because update returns new arrays, it also pays the first touch of its outputs; the last column compares
with a copy into a freshly allocated destination, which pays the same.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from femsnn.mandel import deviatoric_projector
from femsnn.materials import J2Plasticity


def best_times(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float]]:
    """Shortest (wall, CPU) seconds of each run over repeats rounds. Rounds interleave the runs so that load
    from other processes hits them alike; CPU time discounts the time spent waiting for a core."""
    best = {name: (float("inf"), float("inf")) for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def plastic_state(material: J2Plasticity, n_points: int, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Strains 1.25x beyond a committed plastic state along random deviatoric paths (all points yield)."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(n_points, material.size)) @ deviatoric_projector(material.size)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    strain = 4.0 * material.sigma_y / material.E * direction
    committed = material.update(strain, material.initial_history(n_points), tangent=False).history
    return 1.25 * strain, committed


def measure(material: J2Plasticity, strain: np.ndarray, committed: dict, tangent: bool, repeats: int) -> dict:
    """Best times of the update and of copies of as many bytes; bytes counted from the actual arrays."""
    response = material.update(strain, committed, tangent=tangent)
    p_trial, p_committed = response.history["equivalent_plastic_strain"], committed["equivalent_plastic_strain"]
    assert (p_trial > p_committed).all(), "every point must return to the yield surface"
    read = strain.nbytes + sum(v.nbytes for v in committed.values())
    written = response.stress.nbytes + sum(v.nbytes for v in response.history.values())
    written += response.tangent.nbytes if tangent else 0
    del response
    src = np.random.default_rng(1).random((read + written) // 16)
    dst = np.empty_like(src)
    runs = {
        "update": lambda: material.update(strain, committed, tangent=tangent),
        "copy": lambda: np.copyto(dst, src),
        "fresh copy": lambda: np.copyto(np.empty_like(src), src),
    }
    return {"bytes": read + written, "copy bytes": 2 * src.nbytes} | best_times(runs, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e5, 3e5, 1e6], help="points per batch")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per case (best kept)")
    args = parser.parse_args()
    print("ratio = update bandwidth / copy bandwidth, from wall and from CPU times; fresh: copy into a new array")
    print(
        f"{'state':>13} {'points':>8} {'tangent':>7} {'wall ms':>7} {'cpu ms':>7} {'Mpt/s':>6} {'GB/s':>5}"
        f" {'copy GB/s':>9} {'ratio wall':>10} {'ratio cpu':>9} {'ratio fresh':>11}"
    )
    for state in ("3d", "plane_strain"):
        material = J2Plasticity(2.0e5, 0.3, 300.0, H_iso=2.0e3, H_kin=1.0e3, stress_state=state)
        for size in args.sizes:
            strain, committed = plastic_state(material, int(size))
            for tangent in (False, True):
                m = measure(material, strain, committed, tangent, args.repeats)
                (wall, cpu), (copy_wall, copy_cpu), (_, fresh_cpu) = m["update"], m["copy"], m["fresh copy"]
                ratio_wall = (m["bytes"] / wall) / (m["copy bytes"] / copy_wall)
                ratio_cpu = (m["bytes"] / cpu) / (m["copy bytes"] / copy_cpu)
                ratio_fresh = (m["bytes"] / cpu) / (m["copy bytes"] / fresh_cpu)
                print(
                    f"{state:>13} {int(size):>8} {str(tangent):>7} {1e3 * wall:>7.1f} {1e3 * cpu:>7.1f}"
                    f" {size / cpu / 1e6:>6.2f} {m['bytes'] / cpu / 1e9:>5.2f} {m['copy bytes'] / copy_cpu / 1e9:>9.2f}"
                    f" {ratio_wall:>10.2f} {ratio_cpu:>9.2f} {ratio_fresh:>11.2f}"
                )


if __name__ == "__main__":
    main()
