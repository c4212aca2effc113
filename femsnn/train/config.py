"""The ``femsnn train`` TOML file: [data], [model], [training], [output], validated before any work.

    [data]                       # either a generator with its settings (femsnn.train.data) ...
    generator = "isotropic_hardening"
    n_train = 2048
    increments = true
    # file = "datasets/iso.npz"  # ... or a dataset file written by Dataset.save,
    # mix = { generator = "j2_random_walk", ... }   # optionally with generated paths added

    [model]                      # a regressor spec without n_inputs / n_outputs (set by the data)
    kind = "spiking"             # or "lstm"
    neuron = "slstm"
    hidden = [64, 64, 64]
    population = 32
    skip = true                # optional: y = network + W x + b ([training] skip_init, skip_trainable)

    [training]                   # femsnn.train.harness.TrainingSettings
    epochs = 100

    [output]
    dir = "runs/iso"             # relative paths are relative to the config file

    [warm_start]                 # optional: start from a trained model of the same [model] and data features
    model = "runs/iso/model.pt"  # (fine-tuning: its weights, normalisation and skip connection are kept)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator

from femsnn.config import ConfigError, Strict, load_config, parse_config
from femsnn.snn.networks import build_regressor
from femsnn.train.data import GeneratorSettings
from femsnn.train.harness import TrainingSettings


def _resolve(path: Path, info: ValidationInfo) -> Path:
    """A relative path taken relative to the config file's folder."""
    base = (info.context or {}).get("base_dir")
    return path if path.is_absolute() or base is None else Path(base) / path


class DataFile(Strict):
    """``[data] file = ...``: a dataset written by :meth:`femsnn.train.data.Dataset.save` (e.g. by ``femsnn harvest``).

    ``mix``: generator settings whose paths are added to the file's, split by split (e.g. J2 random walks
    beside harvested FE paths); both must come from the same material (:func:`femsnn.train.data.concatenate`).
    """

    file: Path
    mix: GeneratorSettings | None = None

    @field_validator("file")
    @classmethod
    def _relative_to_config(cls, v: Path, info: ValidationInfo) -> Path:
        return _resolve(v, info)


def _data_kind(value: Any) -> str:
    """Tell a dataset-file section from a generator section."""
    keys = value if isinstance(value, dict) else vars(value)
    return "file" if "file" in keys else "generator"


DataSection = Annotated[
    Union[Annotated[GeneratorSettings, Tag("generator")], Annotated[DataFile, Tag("file")]],
    Discriminator(_data_kind),
]


class OutputSection(Strict):
    """``[output]``: folder for model.pt, checkpoint.pt, metrics.json, dataset.npz and plots."""

    dir: Path
    plot_samples: Annotated[int, Field(ge=0)] = 5

    @field_validator("dir")
    @classmethod
    def _relative_to_config(cls, v: Path, info: ValidationInfo) -> Path:
        return _resolve(v, info)


class WarmStart(Strict):
    """``[warm_start]``: a model file to fine-tune instead of training from the seed's random weights, or a list of
    two or more (e.g. seeds of one config) whose ensemble (``femsnn ensemble``) is fine-tuned as one network;
    [model] is then each member's architecture."""

    model: Path | list[Path]

    @field_validator("model")
    @classmethod
    def _relative_to_config(cls, v: Path | list[Path], info: ValidationInfo) -> Path | list[Path]:
        if isinstance(v, list):
            if len(v) < 2:
                raise ValueError(f"a list of warm-start models is an ensemble and needs at least 2, got {len(v)}")
            return [_resolve(path, info) for path in v]
        return _resolve(v, info)


class TrainConfig(Strict):
    """A whole ``femsnn train`` file."""

    data: DataSection
    model: dict
    training: TrainingSettings = TrainingSettings()
    output: OutputSection
    warm_start: WarmStart | None = None

    @field_validator("model")
    @classmethod
    def _valid_architecture(cls, v: dict) -> dict:
        """Check the architecture now (with placeholder sizes), so a typo fails before data generation."""
        if v.get("kind") == "ensemble":
            raise ValueError("an ensemble is not trained from scratch: train its members (e.g. other seeds), then combine "
                             "their model files with femsnn ensemble, or fine-tune them as one with [warm_start] model = [...]")
        given = {"n_inputs", "n_outputs"} & set(v)
        if given:
            raise ValueError(f"{sorted(given)} are set by the data, remove them")
        try:
            build_regressor({**v, "n_inputs": 1, "n_outputs": 1})
        except ConfigError as exc:
            raise ValueError(str(exc).replace("regressor spec: invalid configuration\n", "")) from None
        return v


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and validate a training config file (ConfigError names every bad key)."""
    return load_config(path, TrainConfig)


def parse_train_config(data: dict, base_dir: Path | None = None) -> TrainConfig:
    """Validate a training config given as a dict (e.g. a TOML file edited in code)."""
    return parse_config(data, TrainConfig, source="train config", base_dir=base_dir)
