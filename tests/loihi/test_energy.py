"""Energy estimates: operation counts from spike counts, keras-spiking constants, the report and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from femsnn.cli import app
from femsnn.loihi.energy import DEVICES, energy_report, lstm_ops, spiking_ops, torch_spike_counts
from femsnn.loihi.export import network_from_regressor
from femsnn.snn.networks import SpikingRegressor
from femsnn.train.artifact import Artifact, save_model
from femsnn.train.data import IsotropicHardeningSettings, generate
from femsnn.train.normalisation import Normalisation

from .conftest import random_regressor

#: spikes of layer0 (8 neurons) and layer1 (6 neurons) at 3 steps of 2 paths
SPIKES = np.array([[[1, 0], [3, 2], [0, 1]], [[2, 2], [4, 0], [5, 6]]])


def test_rlif_counts_and_energy_follow_the_formula():
    # rlif 2 -> 8 -> 6, decoder 6 -> 6 -> 12 (3 outputs x population 4)
    net = network_from_regressor(random_regressor("rlif"))
    steps = SPIKES.shape[0] * SPIKES.shape[1]
    mean0, mean1 = SPIKES[..., 0].sum() / steps, SPIKES[..., 1].sum() / steps
    previous0, previous1 = SPIKES[:, :-1, 0].sum() / steps, SPIKES[:, :-1, 1].sum() / steps
    expected = {
        # name: (dense connections, Loihi events, neuron updates) per step
        "layer0": (2 * 8 + 8 * 8, 2 * 8 + previous0 * 8, 8),
        "layer1": (8 * 6 + 6 * 6, mean0 * 6 + previous1 * 6, 6),
        "decoder0": (6 * 6, 6 * 6, 6),
        "decoder1": (6 * 12 + 12, 6 * 12 + 12, 12),
    }
    ops = {o.name: o for o in spiking_ops(net, SPIKES)}
    assert list(ops) == list(expected)
    for name, (connections, events, neurons) in expected.items():
        assert (ops[name].connections, ops[name].neuron_updates) == (connections, neurons)
        assert ops[name].events == pytest.approx(events, rel=1e-12)
    assert ops["layer1"].spikes == pytest.approx(mean1)

    report = energy_report(net, SPIKES)
    loihi = sum(27.1e-12 * e + 81e-12 * n for _, e, n in expected.values())
    gpu = sum(0.3e-9 * (c + n) for c, _, n in expected.values())
    cpu = sum(8.6e-9 * (c + n) for c, _, n in expected.values())
    per_step = report["spiking"]["energy_per_step_j"]
    assert per_step == pytest.approx({"loihi": loihi, "gpu": gpu, "cpu": cpu}, rel=1e-12)
    assert report["spiking"]["energy_run_j"]["loihi"] == pytest.approx(loihi * steps, rel=1e-12)
    assert report["spiking"]["energy_per_path_j"]["gpu"] == pytest.approx(gpu * 3, rel=1e-12)
    rows = {(r["model"], r["device"]): r for r in report["table"]}
    assert rows[("spiking", "cpu")]["ratio_to_spiking_on_loihi"] == pytest.approx(cpu / loihi)


def test_slstm_sends_graded_membranes_and_the_lstm_counts_dense_macs():
    net = network_from_regressor(random_regressor("slstm"))
    layer1 = spiking_ops(net, SPIKES)[1]
    # 4 gates x 6 units fed by layer0's spikes, the real membrane fed back by all 6 units, 3 gate products per unit
    assert layer1.events == pytest.approx(SPIKES[..., 0].mean() * 24 + 6 * 24 + 3 * 6)
    assert layer1.connections == 8 * 24 + 6 * 24 + 3 * 6 and layer1.neuron_updates == 5 * 6
    lstm = lstm_ops(1, (4, 4), n_outputs=1, population=2)
    assert [o.connections for o in lstm] == [4 * 4 * (1 + 4) + 12, 4 * 4 * (4 + 4) + 12, 16, 4 * 2 + 2]
    assert [o.neuron_updates for o in lstm] == [20, 20, 4, 0]


def test_a_skip_connection_counts_its_macs_on_every_device():
    plain = {o.name: o for o in spiking_ops(network_from_regressor(random_regressor("slstm")), SPIKES)}
    ops = {o.name: o for o in spiking_ops(network_from_regressor(random_regressor("slstm", skip=True)), SPIKES)}
    assert list(ops) == [*plain, "skip"]
    skip = ops["skip"]  # 2 inputs -> 3 outputs, one addition per output into the vote, one memoryless integrator per output
    assert (skip.connections, skip.events, skip.neuron_updates) == (2 * 3 + 3, 2 * 3 + 3, 3)
    lstm = lstm_ops(2, (4,), n_outputs=3, population=2, skip=True)
    assert lstm[-1].name == "skip" and lstm[-1].connections == 2 * 3 + 3
    report = energy_report(network_from_regressor(random_regressor("slstm", skip=True)), SPIKES)
    assert report["spiking"]["architecture"]["skip"] and report["lstm"]["architecture"]["skip"]


def test_bad_spike_counts_are_refused():
    net = network_from_regressor(random_regressor("lif"))
    with pytest.raises(ValueError, match="shape"):
        spiking_ops(net, np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="negative"):
        spiking_ops(net, -np.ones((2, 3, 2)))


def test_torch_spike_counts_are_the_spikes_of_each_layer():
    net = random_regressor("lif")
    counts = torch_spike_counts(net, np.random.default_rng(0).standard_normal((3, 4, 2)))
    assert counts.shape == (3, 4, 2) and counts.sum() > 0 and counts[..., 0].max() <= 8 and counts[..., 1].max() <= 6


def test_energy_command_writes_the_report_with_constants_sources_and_plot(tmp_path):
    data = generate(IsotropicHardeningSettings(generator="isotropic_hardening", n_train=4, n_val=2, n_test=3, steps=6))
    data_path = data.save(tmp_path / "iso.npz")
    train = data.part("train")
    torch.manual_seed(0)
    net = SpikingRegressor(1, 1, "slstm", (8, 8), population=4)
    model = save_model(tmp_path / "model.pt", net, Artifact.describe(net, Normalisation.fit(train.inputs, train.targets), data.meta, {}))
    result = CliRunner().invoke(app, ["energy", str(model), str(data_path), "--out", str(tmp_path / "energy"), "--paths", "2"])
    assert result.exit_code == 0, result.output
    assert "Loihi" in result.output
    report = json.loads((tmp_path / "energy" / "energy.json").read_text())
    assert (tmp_path / "energy" / "energy.png").stat().st_size > 0
    assert report["spike_source"] == "torch" and report["run"] == {"paths": 2, "steps_per_path": 6, "inference_steps": 12}
    constants = report["constants"]
    assert constants["loihi"]["energy_per_synop"] == pytest.approx(27.1e-12) and constants["loihi"]["energy_per_neuron"] == 81e-12
    assert constants["gpu"]["energy_per_synop"] == 0.3e-9 and constants["cpu"]["energy_per_synop"] == 8.6e-9
    assert "Davies" in constants["loihi"]["source"] and all("keras-spiking" in c["source"] for c in constants.values())
    assert len(report["assumptions"]) >= 5
    assert {(r["model"], r["device"]) for r in report["table"]} == {
        ("spiking", "loihi"), ("spiking", "gpu"), ("spiking", "cpu"), ("lstm", "gpu"), ("lstm", "cpu"),
    }  # fmt: skip
    assert set(DEVICES) == set(report["spiking"]["energy_per_step_j"])
    bad = CliRunner().invoke(app, ["energy", str(model), str(data_path), "--spikes", "gpu"])
    assert bad.exit_code != 0 and "spikes must be" in bad.output
