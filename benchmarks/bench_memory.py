"""Memory per quadrature point of the spiking material: stored history (committed + trial) and the peak of one update.

1. Stored history. The FE side keeps two packed history arrays per point (committed and trial, the least
   that rollback of a failed Newton step needs): the spiking material's history is the strain and stress
   of the last step plus the network's state (membranes, cells), stored in ``history_dtype`` (the
   network's dtype by default: float32 for the shipped model). Bytes per point are measured from the
   arrays ``SpikingMaterial.initial_history`` allocates for float64 and float32 storage, beside the J2
   reference material and the FE side's stress and tangent fields.
2. Peak of one ``SpikingMaterial.update`` of --points points, measured: the rise of the process's peak
   resident memory (Linux VmHWM, reset before the call) in a fresh forked process per case, per point,
   for a float32 and a float64 network (history in the same dtype), without tangent (inference path) and
   with the surrogate tangent (autograd graph); the network steps the points in chunks (``chunk_size``).

Architectures: SLSTM 3x64 (the ``femsnn train`` default, population 32) and 3x256, plane strain with strain
increments (8 inputs, 4 outputs), plus every model file shipped in femsnn/models/ and those given by --models.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from pathlib import Path

import numpy as np
import torch

import femsnn
from femsnn.materials import J2Plasticity
from femsnn.materials.base import history_width
from femsnn.materials.spiking import SpikingMaterial
from femsnn.runtime import configure_torch
from femsnn.snn import SpikingRegressor
from femsnn.train.artifact import Artifact, load_model
from femsnn.train.data import J2RandomWalkSettings, generate
from femsnn.train.normalisation import Normalisation

SHIPPED = Path(femsnn.__file__).parent / "models"


def random_model(hidden: list[int], population: int) -> tuple[SpikingRegressor, Artifact]:
    """A random plane-strain SLSTM regressor with the normalisation of a few J2 walks (memory does not depend on weights)."""
    settings = J2RandomWalkSettings(
        generator="j2_random_walk", stress_state="plane_strain", n_train=4, n_val=1, n_test=1, steps=8, increments=True
    )
    data = generate(settings)
    train = data.part("train")
    net = SpikingRegressor(train.inputs.shape[2], train.targets.shape[2], "slstm", hidden, population)
    return net, Artifact.describe(net, Normalisation.fit(train.inputs, train.targets), data.meta, {})


def stored_bytes(material: SpikingMaterial | J2Plasticity, n_points: int = 1000) -> float:
    """Bytes per point of committed + trial history as the material allocates it (its history_dtype)."""
    history = material.initial_history(n_points)
    return 2 * sum(v.nbytes for v in history.values()) / n_points


def peak_memory(model: tuple[SpikingRegressor, Artifact], dtype: str, tangent: bool, n_points: int) -> int:
    """Rise of the peak resident memory (bytes) during one update of n_points points from a state at rest."""
    material = SpikingMaterial(model, dtype=dtype, tangent="surrogate", history_dtype=dtype)
    history = material.initial_history(n_points)
    strain = 1e-3 * np.random.default_rng(0).standard_normal((n_points, material.size))
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_kib("VmRSS")
    material.update(strain, history, tangent=tangent)
    return 1024 * (_status_kib("VmHWM") - before)


def _status_kib(field: str) -> int:
    """A memory field of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def in_child(model: tuple[SpikingRegressor, Artifact], dtype: str, tangent: bool, n_points: int) -> int:
    """peak_memory in a freshly forked process, so that no memory cached by earlier cases is reused."""
    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(peak_memory, (model, dtype, tangent, n_points))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=float, default=1e5, help="points per update in part 2")
    parser.add_argument("--models", type=Path, nargs="*", default=[], help="model files to include")
    args = parser.parse_args()
    configure_torch(1)
    torch.manual_seed(0)
    models = {"SLSTM 3x64 (train default)": random_model([64] * 3, 32), "SLSTM 3x256": random_model([256] * 3, 32)}
    for path in sorted(SHIPPED.glob("*.pt")) + list(args.models):
        models[path.name] = load_model(path)
    n = 4
    j2 = J2Plasticity(2.1e5, 0.3, 300.0, stress_state="plane_strain")
    print("1. stored history per point, committed + trial (plane strain, n = 4)")
    print(f"{'material':>30} {'values':>7} {'network':>8} {'float64 B':>10} {'float32 B':>10}")
    for name, model in models.items():
        width = history_width(SpikingMaterial(model).history_spec)
        network = history_width(model[0].state_spec)
        stored = {dtype: stored_bytes(SpikingMaterial(model, history_dtype=dtype)) for dtype in ("float64", "float32")}
        print(f"{name:>30} {width:>7} {network:>8} {stored['float64']:>10.0f} {stored['float32']:>10.0f}")
    print(f"{'J2 reference':>30} {history_width(j2.history_spec):>7} {'-':>8} {stored_bytes(j2):>10.0f} {'-':>10}")
    print(f"{'FE stress + tangent fields':>30} {n + n * n:>7} {'-':>8} {8 * (n + n * n):>10} {'-':>10}")
    n_points = int(args.points)
    print(f"\n2. peak memory of one update of {n_points} points, bytes per point (fresh process per case)")
    print(f"{'material':>30} {'network':>8} {'no tangent':>10} {'surrogate':>10}")
    for name, model in models.items():
        for dtype in ("float32", "float64"):
            plain, with_tangent = (in_child(model, dtype, tangent, n_points) for tangent in (False, True))
            print(f"{name:>30} {dtype:>8} {plain / n_points:>10.0f} {with_tangent / n_points:>10.0f}")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
