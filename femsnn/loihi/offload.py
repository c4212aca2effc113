"""``femsnn offload MODEL DATA``: run a trained spiking model on Loihi (or Lava's simulation of it).

Exports the model (:mod:`femsnn.loihi.export`), streams paths of one dataset split through a
:class:`~femsnn.loihi.worker.LavaWorker`, and writes ``offload.json``: which backend ran, time per
step, spike counts per layer, the stress metrics of the Lava run and of the torch model on the same
paths, and how far the two differ.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from femsnn.loihi.export import export_regressor
from femsnn.loihi.worker import Backend, LavaWorker
from femsnn.snn.networks import EnsembleRegressor, SpikingRegressor
from femsnn.train.artifact import Artifact
from femsnn.train.data import Dataset
from femsnn.train.harness import predict
from femsnn.train.metrics import stress_metrics
from femsnn.train.workflow import load_model_and_data


def offload_model(
    model_path: str | Path,
    data_path: str | Path,
    out_dir: str | Path,
    *,
    backend: Backend = "auto",
    split: str = "test",
    paths: int = 16,
    timeout: float | None = None,
    progress: bool = True,
) -> dict:
    """Run the first ``paths`` paths of a split through Lava and torch; write and return the report."""
    if paths < 1:
        raise ValueError(f"paths must be at least 1, got {paths}")
    net, artifact, data = spiking_model_and_data(model_path, data_path, "offloading to Loihi")
    part = data.part(split)
    inputs, targets = part.inputs_for(artifact.input_features)[:paths], part.targets[:paths]
    norm = artifact.normalisation
    torch_prediction, _ = predict(net, norm, inputs)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    network = export_regressor(net, out / "network.npz", norm)
    total_steps = inputs.shape[0] * inputs.shape[1]
    with LavaWorker(network, backend=backend, timeout=timeout) as worker, tqdm(
        total=total_steps, desc=f"Lava {worker.backend}", unit="step", disable=not progress
    ) as bar:
        result = worker.run(inputs, progress=lambda done, total: bar.update(min(done, total_steps) - bar.n))
        bar.update(total_steps - bar.n)
        info, versions = worker.info, worker.versions

    difference = np.linalg.norm(result.outputs - torch_prediction, axis=-1)
    layer_sizes = list(net.hidden)
    counts = result.spike_counts.sum(axis=(0, 1))
    report = {
        **run_header(model_path, data_path, split, inputs),
        "backend_requested": backend,
        "backend": result.backend,
        "lava": {"version": versions["lava"], "lava_loihi": versions["lava_loihi"], "processes": info["processes"]},
        "build_s": info["build_seconds"],
        "run_s": result.seconds,
        "seconds_per_lava_step": result.seconds / (total_steps + info["output_delay"]),
        "spikes_per_layer": [int(c) for c in counts],
        "spike_rates": {f"layer{i}": float(c / (total_steps * n)) for i, (c, n) in enumerate(zip(counts, layer_sizes))},
        "metrics_lava": stress_metrics(result.outputs, targets, norm),
        "metrics_torch": stress_metrics(torch_prediction, targets, norm),
        "lava_vs_torch": {"max_mpa": float(difference.max()), "rmse_mpa": float(np.sqrt(np.mean(difference**2)))},
        "network_file": str(network),
    }
    (out / "offload.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def spiking_model_and_data(model_path: str | Path, data_path: str | Path, purpose: str) -> tuple[SpikingRegressor, Artifact, Dataset]:
    """:func:`~femsnn.train.workflow.load_model_and_data` for a spiking model; ValueError naming purpose otherwise."""
    net, artifact, data = load_model_and_data(model_path, data_path)
    if not isinstance(net, SpikingRegressor):
        hint = " (an ensemble runs as its members: the model files in its training.ensemble_of)" if isinstance(net, EnsembleRegressor) else ""
        raise ValueError(f"{model_path}: {purpose} needs a single spiking model, this one is {type(net).__name__}{hint}")
    return net, artifact, data


def run_header(model_path: str | Path, data_path: str | Path, split: str, inputs: np.ndarray) -> dict:
    """The first entries of a report on a model run over paths (P, T, n) of a dataset split."""
    return {"model": str(model_path), "data": str(data_path), "split": split, "paths": int(inputs.shape[0]), "steps_per_path": int(inputs.shape[1])}
