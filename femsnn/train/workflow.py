"""What ``femsnn train`` and ``femsnn evaluate`` do: data -> training -> artefact, metrics and plots.

Training output folder ([output] dir):
    model.pt            the model artefact (femsnn.train.artifact), best validation weights
    checkpoint.pt       resumable training state (re-running the same config continues a killed run)
    dataset.npz         the generated data (when [data] names a generator or mixes one into a file)
    metrics.json        val/test metrics side by side, spike rates, training time, per-epoch history
    learning_curve.png, test_paths.png, test_path_errors.png
Evaluation output folder: metrics.json, paths.png, path_errors.png.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from femsnn.runtime import configure_torch
from femsnn.snn.base import Regressor
from femsnn.snn.networks import build_regressor, regressor_spec
from femsnn.train.artifact import (
    Artifact,
    ModelFileError,
    combine_models,
    git_commit,
    load_model,
    save_model,
    total_train_time,
)
from femsnn.train.config import DataFile, TrainConfig, load_train_config
from femsnn.train.data import Dataset, DatasetFileError, concatenate, generate
from femsnn.train.harness import TrainingResult, predict, train
from femsnn.train.metrics import per_path_errors, stress_metrics
from femsnn.train.normalisation import Normalisation
from femsnn.train.plots import plot_learning_curve, plot_path_errors, plot_stress_paths
from femsnn.train.trial import TrialSteps, branch_step_errors


@dataclass(frozen=True)
class TrainingRun:
    """Where a training run wrote its results, and its metrics (the content of metrics.json)."""

    output_dir: Path
    model_path: Path
    metrics: dict


def run_training(config: TrainConfig, *, restart: bool = False) -> TrainingRun:
    """Train as configured; resumes from the output folder's checkpoint unless restart is set."""
    settings = config.training
    configure_torch(settings.threads)
    data = _load_data(config)
    spec = {**config.model, "n_inputs": data.inputs.shape[2], "n_outputs": data.targets.shape[2]}
    start = None if config.warm_start is None else warm_start_model(config.warm_start.model, spec, data)
    out = config.output.dir
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    if restart:
        checkpoint.unlink(missing_ok=True)
    if not isinstance(config.data, DataFile) or config.data.mix is not None:
        data.save(out / "dataset.npz")

    torch.manual_seed(settings.seed)
    if start is None:
        result = train(build_regressor(spec), data, settings, checkpoint=checkpoint)
    else:
        result = train(start[0], data, settings, checkpoint=checkpoint, normalisation=start[1].normalisation)

    splits = {name: evaluate_split(result.net, result.normalisation, data, name, batch=settings.eval_batch_size) for name in ("val", "test")}
    metrics = {
        "val": splits["val"]["metrics"],
        "test": splits["test"]["metrics"],
        "train_time_s": result.train_time_s,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "parameters": sum(p.numel() for p in result.net.parameters()),
        "history": result.history,
    }
    model_path = save_model(out / "model.pt", result.net, _artifact(config, data, result, metrics, None if start is None else start[1]))
    _write_json(out / "metrics.json", metrics)
    plot_learning_curve(result.history, out / "learning_curve.png", result.best_epoch)
    _plot_split(splits["test"], data.part("test"), out / "test_paths.png", out / "test_path_errors.png", config.output.plot_samples)
    return TrainingRun(out, model_path, metrics)


def warm_start_model(path: Path | list[Path], spec: dict, data: Dataset) -> tuple[Regressor, Artifact]:
    """The model to fine-tune (a list of paths: their ensemble), checked against the configured architecture (of
    every member) and the data: clear errors before work."""
    net, artifact = combine_models(path) if isinstance(path, list) else load_model(path)
    wanted = regressor_spec(build_regressor(spec))
    for member in artifact.spec["members"] if isinstance(path, list) else [artifact.spec]:
        if member != wanted:
            differ = sorted(k for k in set(wanted) | set(member) if wanted.get(k) != member.get(k))
            raise ModelFileError(f"{path}: warm-start model differs from [model] in {differ}")
    artifact.check_stress_state(data.stress_state)
    if artifact.input_features != data.input_features or artifact.target_names != tuple(data.meta["target_names"]):
        raise ModelFileError(f"{path}: warm-start model maps {list(artifact.input_features)} -> {list(artifact.target_names)}, "
                             f"the data {list(data.input_features)} -> {data.meta['target_names']}")
    return net, artifact


def run_training_from_file(path: str | Path, *, restart: bool = False) -> TrainingRun:
    """``femsnn train CONFIG``: validate the file, then train."""
    return run_training(load_train_config(path), restart=restart)


def load_model_and_data(model_path: str | Path, data_path: str | Path) -> tuple[Regressor, Artifact, Dataset]:
    """A model file and a dataset file it can run on (same stress state and targets), else a clear error."""
    net, artifact = load_model(model_path)
    data = Dataset.load(data_path)
    artifact.check_stress_state(data.stress_state)
    if tuple(data.meta["target_names"]) != artifact.target_names:
        raise DatasetFileError(f"dataset targets {data.meta['target_names']} differ from the model's {list(artifact.target_names)}")
    return net, artifact, data


def evaluate_model(model_path: str | Path, data_path: str | Path, out_dir: str | Path, *, split: str = "test", samples: int = 5) -> dict:
    """``femsnn evaluate MODEL DATA``: metrics of a model on one split of a dataset file, with plots."""
    net, artifact, data = load_model_and_data(model_path, data_path)
    result = evaluate_split(net, artifact.normalisation, data, split, features=artifact.input_features)
    metrics = {"model": str(model_path), "data": str(data_path), "split": split, "paths": int((data.split == split).sum()), **result["metrics"]}
    try:  # the stress part-way along each step, from the state at its start (femsnn.train.trial)
        steps = TrialSteps(data.part(split), artifact.normalisation, features=artifact.input_features)
        metrics["branch_step_rmse_mpa"] = branch_step_errors(net, steps)
    except ValueError as exc:  # data that is not its material's answer to its strains, or inputs other than strain
        metrics["branch_step_rmse_mpa"], metrics["branch_step_note"] = None, str(exc)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "metrics.json", metrics)
    _plot_split(result, data.part(split), out / "paths.png", out / "path_errors.png", samples)
    return metrics


def evaluate_split(
    net: torch.nn.Module, normalisation: Normalisation, data: Dataset, split: str, *, features: tuple[str, ...] | None = None, batch: int = 1024
) -> dict:
    """Predictions, per-path errors and metrics (with spike rates and inference time) on one split."""
    part = data.part(split)
    inputs = part.inputs if features is None else part.inputs_for(features)
    start = time.perf_counter()
    prediction, rates = predict(net, normalisation, inputs, batch)
    seconds = time.perf_counter() - start
    metrics = stress_metrics(prediction, part.targets, normalisation) | {"spike_rates": rates, "inference_s": seconds}
    return {"prediction": prediction, "errors": per_path_errors(prediction, part.targets, normalisation), "metrics": metrics}


def _load_data(config: TrainConfig) -> Dataset:
    """The configured dataset: read from file (source recorded, generated paths mixed in if asked) or generated."""
    if isinstance(config.data, DataFile):
        data = Dataset.load(config.data.file)
        meta = {**data.meta, "source": str(config.data.file)}
        if config.data.mix is None:
            return Dataset(data.inputs, data.targets, data.strain, data.split, meta)
        mixed = generate(config.data.mix)
        return concatenate([data, mixed], {**meta, "generator": mixed.meta["generator"]})
    return generate(config.data)


def _artifact(config: TrainConfig, data: Dataset, result: TrainingResult, metrics: dict, start: Artifact | None) -> Artifact:
    """Artefact description with training provenance (start: the warm-start model's artefact, if any)."""
    model = None if start is None else config.warm_start.model
    warm_start = None if start is None else {
        "model": [str(p) for p in model] if isinstance(model, list) else str(model),
        "train_time_s": total_train_time(start),
        "config": start.training.get("config"),
        "ensemble_of": start.training.get("ensemble_of"),
    }
    training = {
        "config": config.model_dump(mode="json"),
        "seed": config.training.seed,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "train_time_s": result.train_time_s,
        "metrics": {"val": metrics["val"], "test": metrics["test"]},
        "warm_start": warm_start,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return Artifact.describe(result.net, result.normalisation, data.meta, training)


def _plot_split(result: dict, part: Dataset, paths_png: Path, errors_png: Path, samples: int) -> None:
    """Predicted vs reference paths and per-path errors of one evaluated split."""
    if samples > 0:
        plot_stress_paths(part.strain, part.targets, result["prediction"], part.meta["target_names"], paths_png, samples)
    plot_path_errors(result["errors"], errors_png)


def _write_json(path: Path, content: dict) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, indent=2, allow_nan=True))
    shutil.move(tmp, path)
