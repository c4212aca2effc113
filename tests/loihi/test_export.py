"""Export of torch spiking regressors: file round trip without pickles, and the numpy float reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from femsnn.loihi.export import export_regressor, network_from_regressor
from femsnn.loihi.lava_worker.network import FORMAT_VERSION, NetworkFormatError, load_network, save_network
from femsnn.loihi.lava_worker.reference import simulate_float
from femsnn.snn.networks import LSTMRegressor
from femsnn.train.normalisation import Normalisation

from .conftest import normalisation, random_regressor, torch_run


@pytest.mark.parametrize("neuron", ["lif", "rlif", "slstm"])
def test_file_round_trip_without_pickle(tmp_path, neuron):
    net = random_regressor(neuron)
    path = export_regressor(net, tmp_path / "net.npz", normalisation())
    with np.load(path, allow_pickle=False) as data:
        manifest = json.loads(str(data["manifest"]))
        assert all(data[key].dtype == np.float64 for key in data.files if key != "manifest")
        layer0 = net.layer0
        if neuron == "slstm":
            np.testing.assert_array_equal(data["layer0.input_weight"], layer0.lstm_cell.weight_ih.detach().numpy())
            np.testing.assert_array_equal(data["layer0.recurrent_weight"], layer0.lstm_cell.weight_hh.detach().numpy())
        else:
            np.testing.assert_array_equal(data["layer0.input_weight"], layer0.linear.weight.detach().numpy())
            np.testing.assert_array_equal(data["layer0.beta"], layer0.beta.detach().numpy())
        np.testing.assert_array_equal(data["decoder1.weight"], net.decoder.linear2.weight.detach().numpy())
        np.testing.assert_array_equal(data["output_std"], normalisation().target_std)
    assert manifest["format_version"] == FORMAT_VERSION
    assert [layer["kind"] for layer in manifest["layers"]] == [neuron, neuron]
    assert [layer["n_neurons"] for layer in manifest["layers"]] == [8, 6]
    assert manifest["decoder"]["population"] == 4 and manifest["n_outputs"] == 3
    assert "delay" in manifest["delay_convention"] and "constant current" in manifest["time_step"]

    loaded = load_network(path)
    again = tmp_path / "again.npz"
    save_network(again, loaded)
    assert load_network(again).layers[1].threshold.tolist() == loaded.layers[1].threshold.tolist()


def test_skip_connection_round_trips_and_version_1_files_still_load(tmp_path):
    net = random_regressor("slstm", skip=True)
    path = export_regressor(net, tmp_path / "net.npz", normalisation())
    loaded = load_network(path)
    np.testing.assert_array_equal(loaded.skip.weight, net.skip.weight.detach().numpy())
    np.testing.assert_array_equal(loaded.skip.bias, net.skip.bias.detach().numpy())
    plain = export_regressor(random_regressor("slstm"), tmp_path / "plain.npz")
    with np.load(plain) as data:
        arrays = {k: data[k] for k in data.files}
    manifest = json.loads(str(arrays["manifest"]))
    assert manifest["skip"] is None
    old = {k: v for k, v in manifest.items() if k != "skip"} | {"format_version": 1}
    np.savez(tmp_path / "v1.npz", **{**arrays, "manifest": np.array(json.dumps(old))})
    assert load_network(tmp_path / "v1.npz").skip is None


def test_export_clamps_beta_as_the_forward_pass_does(tmp_path):
    net = random_regressor("lif")
    with torch.no_grad():
        net.layer1.beta[0], net.layer1.beta[1] = 1.5, -0.5
    exported = network_from_regressor(net)
    assert exported.layers[1].beta[0] == 1.0 and exported.layers[1].beta[1] == 0.0


@pytest.mark.parametrize("neuron", ["lif", "rlif", "slstm"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("skip", [False, True])
def test_numpy_reference_equals_torch(neuron, reset, skip):
    net, norm = random_regressor(neuron, reset, skip=skip), normalisation()
    x = np.random.default_rng(1).standard_normal((3, 12, 2)) * norm.input_std + norm.input_mean
    expected, counts = torch_run(net, norm, x)
    exported = network_from_regressor(net, norm)
    sim = simulate_float(exported, exported.standardise_inputs(x))
    assert counts.sum() > 0
    np.testing.assert_array_equal(sim.spike_counts, counts)
    np.testing.assert_allclose(exported.physical_outputs(sim.outputs), expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_only_spiking_regressors_export():
    with pytest.raises(TypeError, match="spiking"):
        network_from_regressor(LSTMRegressor(2, 3, hidden=4, layers=1, population=2))


def test_normalisation_must_match_the_network():
    with pytest.raises(ValueError, match="normalisation"):
        network_from_regressor(random_regressor("lif"), Normalisation(np.zeros(1), np.ones(1), np.zeros(3), np.ones(3)))


def test_foreign_or_damaged_files_are_refused(tmp_path):
    path = export_regressor(random_regressor("lif"), tmp_path / "net.npz")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    manifest = json.loads(str(arrays["manifest"]))

    newer = tmp_path / "newer.npz"
    np.savez(newer, **{**arrays, "manifest": np.array(json.dumps({**manifest, "format_version": FORMAT_VERSION + 1}))})
    with pytest.raises(NetworkFormatError, match="version"):
        load_network(newer)

    skip_manifest = {**manifest, "skip": {"n_inputs": 2, "n_outputs": 3}}
    no_skip_arrays = tmp_path / "no_skip_arrays.npz"
    np.savez(no_skip_arrays, **{**arrays, "manifest": np.array(json.dumps(skip_manifest))})
    with pytest.raises(NetworkFormatError, match="skip.weight"):
        load_network(no_skip_arrays)

    wrong_shape = tmp_path / "wrong_shape.npz"
    np.savez(wrong_shape, **{**arrays, "layer1.bias": np.zeros(5)})
    with pytest.raises(NetworkFormatError, match="layer1: bias"):
        load_network(wrong_shape)

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{**arrays, "layer0.bias": np.array([object()], dtype=object)})
    with pytest.raises(NetworkFormatError, match="pickle"):
        load_network(pickled)

    not_npz = tmp_path / "text.npz"
    not_npz.write_text("hello")
    with pytest.raises(NetworkFormatError):
        load_network(not_npz)
