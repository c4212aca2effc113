"""The model artefact: ONE file with a trained regressor and everything needed to use it as a material.

``torch.save`` of a dict of tensors, strings and numbers (read back with ``weights_only=True``):

    format      "femsnn-model"            version   ARTIFACT_VERSION
    weights     {name: tensor}            the network's state_dict
    normalisation {input_mean, input_std, target_mean, target_std}: float64 vectors
    metadata    JSON string: architecture spec, dtype, stress state, input features and names,
                target names, units ("MPa"), strain convention ("mandel"), normalisation mode,
                material and data it was trained for, training provenance (config, seed,
                epochs, metrics, time, git commit)
    sha256      checksum of all of the above (names, dtypes, shapes, bytes)

A consumer maps physical strain -> inputs (:func:`femsnn.train.data.strain_step_inputs`) ->
``normalisation.encode_inputs`` -> ``net.step`` -> ``normalisation.decode_targets`` -> stress (MPa).
:func:`load_model` refuses a damaged, truncated, foreign or inconsistent file with ModelFileError.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

import femsnn
from femsnn.snn.base import Regressor
from femsnn.snn.networks import EnsembleRegressor, SpikingRegressor, build_regressor, regressor_spec
from femsnn.train.normalisation import Normalisation

ARTIFACT_FORMAT = "femsnn-model"
ARTIFACT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that cannot be used (missing, damaged, foreign, inconsistent), with the reason."""


@dataclass(frozen=True)
class Artifact:
    """Everything in a model file except the weights."""

    spec: dict
    normalisation: Normalisation
    stress_state: str
    input_features: tuple[str, ...]
    input_names: tuple[str, ...]
    target_names: tuple[str, ...]
    dtype: str = "float32"
    material: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    units: str = "MPa"
    strain_convention: str = "mandel"

    @classmethod
    def describe(cls, net: Regressor, normalisation: Normalisation, dataset_meta: dict, training: dict) -> Artifact:
        """The artefact of net trained on a dataset (its metadata) with the given provenance."""
        return cls(
            spec=regressor_spec(net),
            normalisation=normalisation,
            stress_state=dataset_meta["stress_state"],
            input_features=tuple(dataset_meta["input_features"]),
            input_names=tuple(dataset_meta["input_names"]),
            target_names=tuple(dataset_meta["target_names"]),
            dtype=str(next(net.parameters()).dtype).removeprefix("torch."),
            material=dataset_meta.get("material", {}),
            data={"generator": dataset_meta.get("generator"), "source": dataset_meta.get("source")},
            training=training,
        )

    def check_stress_state(self, stress_state: str) -> None:
        """Raise ModelFileError unless the model was trained for this stress state."""
        if stress_state != self.stress_state:
            raise ModelFileError(f"model was trained for stress state {self.stress_state!r}, not {stress_state!r}")

    def metadata(self) -> dict:
        """The JSON-able part stored in the file."""
        return {
            "spec": self.spec,
            "dtype": self.dtype,
            "stress_state": self.stress_state,
            "input_features": list(self.input_features),
            "input_names": list(self.input_names),
            "target_names": list(self.target_names),
            "units": self.units,
            "strain_convention": self.strain_convention,
            "normalisation_mode": self.normalisation.mode,
            "material": self.material,
            "data": self.data,
            "training": self.training,
            "femsnn_version": femsnn.__version__,
        }


def save_model(path: str | Path, net: Regressor, artifact: Artifact) -> Path:
    """Write net and its artefact description to one file (parent folders created)."""
    if regressor_spec(net) != artifact.spec:
        raise ValueError("artifact.spec does not describe net")
    payload = {
        "metadata": json.dumps(artifact.metadata(), sort_keys=True),
        "weights": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
        "normalisation": {k: torch.as_tensor(v, dtype=torch.float64) for k, v in artifact.normalisation.to_arrays().items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": ARTIFACT_FORMAT, "version": ARTIFACT_VERSION, **payload, "sha256": _checksum(payload)}, tmp)
    tmp.replace(path)
    return path


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Regressor, Artifact]:
    """Rebuild the network (eval mode, stored dtype, on device) and its artefact; ModelFileError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or damaged files
        raise ModelFileError(f"{path}: not a readable model file (truncated or corrupted?): {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != ARTIFACT_FORMAT:
        raise ModelFileError(f"{path}: not a femsnn model file (no '{ARTIFACT_FORMAT}' format marker)")
    if raw.get("version") != ARTIFACT_VERSION:
        raise ModelFileError(f"{path}: model format version {raw.get('version')}, this femsnn reads version {ARTIFACT_VERSION}")
    payload = {k: raw.get(k) for k in ("metadata", "weights", "normalisation")}
    if not isinstance(payload["metadata"], str) or not all(isinstance(payload[k], dict) for k in ("weights", "normalisation")):
        raise ModelFileError(f"{path}: model file lacks metadata, weights or normalisation")
    if raw.get("sha256") != _checksum(payload):
        raise ModelFileError(f"{path}: checksum mismatch, the file is corrupted")
    try:
        artifact = _artifact(json.loads(payload["metadata"]), payload["normalisation"])
        net = build_regressor(artifact.spec).to(dtype=getattr(torch, artifact.dtype))  # before loading: no rounding
        net.load_state_dict(payload["weights"], strict=True)
        artifact = replace(artifact, spec=regressor_spec(net))  # with defaults of newer fields (e.g. skip)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: inconsistent model file: {exc}") from exc
    if (net.n_inputs, net.n_outputs) != (len(artifact.input_names), len(artifact.target_names)):
        raise ModelFileError(f"{path}: network maps {net.n_inputs} -> {net.n_outputs}, names list "
                             f"{len(artifact.input_names)} inputs and {len(artifact.target_names)} targets")
    net.to(device=torch.device(device)).eval()
    return net, artifact


#: ensemble members' normalisations may differ by this share of each standard deviation (rounding, not other data)
NORMALISATION_RTOL = 1e-9
#: what the members of an ensemble must share: they run as one material on the same physical inputs
_SHARED = ("stress_state", "input_features", "input_names", "target_names", "dtype", "material", "units", "strain_convention")


def combine_models(paths: Sequence[str | Path]) -> tuple[EnsembleRegressor, Artifact]:
    """One ensemble of the spiking models in paths (mean output); ModelFileError unless they share the
    stress state, inputs, targets, dtype, material, units and normalisation (to NORMALISATION_RTOL)."""
    if len(paths) < 2:
        raise ModelFileError(f"an ensemble needs at least 2 model files, got {len(paths)}")
    if len({Path(p).resolve() for p in paths}) != len(paths):
        raise ModelFileError(f"the same model file is named twice in {[str(p) for p in paths]}")
    loaded = [load_model(path) for path in paths]
    first = loaded[0][1]
    for path, (net, artifact) in zip(paths, loaded):
        if not isinstance(net, SpikingRegressor):
            raise ModelFileError(f"{path}: only spiking regressors can be ensemble members, this is a {type(net).__name__}")
        differ = [name for name in _SHARED if getattr(artifact, name) != getattr(first, name)]
        same_norm = _same_normalisation(artifact.normalisation, first.normalisation)
        if differ or not same_norm:
            raise ModelFileError(f"{path}: differs from {paths[0]} in {differ + ([] if same_norm else ['normalisation'])}; "
                                 "ensemble members must be trained on the same data")
    members = [
        {"model": str(path), "seed": a.training.get("seed"), "train_time_s": total_train_time(a), "git_commit": a.training.get("git_commit")}
        for path, (_, a) in zip(paths, loaded)
    ]
    net = EnsembleRegressor([n for n, _ in loaded])
    times = [m["train_time_s"] for m in members]
    training = {
        "ensemble_of": members,
        "train_time_s": None if None in times else sum(times),
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return net, replace(first, spec=regressor_spec(net), training=training)


def _same_normalisation(a: Normalisation, b: Normalisation) -> bool:
    """Same mode, and means and standard deviations equal to NORMALISATION_RTOL of the standard deviations (the
    statistics of one dataset regenerated elsewhere differ in the last bits)."""
    if a.mode != b.mode or (a.n_inputs, a.n_outputs) != (b.n_inputs, b.n_outputs):
        return False
    pairs = [(a.input_mean, b.input_mean, b.input_std), (a.input_std, b.input_std, b.input_std),
             (a.target_mean, b.target_mean, b.target_std), (a.target_std, b.target_std, b.target_std)]
    return all(np.all(np.abs(np.asarray(x) - np.asarray(y)) <= NORMALISATION_RTOL * np.asarray(scale)) for x, y, scale in pairs)


def total_train_time(artifact: Artifact) -> float | None:
    """Training time of a model including the model(s) it was fine-tuned from (seconds, summed), if recorded."""
    own = artifact.training.get("train_time_s")
    start = (artifact.training.get("warm_start") or {}).get("train_time_s") or 0.0
    return None if own is None else own + start


def git_commit() -> str | None:
    """The commit of the femsnn source tree, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(femsnn.__file__).parent), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _artifact(meta: dict, normalisation: dict) -> Artifact:
    """Artifact from stored metadata and normalisation tensors (KeyError/ValueError if incomplete)."""
    norm = Normalisation.from_arrays(normalisation, meta["normalisation_mode"])
    if (norm.n_inputs, norm.n_outputs) != (len(meta["input_names"]), len(meta["target_names"])):
        raise ValueError("normalisation sizes do not match the input and target names")
    if meta["dtype"] not in ("float32", "float64"):
        raise ValueError(f"unsupported dtype {meta['dtype']!r}")
    return Artifact(
        spec=meta["spec"],
        normalisation=norm,
        stress_state=meta["stress_state"],
        input_features=tuple(meta["input_features"]),
        input_names=tuple(meta["input_names"]),
        target_names=tuple(meta["target_names"]),
        dtype=meta["dtype"],
        material=meta["material"],
        data=meta["data"],
        training=meta["training"],
        units=meta["units"],
        strain_convention=meta["strain_convention"],
    )


def _checksum(payload: dict) -> str:
    """SHA-256 over the metadata string and every tensor's name, dtype, shape and bytes (sorted by name)."""
    h = hashlib.sha256(payload["metadata"].encode())
    for group in ("weights", "normalisation"):
        for name in sorted(payload[group]):
            tensor = payload[group][name]
            if not isinstance(tensor, torch.Tensor):
                raise ModelFileError(f"model file entry {group}/{name} is not a tensor")
            arr = tensor.detach().cpu().contiguous().numpy()
            h.update(f"{group}/{name}|{arr.dtype.str}|{arr.shape}".encode())
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()
