"""Throughput of the J2 return mapping against a plain memory copy of the same bytes, measured in one run.

For each stress state, batch size and tangent choice, every point is loaded plastically from a committed
plastic state (the return is active everywhere). The effective bandwidth counts the bytes the update must
move (strain and committed history read; stress, trial history and tangent written); the roofline is
np.copyto moving as many bytes (half read, half written) into a destination that is already paged in.
Three ways of calling the update are timed:

- ``new``: ``update(strain, history)`` returning new arrays (it pays their first touch when the allocator
  hands out fresh pages; ``fresh copy`` is the copy into a new destination, which pays the same);
- ``fe``: as the FE side can call it, ``update(..., out=...)`` writing into its own arrays (stress and
  tangent contiguous, trial history packed (N, width) like the committed one);
- ``fe before``: what the FE side did before ``out=`` existed: ``update`` then copying the response into
  those arrays (as ``QuadratureData`` once did).

Ratios = update bandwidth / copy bandwidth from CPU times (the machine is shared: CPU time discounts waiting
for a core; the wall-time ratio of ``fe`` is printed too).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from femsnn.mandel import deviatoric_projector
from femsnn.materials import J2Plasticity, MaterialResponse
from femsnn.materials.base import history_width, pack_history, unpack_history


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


def fe_arrays(material: J2Plasticity, committed: dict, tangent: bool) -> tuple[dict, MaterialResponse, np.ndarray]:
    """The FE side's layout: committed history as views of a packed array, and output arrays (packed trial)."""
    n_points, spec = len(committed["equivalent_plastic_strain"]), material.history_spec
    packed = np.empty((n_points, history_width(spec)))
    pack_history(committed, spec, packed)
    trial = np.empty_like(packed)
    n = material.size
    out = MaterialResponse(
        stress=np.empty((n_points, n)),
        tangent=np.empty((n_points, n, n)) if tangent else None,
        history=unpack_history(trial, spec),
    )
    return unpack_history(packed, spec), out, trial


def measure(material: J2Plasticity, strain: np.ndarray, committed: dict, tangent: bool, repeats: int) -> dict:
    """Best times of the update called three ways and of copies of as many bytes; bytes counted from the actual arrays."""
    response = material.update(strain, committed, tangent=tangent)
    p_trial, p_committed = response.history["equivalent_plastic_strain"], committed["equivalent_plastic_strain"]
    assert (p_trial > p_committed).all(), "every point must return to the yield surface"
    read = strain.nbytes + sum(v.nbytes for v in committed.values())
    written = response.stress.nbytes + sum(v.nbytes for v in response.history.values())
    written += response.tangent.nbytes if tangent else 0
    fe_committed, out, trial = fe_arrays(material, committed, tangent)
    fe = material.update(strain, fe_committed, tangent=tangent, out=out)
    np.testing.assert_array_equal(fe.stress, response.stress)
    del response, fe

    def fe_before() -> None:
        result = material.update(strain, fe_committed, tangent=tangent)
        out.stress[:] = result.stress
        if tangent:
            out.tangent[:] = result.tangent
        pack_history(result.history, material.history_spec, trial)

    src = np.random.default_rng(1).random((read + written) // 16)
    dst = np.empty_like(src)
    runs = {
        "new": lambda: material.update(strain, committed, tangent=tangent),
        "fe": lambda: material.update(strain, fe_committed, tangent=tangent, out=out),
        "fe before": fe_before,
        "copy": lambda: np.copyto(dst, src),
        "fresh copy": lambda: np.copyto(np.empty_like(src), src),
    }
    return {"bytes": read + written, "copy bytes": 2 * src.nbytes} | best_times(runs, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e5, 3e5, 1e6], help="points per batch")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per case (best kept)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; ratio = update bandwidth / copy bandwidth (CPU times)")
    print(
        f"{'state':>13} {'points':>8} {'tangent':>7} {'fe ms':>6} {'ns/pt':>6} {'GB/s':>5} {'copy GB/s':>9}"
        f" {'ratio fe':>8} {'wall':>5} {'ratio new':>9} {'fresh copy':>10} {'fe before':>9}"
    )
    for state in ("3d", "plane_strain"):
        material = J2Plasticity(2.0e5, 0.3, 300.0, H_iso=2.0e3, H_kin=1.0e3, stress_state=state)
        for size in args.sizes:
            strain, committed = plastic_state(material, int(size))
            for tangent in (False, True):
                m = measure(material, strain, committed, tangent, args.repeats)
                copy_rate = m["copy bytes"] / m["copy"][1]
                fresh_rate = m["copy bytes"] / m["fresh copy"][1]

                def ratio(name: str, roofline: float = copy_rate, m: dict = m) -> float:
                    return m["bytes"] / m[name][1] / roofline

                fe_cpu = m["fe"][1]
                wall_ratio = (m["bytes"] / m["fe"][0]) / (m["copy bytes"] / m["copy"][0])
                print(
                    f"{state:>13} {int(size):>8} {str(tangent):>7} {1e3 * fe_cpu:>6.1f} {1e9 * fe_cpu / size:>6.1f}"
                    f" {m['bytes'] / fe_cpu / 1e9:>5.2f} {copy_rate / 1e9:>9.2f} {ratio('fe'):>8.2f} {wall_ratio:>5.2f}"
                    f" {ratio('new'):>9.2f} {ratio('new', fresh_rate):>10.2f} {ratio('fe before'):>9.2f}"
                )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
