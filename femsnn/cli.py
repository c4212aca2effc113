"""The femsnn command line: thin wrappers; every command's work lives in its own package home."""

from __future__ import annotations

from pathlib import Path

import typer

from femsnn.config import ConfigError

app = typer.Typer(help="femsnn: reference and spiking materials for dolfinx.", no_args_is_help=True)


def _fail(exc: Exception) -> None:
    """Print a user-facing error and exit non-zero (no traceback for expected errors)."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def simulate(
    config: Path = typer.Argument(..., help="simulation TOML (problem, mesh, material, loading, output)"),
    resume: bool = typer.Option(False, "--resume", help="continue from the checkpoint in the output folder"),
) -> None:
    """Run a quasi-static FE simulation and write the CSV table, JSON report, ParaView fields and plot."""
    from mpi4py import MPI

    from femsnn.fem.simulate import SimulationFailed, run_simulation_from_file

    try:
        result = run_simulation_from_file(config, resume=resume)
    except (ConfigError, FileNotFoundError, ValueError, SimulationFailed) as exc:
        _fail(exc)
    if MPI.COMM_WORLD.rank == 0:
        final = f"{len(result.table['step'])} converged increments, final load {result.table['load'][-1]:.6g}"
        typer.echo(f"{result.directory}: {final}")


@app.command()
def compare(config: Path = typer.Argument(..., help="comparison TOML (problem, mesh, loading, solver, reference, spiking, output)")) -> None:
    """Solve one problem with a reference and a spiking material; write curves, field errors, fields and a summary."""
    from mpi4py import MPI

    from femsnn.fem.compare import run_comparison_from_file

    try:
        result = run_comparison_from_file(config)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        _fail(exc)
    summary = result.summary
    if MPI.COMM_WORLD.rank == 0:
        curve, open_loop = summary["curve_error"], summary["open_loop_stress_error"]
        typer.echo(f"{result.directory}: {summary['status']}; curve error max {curve['max']} / mean {curve['mean']} "
                   f"over {curve['steps']} load steps; open-loop stress error max {open_loop['max']}")
    if not result.completed:
        _fail(RuntimeError("; ".join(m for m in summary["errors"].values() if m)))


@app.command()
def harvest(config: Path = typer.Argument(..., help="harvest TOML (seed, material, \\[\\[family]] programs, sampling, output)")) -> None:
    """Record strain and stress at sampled quadrature points of reference FE runs into a training dataset."""
    from mpi4py import MPI

    from femsnn.fem.harvest import HarvestFailed, run_harvest_from_file

    try:
        result = run_harvest_from_file(config)
    except (ConfigError, FileNotFoundError, ValueError, HarvestFailed) as exc:
        _fail(exc)
    if MPI.COMM_WORLD.rank == 0:
        paths, steps = result.dataset.inputs.shape[:2]
        programs = len(result.dataset.meta["harvest"]["simulations"])
        typer.echo(f"{result.path}: {paths} paths x {steps} steps from {programs} simulations "
                   f"({result.failed} stopped early, their converged increments kept)")


@app.command()
def train(
    config: Path = typer.Argument(..., help="training TOML with data, model, training and output sections"),
    restart: bool = typer.Option(False, "--restart", help="discard the output folder's checkpoint instead of resuming"),
) -> None:
    """Train a regressor; write model.pt, checkpoint.pt, metrics.json and plots (a killed run resumes)."""
    from femsnn.train.workflow import run_training_from_file

    try:
        run = run_training_from_file(config, restart=restart)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        _fail(exc)
    test = run.metrics["test"]
    typer.echo(f"model: {run.model_path}  test code metric {test['code_all']:.3e} all / {test['code_last']:.3e} last, "
               f"RMSE {test['rmse_mpa_all']:.3g} MPa")


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="model file written by femsnn train"),
    data: Path = typer.Argument(..., help="dataset .npz (femsnn.train.data format)"),
    out: Path = typer.Option(None, "--out", help="output folder (default: <model folder>/evaluate-<data name>)"),
    split: str = typer.Option("test", "--split", help="which split of the dataset: train, val or test"),
    samples: int = typer.Option(5, "--samples", help="paths drawn in the prediction plot"),
) -> None:
    """Evaluate a model on a dataset: metrics.json, predicted vs reference paths, per-path errors."""
    from femsnn.train.workflow import evaluate_model

    folder = out if out is not None else model.parent / f"evaluate-{data.stem}"
    try:
        metrics = evaluate_model(model, data, folder, split=split, samples=samples)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        _fail(exc)
    typer.echo(f"{folder}/metrics.json: code metric {metrics['code_all']:.3e} all / {metrics['code_last']:.3e} last, "
               f"RMSE {metrics['rmse_mpa_all']:.3g} MPa")
    branch = metrics["branch_step_rmse_mpa"]
    for where, label in (("all", "all steps"), ("large", "the 10 % largest steps")) if branch is not None else ():
        for key, what in ((where, f"RMSE part-way along {label}, from the state at the step's start (what Newton asks)"),
                          (f"{where}_change", "  RMSE of the stress change from the step's start (the slope Newton sees)")):
            typer.echo(f"{what}: " + ", ".join(f"{float(f):.0%} {v:.3g} MPa" for f, v in branch[key].items()))


@app.command()
def ensemble(
    models: list[Path] = typer.Argument(..., help="two or more spiking model files trained on the same data (e.g. other seeds)"),
    out: Path = typer.Option(..., "--out", help="the ensemble's model file"),
) -> None:
    """Combine models into one whose stress is the mean of theirs (for evaluate, the spiking material, \\[warm_start])."""
    from femsnn.train.artifact import combine_models, save_model

    try:
        net, artifact = combine_models(models)
    except (FileNotFoundError, ValueError) as exc:
        _fail(exc)
    typer.echo(f"ensemble of {len(models)} models: {save_model(out, net, artifact)}")


@app.command()
def offload(
    model: Path = typer.Argument(..., help="spiking model file written by femsnn train"),
    data: Path = typer.Argument(..., help="dataset .npz (femsnn.train.data format)"),
    backend: str = typer.Option("auto", "--backend", help="sim-float, sim-fixed, hw (needs lava-loihi) or auto (hw if available, else sim-fixed)"),
    out: Path = typer.Option(None, "--out", help="output folder (default: <model folder>/offload-<data name>)"),
    split: str = typer.Option("test", "--split", help="which split of the dataset: train, val or test"),
    paths: int = typer.Option(16, "--paths", help="how many paths of the split to run (Lava simulates ~5-10 ms per step)"),
    timeout: float = typer.Option(None, "--timeout", help="watchdog: seconds without progress before the Lava worker is killed"),
) -> None:
    """Run a spiking model through Lava (Loihi 2 or its simulator): offload.json with metrics, spikes, timings."""
    from femsnn.loihi.env import LavaEnvironmentError
    from femsnn.loihi.offload import offload_model
    from femsnn.loihi.worker import LavaWorkerError

    folder = out if out is not None else model.parent / f"offload-{data.stem}"
    try:
        report = offload_model(model, data, folder, backend=backend, split=split, paths=paths, timeout=timeout)
    except (FileNotFoundError, ValueError, LavaEnvironmentError, LavaWorkerError) as exc:
        _fail(exc)
    lava = report["metrics_lava"]
    typer.echo(f"{folder}/offload.json: backend {report['backend']} ({report['seconds_per_lava_step'] * 1e3:.2f} ms per step), "
               f"code metric {lava['code_all']:.3e} all, RMSE {lava['rmse_mpa_all']:.3g} MPa, "
               f"max |Lava - torch| {report['lava_vs_torch']['max_mpa']:.3g} MPa")

@app.command()
def energy(
    model: Path = typer.Argument(..., help="spiking model file written by femsnn train"),
    data: Path = typer.Argument(..., help="dataset .npz whose paths drive the network (femsnn.train.data format)"),
    out: Path = typer.Option(None, "--out", help="output folder (default: <model folder>/energy-<data name>)"),
    split: str = typer.Option("test", "--split", help="which split of the dataset: train, val or test"),
    paths: int = typer.Option(64, "--paths", help="how many paths of the split to run"),
    spikes: str = typer.Option("torch", "--spikes", help="where spikes are counted: torch, or a Lava backend (sim-float, sim-fixed, hw, auto)"),
    timeout: float = typer.Option(None, "--timeout", help="Lava watchdog: seconds without progress before the worker is killed"),
) -> None:
    """Estimate energy per inference step on Loihi, GPU and CPU (and of the equivalent LSTM) from counted spikes."""
    from femsnn.loihi.energy import estimate_model_energy
    from femsnn.loihi.env import LavaEnvironmentError
    from femsnn.loihi.worker import LavaWorkerError

    folder = out if out is not None else model.parent / f"energy-{data.stem}"
    try:
        report = estimate_model_energy(model, data, folder, split=split, paths=paths, spikes=spikes, timeout=timeout)
    except (FileNotFoundError, ValueError, LavaEnvironmentError, LavaWorkerError) as exc:
        _fail(exc)
    rows = {(r["model"], r["device"]): r["energy_per_step_j"] for r in report["table"]}
    typer.echo(f"{folder}/energy.json: per inference step, spiking network {rows['spiking', 'loihi'] * 1e9:.3g} nJ on Loihi, "
               f"{rows['spiking', 'gpu'] * 1e9:.3g} nJ on GPU; equivalent LSTM {rows['lstm', 'gpu'] * 1e9:.3g} nJ on GPU "
               f"(spikes from {report['spike_source']})")


@app.command()
def qat(
    model: Path = typer.Argument(..., help="spiking model file written by femsnn train"),
    data: Path = typer.Argument(..., help="dataset .npz with train and val splits for fine-tuning and the split to report on"),
    out: Path = typer.Option(None, "--out", help="output folder (default: <model folder>/qat-<data name>)"),
    split: str = typer.Option("test", "--split", help="split on which fixed point and float are compared"),
    epochs: int = typer.Option(10, "--epochs", help="fine-tuning epochs"),
    learning_rate: float = typer.Option(3e-5, "--lr", help="AdamW learning rate"),
    batch_size: int = typer.Option(64, "--batch-size", help="paths per optimiser step"),
    train_paths: int = typer.Option(None, "--train-paths", help="fine-tune on the first N training paths only"),
    lava_paths: int = typer.Option(16, "--lava-paths", help="paths also run through Lava's sim-fixed before and after (0: none)"),
) -> None:
    """Quantisation-aware fine-tuning for Loihi fixed point: model-qat.pt, network-qat.npz and qat.json (errors before/after)."""
    from femsnn.loihi.env import LavaEnvironmentError
    from femsnn.loihi.qat import QATSettings, qat_report
    from femsnn.loihi.worker import LavaWorkerError

    folder = out if out is not None else model.parent / f"qat-{data.stem}"
    try:
        settings = QATSettings(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, train_paths=train_paths)
        report = qat_report(model, data, folder, settings, split=split, lava_paths=lava_paths)
    except (ConfigError, FileNotFoundError, ValueError, LavaEnvironmentError, LavaWorkerError) as exc:
        _fail(exc)
    before, after = report["fixed_before"]["vs_float"]["eq14_all"], report["fixed_after"]["vs_float"]["eq14_all"]
    typer.echo(f"{folder}/qat.json: fixed point vs float model (eq. 14, all steps) {before:.3%} before, {after:.3%} after fine-tuning")


if __name__ == "__main__":
    app()
