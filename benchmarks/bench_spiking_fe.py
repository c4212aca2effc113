"""The spiking material inside dolfinx's Newton loop: cost per load step, and the tangent strategies.

Timing (always): the thick cylinder (examples/cylinder/compare.toml) on the --sizes meshes (fine: h = 0.01,
~38k quadrature points; finest: h = 0.005, ~150k), the first --steps load steps of its program, with the reference J2 and with the spiking
model; prints seconds per load step of both, their ratio, and each run's share spent in material
updates (all measured in this one run; forms are compiled by a coarse warm-up first).

--strategies: the whole program on the --size mesh, once per tangent strategy x line search (femsnn
compare, stress tolerance from the model's resolution): Newton iterations, failed solves (each one a
cut-back), seconds, the curve error (|u_s - u_r| / max |u_r| at the program's factors) and the stress
error against the reference.

Run: python benchmarks/bench_spiking_fe.py [--model M] [--rotations K] [--tangent T] [--strategies] (serial; the
example's model, rotations and tangent unless given)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from femsnn.config import load_config
from femsnn.fem.compare import CompareConfig, run_comparison
from femsnn.fem.simulate import SimulationFailed, SimulationResult, run_simulation
from femsnn.materials.tangents import TANGENT_STRATEGIES
from femsnn.runtime import configure_torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cylinder" / "compare.toml"
LINE_SEARCHES = ("basic", "bt", "secant")


def configured(spiking: dict, directory: Path, size: str | float, spiking_solver: dict | None = None) -> CompareConfig:
    """The example comparison with [spiking] keys replaced (model, rotations, tangent), another mesh size, spiking
    solver keys and folder; no fields or plots."""
    config = load_config(EXAMPLE, CompareConfig)
    output = config.output.model_copy(update={"directory": directory, "fields": False, "plot": False, "progress": False})
    return config.model_copy(
        update={
            "spiking": config.spiking.model_copy(update=spiking),
            "output": output,
            "spiking_solver": {**config.spiking_solver, **(spiking_solver or {})},
            "mesh": config.mesh.model_copy(update={"size": size}),
        }
    )


def timing(spiking: dict, steps: int, directory: Path, size: str) -> None:
    """Seconds per load step of both materials on one mesh size, their ratio and material shares.

    A run that stops early (a step that does not converge) is timed over the steps it completed, and says so.
    """
    fine = configured(spiking, directory, size)
    fine = fine.model_copy(update={"loading": fine.loading.model_copy(update={"factors": fine.loading.program()[:steps].tolist()})})
    warm = configured(spiking, directory / "warm", "coarse")
    for run in ("reference", "spiking"):
        completed_run(warm.simulation(run).model_copy(update={"loading": fine.loading}))
    results = {run: completed_run(fine.simulation(run)) for run in ("reference", "spiking")}
    reports = {run: result.report for run, result in results.items()}
    points = reports["reference"]["mesh"]["quadrature_points"]
    print(f"\ncylinder, mesh '{size}': {points} quadrature points, {reports['reference']['mesh']['dofs']} dofs, "
          f"first {steps} load steps, spiking model {fine.spiking.model.name} (rotations {fine.spiking.rotations}), "
          f"tangent '{fine.spiking.tangent}'")
    print(f"{'material':>10} {'steps':>5} {'s/step':>8} {'newton':>6} {'it/step':>7} {'material s':>10} {'share':>6}")
    per_step = {}
    for run, report in reports.items():
        t, done = report["timings"], steps_done(results[run])
        per_step[run] = t["total"] / max(done, 1)
        iterations = sum(i["newton_iterations"] for i in report["increments"])
        print(f"{run:>10} {done:5d} {per_step[run]:8.4g} {iterations:6d} {iterations / max(done, 1):7.2f} "
              f"{t['material']:10.3f} {t['material'] / t['total']:6.0%}")
    if steps_done(results["spiking"]) < steps:
        print(f"  (the spiking run stopped after {steps_done(results['spiking'])} of {steps} steps: {reports['spiking']['error']})")
    print(f"spiking / reference time per load step: {per_step['spiking'] / per_step['reference']:.2f}")


def completed_run(config) -> SimulationResult:
    """run_simulation's result, also for a run that stopped at a step that did not converge."""
    try:
        return run_simulation(config)
    except SimulationFailed as failure:
        return failure.result


def steps_done(result: SimulationResult) -> int:
    """Load steps of the program whose target factor was reached."""
    return len({i["step"] for i in result.report["increments"] if i["converged"] and i["load_factor"] == i["target"]})


def strategies(spiking: dict, size: str, directory: Path) -> None:
    """Every tangent strategy x line search on the whole program: iterations, failures, seconds, errors."""
    print(f"\ncylinder, mesh '{size}', whole program: tangent strategy x line search")
    print(f"{'tangent':>9} {'search':>7} {'status':>9} {'newton':>6} {'it/step':>7} {'failed':>6} {'s spiking':>9} "
          f"{'s ref':>6} {'curve max':>9} {'curve mean':>10} {'stress mean':>11}")
    for tangent in TANGENT_STRATEGIES:
        for search in LINE_SEARCHES:
            solver = {"line_search": search}
            result = run_comparison(configured({**spiking, "tangent": tangent}, directory / f"{tangent}-{search}", size, solver))
            s = result.summary
            done = [row for row in s["steps"] if row["converged_spiking"]]
            seconds = s["timings"]["spiking"]["total"]
            print(f"{tangent:>9} {search:>7} {s['status']['spiking']:>9} {s['newton_iterations']['spiking']:6d} "
                  f"{s['newton_iterations']['spiking'] / max(len(done), 1):7.2f} {s['failed_solves']['spiking']:6d} "
                  f"{seconds:9.2f} {s['timings']['reference']['total']:6.2f} {_fmt(s['curve_error']['max']):>9} "
                  f"{_fmt(s['curve_error']['mean']):>10} {_fmt(s['stress_error']['mean']):>11}   ({len(done)} steps)")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="spiking model file (default: the example's)")
    parser.add_argument("--rotations", type=int, default=None, help="frames the model is averaged over (default: the example's)")
    parser.add_argument("--tangent", default=None, choices=TANGENT_STRATEGIES, help="tangent of the timing run (default: the example's)")
    parser.add_argument("--steps", type=int, default=19, help="load steps of the timing run (19: the whole program)")
    parser.add_argument("--sizes", nargs="+", default=["fine"], help="meshes of the timing run (fine ~40k, finest ~150k points)")
    parser.add_argument("--strategies", action="store_true", help="also compare every tangent strategy x line search")
    parser.add_argument("--size", default="coarse", help="mesh size of the strategy comparison")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    if args.model is not None and not args.model.is_file():
        parser.error(f"model file not found: {args.model} (train one, or pass --model)")
    if args.rotations is not None and args.rotations < 1:
        parser.error(f"--rotations must be at least 1, got {args.rotations}")
    configure_torch(args.threads)
    spiking = {k: v for k, v in {"model": args.model, "rotations": args.rotations, "tangent": args.tangent}.items() if v is not None}
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            timing(spiking, args.steps, Path(scratch) / f"timing-{size}", size)
        if args.strategies:
            strategies(spiking, args.size, Path(scratch) / "strategies")


if __name__ == "__main__":
    main()
