"""``femsnn offload``: a saved spiking model run through the Lava worker against its torch self."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from femsnn.cli import app
from femsnn.snn.networks import SpikingRegressor
from femsnn.train.artifact import Artifact, save_model
from femsnn.train.data import IsotropicHardeningSettings, generate
from femsnn.train.normalisation import Normalisation

pytestmark = [pytest.mark.lava, pytest.mark.slow, pytest.mark.usefixtures("lava_env")]


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    """A small untrained float64 SLSTM model file and an isotropic-hardening dataset file."""
    folder = tmp_path_factory.mktemp("offload")
    data = generate(IsotropicHardeningSettings(generator="isotropic_hardening", n_train=4, n_val=2, n_test=3, steps=8))
    norm = Normalisation.fit(data.part("train").inputs, data.part("train").targets)
    net = SpikingRegressor(1, 1, neuron="slstm", hidden=(6, 5), population=4).double()
    model = save_model(folder / "model.pt", net, Artifact.describe(net, norm, data.meta, training={}))
    return model, data.save(folder / "data.npz")


def test_offload_writes_a_report_matching_torch(tmp_path, model_and_data):
    model, data = model_and_data
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["offload", str(model), str(data), "--backend", "sim-float", "--paths", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "offload.json").read_text())
    assert report["backend"] == "sim-float" and report["paths"] == 2 and report["steps_per_path"] == 8
    assert len(report["spikes_per_layer"]) == 2
    assert report["lava_vs_torch"]["max_mpa"] <= 1e-6 * report["metrics_torch"]["max_mpa_all"] + 1e-9
    assert report["metrics_lava"]["rmse_mpa_all"] == pytest.approx(report["metrics_torch"]["rmse_mpa_all"], rel=1e-9)
    assert "sim-float" in result.output


def test_offload_refuses_an_unknown_backend(tmp_path, model_and_data):
    model, data = model_and_data
    result = CliRunner().invoke(app, ["offload", str(model), str(data), "--backend", "gpu", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "backend must be one of" in result.output
