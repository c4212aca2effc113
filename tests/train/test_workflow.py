"""``femsnn train`` / ``femsnn evaluate`` end to end on a tiny config, including a real kill and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from femsnn.cli import app
from femsnn.config import ConfigError
from femsnn.train.artifact import combine_models, load_model
from femsnn.train.data import Dataset
from femsnn.train.harness import predict
from femsnn.train.workflow import run_training_from_file

TINY = """
[data]
generator = "isotropic_hardening"
steps = 12
n_train = 24
n_val = 8
n_test = 8
increments = true

[model]
kind = "spiking"
neuron = "slstm"
hidden = [8, 8]
population = 4

[training]
epochs = {epochs}
batch_size = 8
learning_rate = 1e-2
threads = 1
progress = false

[output]
dir = "{out}"
plot_samples = 2
"""


def config(tmp_path, name, epochs=2):
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY.format(epochs=epochs, out=name))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run trained through the CLI: its folder."""
    tmp_path = tmp_path_factory.mktemp("trained")
    result = CliRunner().invoke(app, ["train", str(config(tmp_path, "run"))])
    assert result.exit_code == 0, result.output
    return tmp_path / "run"


@pytest.fixture(scope="module")
def second_seed(tmp_path_factory):
    """The tiny run of the trained fixture with another seed: its folder (same data, same normalisation)."""
    tmp_path = tmp_path_factory.mktemp("seed2")
    path = config(tmp_path, "run")
    path.write_text(path.read_text().replace("threads = 1", "threads = 1\nseed = 2"))
    return run_training_from_file(path).output_dir


@pytest.mark.slow
def test_train_then_evaluate_writes_artefact_metrics_and_plots(trained, tmp_path):
    out = trained
    for name in ("model.pt", "checkpoint.pt", "dataset.npz", "metrics.json", "learning_curve.png", "test_paths.png", "test_path_errors.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and metrics["epochs_run"] == 2
    for key in ("code_all", "code_last", "eq14_all", "eq14_last", "rmse_mpa_all", "max_mpa_last", "median_mpa_all"):
        assert metrics["test"][key] >= 0
    net, artifact = load_model(out / "model.pt")
    assert artifact.input_features == ("strain", "strain_increment") and artifact.stress_state == "uniaxial_stress"
    assert artifact.training["metrics"]["test"] == metrics["test"]
    assert artifact.training["config"]["model"]["hidden"] == [8, 8]

    result = CliRunner().invoke(app, ["evaluate", str(out / "model.pt"), str(out / "dataset.npz"), "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    evaluated = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert evaluated["code_all"] == pytest.approx(metrics["test"]["code_all"], rel=1e-12)
    assert evaluated["paths"] == 8
    assert (tmp_path / "ev" / "paths.png").is_file() and (tmp_path / "ev" / "path_errors.png").is_file()
    branch = evaluated["branch_step_rmse_mpa"]  # at the full step: the paths' own error
    assert branch["all"]["1"] == pytest.approx(evaluated["rmse_mpa_all"], rel=1e-5) and set(branch["large"]) == set(branch["all"])
    assert "what Newton asks" in result.output and "the slope Newton sees" in result.output
    assert set(branch["all_change"]) == set(branch["all"]) and branch["all_change"]["0"] > 0


@pytest.mark.slow
def test_evaluate_on_data_without_increments_rebuilds_them_and_refuses_other_stress_states(trained, tmp_path):
    runner = CliRunner()
    data = Dataset.load(trained / "dataset.npz")
    plain = Dataset(data.strain, data.targets, data.strain, data.split,
                    {**data.meta, "input_features": ["strain"], "input_names": ["strain_xx"]})
    plain.save(tmp_path / "plain.npz")
    result = runner.invoke(app, ["evaluate", str(trained / "model.pt"), str(tmp_path / "plain.npz"), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    b = runner.invoke(app, ["evaluate", str(trained / "model.pt"), str(trained / "dataset.npz"), "--out", str(tmp_path / "b")])
    assert b.exit_code == 0
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["code_all"] == json.loads((tmp_path / "b" / "metrics.json").read_text())["code_all"]
    other = Dataset(data.inputs, data.targets, data.strain, data.split, {**data.meta, "stress_state": "plane_strain"})
    other.save(tmp_path / "other.npz")
    result = runner.invoke(app, ["evaluate", str(trained / "model.pt"), str(tmp_path / "other.npz")])
    assert result.exit_code == 2 and "stress state" in result.output


def test_bad_config_fails_cleanly_before_any_output(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(TINY.format(epochs=2, out="never").replace("threads = 1", "threads = 1\nbogus = 3"))
    result = CliRunner().invoke(app, ["train", str(path)])
    assert result.exit_code == 2
    assert "training.bogus: unknown key" in result.output
    assert not (tmp_path / "never").exists()
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "none.pt"), str(tmp_path / "none.npz")])
    assert result.exit_code == 2 and "model file not found" in result.output


@pytest.mark.slow
def test_killed_training_process_resumes_to_the_uninterrupted_result(tmp_path):
    command = [sys.executable, "-m", "femsnn.cli", "train"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_training_from_file(config(tmp_path, "whole", epochs=6))  # uninterrupted, in this process

    killed = config(tmp_path, "killed", epochs=6)
    proc = subprocess.Popen([*command, str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not (tmp_path / "killed" / "model.pt").exists()
    subprocess.run([*command, str(killed)], check=True, env=env, capture_output=True)

    # float32 GEMMs in two processes may differ in the last bit (BLAS kernels depend on buffer alignment), so the
    # runs agree to rounding; a resume that lost the optimiser, schedule or RNG state would differ far more
    whole, _ = load_model(tmp_path / "whole" / "model.pt")
    resumed, _ = load_model(tmp_path / "killed" / "model.pt")
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=1e-5, atol=1e-6)
    killed_history, whole_history = (json.loads((tmp_path / d / "metrics.json").read_text())["history"] for d in ("killed", "whole"))
    assert len(killed_history) == len(whole_history)
    for k, w in zip(killed_history, whole_history):
        assert k.pop("val_spike_rates") == pytest.approx(w.pop("val_spike_rates"), rel=1e-5)
        assert {n: v for n, v in k.items() if n != "time_s"} == pytest.approx({n: v for n, v in w.items() if n != "time_s"}, rel=1e-5)


def test_warm_start_continues_from_the_model_and_refuses_another_architecture(tmp_path):
    base_cfg = config(tmp_path, "base")
    base_cfg.write_text(base_cfg.read_text().replace("population = 4", "population = 4\nskip = true"))
    base = run_training_from_file(base_cfg)
    fine_text = base_cfg.read_text().replace('dir = "base"', 'dir = "fine"').replace("learning_rate = 1e-2", "learning_rate = 1e-12")
    fine_text += '\n[warm_start]\nmodel = "base/model.pt"\n'
    fine_cfg = tmp_path / "fine.toml"
    fine_cfg.write_text(fine_text.replace("epochs = 2", "epochs = 1"))
    fine = run_training_from_file(fine_cfg)

    start_net, start = load_model(base.model_path)
    net, artifact = load_model(fine.model_path)
    data = Dataset.load(fine.output_dir / "dataset.npz").part("test")
    x = torch.as_tensor(start.normalisation.encode_inputs(data.inputs), dtype=torch.float32)
    # a negligible learning rate: the fine-tuned model is the start model (weights, skip and normalisation kept)
    torch.testing.assert_close(net(x), start_net(x), rtol=1e-5, atol=1e-5)
    assert artifact.normalisation.to_arrays().keys() == start.normalisation.to_arrays().keys()
    for k, v in start.normalisation.to_arrays().items():
        assert (artifact.normalisation.to_arrays()[k] == v).all()
    assert artifact.training["warm_start"]["model"].endswith("base/model.pt")
    assert artifact.training["warm_start"]["train_time_s"] == pytest.approx(base.metrics["train_time_s"])

    other = tmp_path / "other.toml"
    other.write_text(fine_text.replace("hidden = [8, 8]", "hidden = [8, 4]").replace('dir = "fine"', 'dir = "other"'))
    with pytest.raises(ValueError, match=r"differs from \[model\] in \['hidden"):
        run_training_from_file(other)
    assert not (tmp_path / "other").exists()  # refused before any output


@pytest.mark.slow
def test_ensemble_of_two_seeds_evaluates_as_the_mean_of_their_stresses(trained, second_seed, tmp_path):
    models = [trained / "model.pt", second_seed / "model.pt"]
    runner = CliRunner()
    result = runner.invoke(app, ["ensemble", *map(str, models), "--out", str(tmp_path / "ensemble.pt")])
    assert result.exit_code == 0, result.output
    data = Dataset.load(trained / "dataset.npz")
    test = data.part("test")
    stresses = []
    for path in [*models, tmp_path / "ensemble.pt"]:
        net, artifact = load_model(path)
        stresses.append(predict(net, artifact.normalisation, test.inputs)[0])
    np.testing.assert_allclose(stresses[2], (stresses[0] + stresses[1]) / 2, rtol=1e-5, atol=1e-4)
    result = runner.invoke(app, ["evaluate", str(tmp_path / "ensemble.pt"), str(trained / "dataset.npz"), "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output

    other = config(tmp_path, "other_data")  # 8 more training paths: another normalisation
    other.write_text(other.read_text().replace("n_train = 24", "n_train = 32"))
    run_training_from_file(other)
    result = runner.invoke(app, ["ensemble", str(models[0]), str(tmp_path / "other_data" / "model.pt"), "--out", str(tmp_path / "bad.pt")])
    assert result.exit_code == 2 and "normalisation" in result.output and not (tmp_path / "bad.pt").exists()


@pytest.mark.slow
def test_warm_start_from_a_list_fine_tunes_the_ensemble_as_one_network(trained, second_seed, tmp_path):
    members = [trained / "model.pt", second_seed / "model.pt"]
    fine_text = TINY.format(epochs=1, out="fine").replace("learning_rate = 1e-2", "learning_rate = 1e-12")
    fine_cfg = tmp_path / "fine.toml"
    fine_cfg.write_text(fine_text + f'\n[warm_start]\nmodel = ["{members[0]}", "{members[1]}"]\n')
    fine = run_training_from_file(fine_cfg)

    start_net, start = combine_models(members)
    net, artifact = load_model(fine.model_path)
    assert artifact.spec == start.spec and artifact.spec["kind"] == "ensemble"
    data = Dataset.load(fine.output_dir / "dataset.npz").part("test")
    x = torch.as_tensor(start.normalisation.encode_inputs(data.inputs), dtype=torch.float32)
    with torch.no_grad():  # a negligible learning rate: the fine-tuned ensemble is the start
        torch.testing.assert_close(net(x), start_net(x), rtol=1e-5, atol=1e-5)
    assert artifact.training["warm_start"]["model"] == [str(m) for m in members]
    assert artifact.training["warm_start"]["train_time_s"] == pytest.approx(start.training["train_time_s"])

    other = tmp_path / "other.toml"
    other.write_text(fine_cfg.read_text().replace("hidden = [8, 8]", "hidden = [8, 4]").replace('dir = "fine"', 'dir = "other"'))
    with pytest.raises(ValueError, match=r"differs from \[model\] in \['hidden"):
        run_training_from_file(other)
    one = tmp_path / "one.toml"
    one.write_text(fine_text.replace('dir = "fine"', 'dir = "one"') + f'\n[warm_start]\nmodel = ["{members[0]}"]\n')
    with pytest.raises(ConfigError, match="at least 2"):
        run_training_from_file(one)
