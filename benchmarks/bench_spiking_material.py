"""The spiking material inside Newton's method: cost of update per tangent strategy, and iterations to converge.

1. Timing: ``SpikingMaterial.update`` on N points from a committed state reached along the model's own
   validation paths, without a tangent and with each tangent strategy; ratio = time / time without tangent.
2. Stress resolution (``SpikingMaterial.stress_resolution``) on the model's validation paths.
3. Newton at material points: plane-strain uniaxial stress (e_xx prescribed along load-unload paths,
   s_yy = s_xy = 0 solved for e_yy, e_xy; e_zz = 0), the same small Newton problem an FE solver poses
   at every point. Per tangent strategy and residual tolerance (MPa): share of (path, step) pairs that
   converge within --max-iterations, and their mean iterations. The reference J2 material of the model
   file is the yardstick: with its consistent tangent, and with the elastic and secant strategies.

Without --model, a random 3x64 SLSTM regressor stands in (timings only make sense then).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from femsnn.materials import Material, drive, make_material
from femsnn.materials.spiking import SpikingMaterial
from femsnn.materials.tangents import TANGENT_STRATEGIES, secant_tangent
from femsnn.runtime import configure_torch
from femsnn.snn import SpikingRegressor
from femsnn.train.artifact import Artifact, save_model
from femsnn.train.data import J2RandomWalkSettings, generate
from femsnn.train.normalisation import Normalisation


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


def random_model(folder: Path) -> Path:
    """A random 3x64 SLSTM plane-strain model with the normalisation of a few J2 walks."""
    data = generate(J2RandomWalkSettings(generator="j2_random_walk", stress_state="plane_strain", n_train=16, n_val=16, n_test=1, steps=50, increments=True))
    train = data.part("train")
    torch.manual_seed(0)
    net = SpikingRegressor(8, 4, "slstm", (64, 64, 64), 32)
    return save_model(folder / "random.pt", net, Artifact.describe(net, Normalisation.fit(train.inputs, train.targets), data.meta, {}))


def committed_points(material: SpikingMaterial, n_points: int, paths: np.ndarray) -> tuple[np.ndarray, dict]:
    """Strain of the next step and the committed history of n_points points, tiled from validation paths."""
    step = paths.shape[1] // 2
    history = {k: v[:, step - 1] for k, v in drive(material, paths[:, :step]).history.items()}
    index = np.arange(n_points) % paths.shape[0]
    return paths[index, step], {k: np.ascontiguousarray(v[index]) for k, v in history.items()}


def timing(model: Path, sizes: list[int], dtypes: list[str], repeats: int) -> None:
    """Print update times per dtype, N and tangent strategy."""
    print(f"{'dtype':>8} {'points':>7} {'tangent':>10} {'wall ms':>9} {'cpu ms':>9} {'us/point':>9} {'ratio':>6}")
    for dtype in dtypes:
        materials = {t: SpikingMaterial(model, dtype=dtype, tangent=t) for t in TANGENT_STRATEGIES}
        paths = materials["elastic"].validation_paths(16)
        for n_points in sizes:
            strain, history = committed_points(materials["elastic"], n_points, paths)
            runs = {"none": lambda: materials["elastic"].update(strain, history, tangent=False)}
            runs |= {t: (lambda m=m: m.update(strain, history)) for t, m in materials.items()}
            best = best_times(runs, repeats)
            for name, (wall, cpu) in best.items():
                print(
                    f"{dtype:>8} {n_points:>7} {name:>10} {1e3 * wall:>9.1f} {1e3 * cpu:>9.1f}"
                    f" {1e6 * cpu / n_points:>9.2f} {cpu / best['none'][1]:>6.2f}"
                )


def uniaxial_paths(n_paths: int, steps: int, amplitude: tuple[float, float]) -> np.ndarray:
    """e_xx (P, steps): up to +a, down to -a/2, back to 0, with amplitudes a spread over the range."""
    a = np.linspace(*amplitude, n_paths)[:, None]
    third = steps // 3
    shape = np.concatenate([np.linspace(0, 1, third + 1)[1:], np.linspace(1, -0.5, third + 1)[1:], np.linspace(-0.5, 0, steps - 2 * third + 1)[1:]])
    return a * shape


def newton_uniaxial(
    material: Material, axial: np.ndarray, tol: float, max_iterations: int, tangent_of: Callable | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Iterations (P, T) to reach |s_yy, s_xy| <= tol (max_iterations + 1 where not reached) and s_xx.

    tangent_of(response, strain, committed strain, committed stress) replaces the material's tangent.
    Every step starts from the last step's strain and commits the last evaluated history; a point whose
    tangent block is singular stops there (not converged).
    """
    n_paths, n_steps = axial.shape
    free = np.array([1, 3])
    strain = np.zeros((n_paths, material.size))
    history = material.initial_history(n_paths)
    committed_stress = np.zeros((n_paths, material.size))
    iterations = np.full((n_paths, n_steps), max_iterations + 1)
    stress_xx = np.empty((n_paths, n_steps))
    for t in range(n_steps):
        committed_strain = strain.copy()
        strain[:, 0] = axial[:, t]
        active = np.ones(n_paths, dtype=bool)
        for it in range(max_iterations + 1):
            response = material.update(strain, history, tangent=tangent_of is None)
            residual = response.stress[:, free]
            done = active & (np.abs(residual).max(axis=1) <= tol)
            iterations[done, t] = it
            active &= ~done
            if not active.any() or it == max_iterations:
                break
            tangent = response.tangent if tangent_of is None else tangent_of(response, strain, committed_strain, committed_stress)
            k_ff = tangent[:, free][:, :, free]
            with np.errstate(invalid="ignore", over="ignore"):
                usable = np.isfinite(k_ff).all(axis=(1, 2)) & np.isfinite(residual).all(axis=1)
                usable[usable] = np.abs(np.linalg.det(k_ff[usable])) > 1e-12 * np.abs(k_ff[usable]).max(axis=(1, 2)) ** 2
            active &= usable  # a singular or non-finite tangent: failed
            strain[np.ix_(active, free)] -= np.linalg.solve(k_ff[active], residual[active][..., None])[..., 0]
        history, committed_stress = response.history, response.stress
        stress_xx[:, t] = response.stress[:, 0]
    return iterations, stress_xx


def newton_study(model: Path, tolerances: list[float], max_iterations: int, n_paths: int, steps: int) -> None:
    """Print convergence of material-point Newton per tangent strategy and tolerance."""
    axial = uniaxial_paths(n_paths, steps, (0.002, 0.008))
    reference = SpikingMaterial(model)
    j2 = make_material(reference.artifact.data["generator"]["material"], "plane_strain")
    elastic = reference.elastic_tangent

    def j2_elastic(response, strain, committed_strain, committed_stress):
        return np.broadcast_to(elastic, response.stress.shape + elastic.shape[-1:])

    def j2_secant(response, strain, committed_strain, committed_stress):
        return secant_tangent(elastic, strain - committed_strain, response.stress - committed_stress)

    cases: dict[str, tuple[Material, Callable | None]] = {
        "J2 consistent": (j2, None), "J2 elastic": (j2, j2_elastic), "J2 secant": (j2, j2_secant)
    }
    cases |= {f"spiking {t}": (SpikingMaterial(model, tangent=t), None) for t in TANGENT_STRATEGIES}
    print(f"{'material / tangent':>22} {'tol MPa':>8} {'converged':>9} {'mean it':>8} {'max it':>6} {'s_xx rmse vs J2 MPa':>20}")
    _, j2_xx = newton_uniaxial(j2, axial, 1e-8, max_iterations)
    for tol in tolerances:
        for name, (material, tangent_of) in cases.items():
            iterations, stress_xx = newton_uniaxial(material, axial, tol, max_iterations, tangent_of)
            ok = iterations <= max_iterations
            mean = iterations[ok].mean() if ok.any() else float("nan")
            rmse = np.sqrt(np.mean((stress_xx - j2_xx) ** 2))
            print(f"{name:>22} {tol:>8.3g} {ok.mean():>9.1%} {mean:>8.2f} {iterations[ok].max() if ok.any() else 0:>6} {rmse:>20.3g}")


def tangent_quality(model: Path, n_paths: int) -> None:
    """Print how the surrogate tangent compares with the J2 consistent tangent along validation paths."""
    material = SpikingMaterial(model, tangent="surrogate")
    j2 = make_material(material.artifact.data["generator"]["material"], "plane_strain")
    paths = material.validation_paths(n_paths)
    free = np.array([0, 1, 3])  # plane strain: e_zz stays zero
    surrogate = drive(material, paths, tangent=True).tangent[..., free[:, None], free]
    consistent = drive(j2, paths, tangent=True).tangent[..., free[:, None], free]
    difference = np.linalg.norm(surrogate - consistent, axis=(-2, -1)) / np.linalg.norm(consistent, axis=(-2, -1))
    asymmetry = np.linalg.norm(surrogate - np.swapaxes(surrogate, -1, -2), axis=(-2, -1)) / np.linalg.norm(surrogate, axis=(-2, -1))
    spd = np.linalg.eigvalsh(0.5 * (surrogate + np.swapaxes(surrogate, -1, -2))).min(axis=-1) > 0
    ratio = np.linalg.norm(surrogate, axis=(-2, -1)) / np.linalg.norm(consistent, axis=(-2, -1))
    print(
        f"surrogate vs J2 consistent tangent (in-plane block, {paths.shape[0]}x{paths.shape[1]} points): relative difference "
        f"median {np.median(difference):.3g}, |C_s|/|C_J2| median {np.median(ratio):.3g}, asymmetry median "
        f"{np.median(asymmetry):.3g}, symmetric part SPD at {spd.mean():.1%} of points"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model file (default: a random 3x64 SLSTM)")
    parser.add_argument("--points", type=float, nargs="+", default=[1e3, 1e4, 4e4], help="N for the timing table")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per case (best kept)")
    parser.add_argument("--tolerances", type=float, nargs="+", default=[1.0, 10.0, 50.0], help="Newton residual tolerances (MPa)")
    parser.add_argument("--max-iterations", type=int, default=25)
    parser.add_argument("--paths", type=int, default=32, help="uniaxial paths of the Newton study")
    parser.add_argument("--steps", type=int, default=48, help="steps per uniaxial path")
    parser.add_argument("--skip", nargs="*", default=[], choices=["timing", "resolution", "newton"])
    args = parser.parse_args()
    configure_torch(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or random_model(Path(tmp))
        print(f"model {args.model or 'random 3x64 SLSTM'}; torch threads {torch.get_num_threads()}")
        if "timing" not in args.skip:
            timing(model, [int(n) for n in args.points], args.dtypes, args.repeats)
        if "resolution" not in args.skip:
            for dtype in args.dtypes:
                print(f"stress resolution ({dtype}):", SpikingMaterial(model, dtype=dtype).stress_resolution())
        if "newton" not in args.skip and args.model is not None:
            tangent_quality(model, args.paths)
            newton_study(model, args.tolerances, args.max_iterations, args.paths, args.steps)


if __name__ == "__main__":
    main()
