"""The ``femsnn train`` config schema: strict keys, architecture checked early, paths relative to the file."""

import tomllib
from pathlib import Path

import pytest

from femsnn.config import ConfigError
from femsnn.train.config import DataFile, load_train_config

VALID = """
[data]
generator = "isotropic_hardening"
n_train = 16
increments = true

[model]
kind = "spiking"
neuron = "slstm"
hidden = [8, 8]
population = 4

[training]
epochs = 2
schedule = "onecycle"

[output]
dir = "run"
"""


def write(tmp_path, text):
    path = tmp_path / "cfg" / "train.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_valid_config_with_paths_relative_to_the_file(tmp_path):
    config = load_train_config(write(tmp_path, VALID))
    assert config.output.dir == tmp_path / "cfg" / "run"
    assert config.data.generator == "isotropic_hardening" and config.data.increments
    assert config.training.schedule == "onecycle" and config.training.learning_rate == 1e-3
    file_config = load_train_config(write(tmp_path, VALID.replace('generator = "isotropic_hardening"\nn_train = 16\nincrements = true', 'file = "../data.npz"')))
    assert isinstance(file_config.data, DataFile) and file_config.data.file == tmp_path / "cfg" / ".." / "data.npz"


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("epochs = 2", "epochs = 2\nlearning_rat = 1e-3", "training.learning_rat: unknown key"),
        ('schedule = "onecycle"', 'schedule = "step"', "training.schedule"),
        ('neuron = "slstm"', 'neuron = "izhikevich"', "neuron"),
        ("population = 4", "population = 4\nn_inputs = 3", "set by the data"),
        ("n_train = 16", "n_train = 0", "n_train"),
        ('dir = "run"', "", "output.dir"),
        ('kind = "spiking"', 'kind = "ensemble"', "femsnn ensemble"),
    ],
)
def test_bad_configs_name_the_offending_key(tmp_path, old, new, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(write(tmp_path, VALID.replace(old, new)))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "nope.toml")


REPOSITORY = Path(__file__).resolve().parents[2]
TRAIN_CONFIGS = [
    path
    for path in sorted([*REPOSITORY.glob("examples/*/*.toml"), *REPOSITORY.glob("benchmarks/paper/reduced/*.toml")])
    if "training" in tomllib.loads(path.read_text())
]


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: str(p.relative_to(REPOSITORY)))
def test_shipped_train_configs_are_valid(path):
    config = load_train_config(path)
    assert config.output.dir.is_relative_to(REPOSITORY)


def test_the_isotropic_surrogate_config_differs_from_the_shipped_one_only_by_augmentation():
    shipped, isotropic = (load_train_config(REPOSITORY / "examples" / "surrogate" / f"{n}.toml") for n in ("train", "train_isotropic"))
    assert isotropic.training.augment == "rotations" and shipped.training.augment == "none"
    assert isotropic.training.model_dump(exclude={"augment"}) == shipped.training.model_dump(exclude={"augment"})
    assert isotropic.model == shipped.model and isotropic.data == shipped.data


def test_the_trial_step_surrogate_config_is_the_cyclic_one_with_augmentation_and_trial_steps():
    cyclic, trial = (load_train_config(REPOSITORY / "examples" / "surrogate" / f"{n}.toml") for n in ("train_cyclic", "train_trial"))
    changed = {"augment", "trial_weight", "trial_points"}
    assert trial.training.augment == "rotations" and trial.training.trial_weight > 0 and cyclic.training.trial_weight == 0
    assert trial.training.model_dump(exclude=changed) == cyclic.training.model_dump(exclude=changed)
    assert trial.model == cyclic.model and trial.data.mix == cyclic.data.mix
    assert trial.data.file.parent.name == "harvest_large_steps"


def test_the_wide_surrogate_config_is_the_trial_one_wider_on_the_wide_harvest():
    trial, wide = (load_train_config(REPOSITORY / "examples" / "surrogate" / f"{n}.toml") for n in ("train_trial", "train_wide"))
    changed = {"epochs", "trial_increment_weight", "device", "seed"}
    assert (wide.training.epochs, wide.training.trial_increment_weight, wide.training.device) == (200, 10.0, "cuda")
    assert wide.training.model_dump(exclude=changed) == trial.training.model_dump(exclude=changed)
    assert wide.model["hidden"] == [256] and {**wide.model, "hidden": trial.model["hidden"]} == trial.model
    assert wide.data.mix == trial.data.mix and wide.data.file.parent.name == "harvest_wide"
