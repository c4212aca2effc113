"""Quantisation-aware fine-tuning: the torch fixed-point twin is the Loihi fixed-point network, and fine-tuning helps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from femsnn.cli import app
from femsnn.loihi.export import network_from_regressor
from femsnn.loihi.lava_worker.reference import simulate_fixed
from femsnn.loihi.qat import FixedPointRegressor, QATSettings, finetune, fixed_point_outputs, qat_report
from femsnn.snn.networks import SpikingRegressor
from femsnn.train.artifact import Artifact, load_model, save_model
from femsnn.train.data import IsotropicHardeningSettings, generate
from femsnn.train.harness import TrainingSettings, predict, train
from femsnn.train.metrics import stress_metrics

from .conftest import random_regressor


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("neuron", ["lif", "rlif", "slstm"])
def test_twin_equals_the_fixed_point_reference_bit_for_bit(neuron, reset):
    net = random_regressor(neuron, reset, seed=1)
    x = np.random.default_rng(0).standard_normal((3, 10, 2)) * 2
    expected = simulate_fixed(network_from_regressor(net), x)
    twin = FixedPointRegressor(net)
    with torch.no_grad():
        y = twin(torch.as_tensor(x))
    assert expected.spike_counts.sum() > 0
    np.testing.assert_array_equal(y.numpy(), expected.outputs)
    # step by step from a given (integer) state as well
    state = twin.init_state(3)
    with torch.no_grad():
        for t in range(4):
            y_t, state = twin.step(torch.as_tensor(x[:, t]), state)
    np.testing.assert_array_equal(y_t.numpy(), expected.outputs[:, 3])
    assert all(torch.equal(v, torch.round(v)) for v in state.values())


def test_twin_passes_gradients_to_every_parameter_and_needs_float64():
    net = random_regressor("slstm", seed=2)
    FixedPointRegressor(net)(torch.randn(2, 5, 2, dtype=torch.float64)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    with pytest.raises(TypeError, match="float64"):
        FixedPointRegressor(random_regressor("lif").float())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small SLSTM trained briefly on short isotropic-hardening paths, saved with its dataset."""
    folder = tmp_path_factory.mktemp("qat")
    data = generate(IsotropicHardeningSettings(generator="isotropic_hardening", n_train=32, n_val=16, n_test=16, steps=20))
    torch.manual_seed(0)
    net = SpikingRegressor(1, 1, "slstm", (8, 8), population=4)
    settings = TrainingSettings(epochs=15, batch_size=16, learning_rate=1e-2, seed=0, threads=1, progress=False)
    result = train(net, data, settings)
    model = save_model(folder / "model.pt", result.net, Artifact.describe(result.net, result.normalisation, data.meta, {}))
    return model, data.save(folder / "iso.npz"), data


@pytest.mark.slow
def test_finetuning_reduces_the_fixed_point_error_of_a_trained_network(trained):
    model, _, data = trained
    net, artifact = load_model(model)
    norm = artifact.normalisation
    test = data.part("test").inputs
    reference, _ = predict(net, norm, test)

    def fixed_error(candidate: SpikingRegressor) -> float:
        return stress_metrics(fixed_point_outputs(candidate, norm, test)[0], reference, norm)["eq14_all"]

    settings = QATSettings(epochs=6, batch_size=16, learning_rate=3e-4, progress=False, threads=1)
    tuned = finetune(net, norm, data.part("train").inputs, data.part("val").inputs, settings)
    assert tuned.history[0]["epoch"] == 0 and len(tuned.history) == 7
    assert tuned.best_epoch > 0
    before, after = fixed_error(net), fixed_error(tuned.net)
    assert before > 0.01 and after < 0.75 * before
    # the original model is left alone
    np.testing.assert_array_equal(predict(load_model(model)[0], norm, test)[0], reference)


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.usefixtures("lava_env")
def test_qat_report_compares_lava_and_numpy_fixed_point_before_and_after(trained, tmp_path):
    model, data_path, _ = trained
    settings = QATSettings(epochs=2, batch_size=16, learning_rate=3e-3, progress=False, threads=1)
    report = qat_report(model, data_path, tmp_path, settings, lava_paths=2)
    saved = json.loads((tmp_path / "qat.json").read_text())
    assert saved["fixed_after"]["vs_float"]["eq14_all"] == report["fixed_after"]["vs_float"]["eq14_all"]
    for name in ("lava_fixed_before", "lava_fixed_after"):
        assert report[name]["backend"] == "sim-fixed" and report[name]["max_abs_vs_numpy_reference_mpa"] == 0.0
    tuned, artifact = load_model(tmp_path / "model-qat.pt")
    assert artifact.dtype == "float64" and "quantisation_aware" in artifact.training
    assert (tmp_path / "network-qat.npz").is_file()


def test_qat_command_reports_a_missing_model_cleanly(tmp_path):
    result = CliRunner().invoke(app, ["qat", str(tmp_path / "missing.pt"), str(tmp_path / "data.npz"), "--epochs", "1"])
    assert result.exit_code == 2 and "model file not found" in result.output


def test_the_fixed_point_twin_refuses_a_skip_connection():
    with pytest.raises(TypeError, match="skip"):
        FixedPointRegressor(random_regressor("slstm", skip=True))
