"""Training harness: it learns, resumes exactly after a kill, and its options do what they say."""

import copy

import numpy as np
import pytest
import torch

from femsnn.snn.networks import LSTMRegressor, SpikingRegressor
from femsnn.train.harness import (
    CheckpointError,
    TrainingSettings,
    elastic_skip,
    evaluate_standardised,
    fit_skip,
    predict,
    rollout,
    stress_loss,
    train,
)
from femsnn.materials import elastic_stiffness
from femsnn.train.normalisation import Normalisation

FAST = dict(batch_size=8, progress=False, threads=1)


class Killed(Exception):
    """Stands for the process being killed after an epoch's checkpoint was written."""


def val_loss(net, data, norm):
    val = data.part("val")
    x = torch.as_tensor(norm.encode_inputs(val.inputs), dtype=torch.float32)
    y = torch.as_tensor(norm.encode_targets(val.targets), dtype=torch.float32)
    return evaluate_standardised(net, x, y, 64)["loss"]


def test_training_lowers_the_validation_loss(tiny_data, tiny_net):
    before = val_loss(tiny_net, tiny_data, Normalisation.fit(tiny_data.part("train").inputs, tiny_data.part("train").targets))
    result = train(tiny_net, tiny_data, TrainingSettings(epochs=3, learning_rate=1e-2, **FAST))
    assert len(result.history) == 3 and result.epochs_run == 3
    assert min(h["val_loss"] for h in result.history) < 0.7 * before
    assert result.history[result.best_epoch - 1]["val_loss"] == min(h["val_loss"] for h in result.history)
    assert set(result.history[0]["val_spike_rates"]) == {"layer0", "layer1"}


@pytest.mark.parametrize(
    "options", [{}, {"schedule": "onecycle", "truncation": 5, "clip_grad_norm": 1.0}, {"schedule": "onecycle", "trial_weight": 1.0}]
)
def test_kill_and_resume_ends_as_an_uninterrupted_run(tmp_path, tiny_data, tiny_net, options):
    settings = TrainingSettings(epochs=3, **FAST, **options)
    reference = train(copy.deepcopy(tiny_net), tiny_data, settings, checkpoint=tmp_path / "a.pt")

    def kill_after_second(epoch, record):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train(copy.deepcopy(tiny_net), tiny_data, settings, checkpoint=tmp_path / "b.pt", on_epoch=kill_after_second)
    (tmp_path / "b.pt.tmp").write_bytes(b"half-written")  # a save interrupted by the kill is ignored
    torch.manual_seed(123)
    fresh = SpikingRegressor(2, 1, "slstm", [8, 8], population=4)  # other initial weights: all come from the checkpoint
    resumed = train(fresh, tiny_data, settings, checkpoint=tmp_path / "b.pt")

    for key, value in reference.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[key], value, rtol=0, atol=0)
    strip = lambda hist: [{k: v for k, v in h.items() if k != "time_s"} for h in hist]  # noqa: E731
    assert strip(resumed.history) == strip(reference.history)
    assert resumed.best_epoch == reference.best_epoch


def test_a_finished_run_is_not_trained_again(tmp_path, tiny_data, tiny_net):
    settings = TrainingSettings(epochs=1, **FAST)
    first = train(tiny_net, tiny_data, settings, checkpoint=tmp_path / "c.pt")
    calls = []
    again = train(copy.deepcopy(tiny_net), tiny_data, settings, checkpoint=tmp_path / "c.pt", on_epoch=lambda *a: calls.append(a))
    assert calls == [] and again.history == first.history


def test_checkpoint_of_another_run_is_refused(tmp_path, tiny_data, tiny_net):
    train(copy.deepcopy(tiny_net), tiny_data, TrainingSettings(epochs=1, **FAST), checkpoint=tmp_path / "d.pt")
    with pytest.raises(CheckpointError, match="different run"):
        train(tiny_net, tiny_data, TrainingSettings(epochs=1, learning_rate=5e-3, **FAST), checkpoint=tmp_path / "d.pt")
    (tmp_path / "e.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        train(tiny_net, tiny_data, TrainingSettings(epochs=1, **FAST), checkpoint=tmp_path / "e.pt")


def test_truncated_bptt_steps_the_optimiser_once_per_window(tiny_data, tiny_net):
    result = train(tiny_net, tiny_data, TrainingSettings(epochs=1, truncation=5, schedule="cosine", **FAST))
    assert result.history[0]["learning_rate"] < 1e-3  # the schedule advanced
    # 24 paths / batch 8 = 3 batches, 12 steps / window 5 = 3 windows: 9 optimiser steps
    net2 = copy.deepcopy(tiny_net)
    opt_steps = []
    original = torch.optim.AdamW.step

    def counting(self, *a, **k):
        opt_steps.append(1)
        return original(self, *a, **k)

    torch.optim.AdamW.step = counting
    try:
        train(net2, tiny_data, TrainingSettings(epochs=1, truncation=5, **FAST))
    finally:
        torch.optim.AdamW.step = original
    assert len(opt_steps) == 9


def test_activity_regularisation_lowers_spike_rates(tiny_data):
    rates = {}
    for weight in (0.0, 50.0):
        torch.manual_seed(0)
        net = SpikingRegressor(2, 1, "slstm", [8, 8], population=4)
        result = train(net, tiny_data, TrainingSettings(epochs=3, learning_rate=1e-2, spike_rate_weight=weight, **FAST))
        rates[weight] = sum(result.history[-1]["val_spike_rates"].values())
    assert rates[50.0] < 0.5 * rates[0.0]


def test_activity_regularisation_needs_spikes(tiny_data):
    net = LSTMRegressor(2, 1, hidden=4, layers=1, population=2)
    with pytest.raises(ValueError, match="spiking network"):
        train(net, tiny_data, TrainingSettings(epochs=1, spike_rate_weight=1.0, **FAST))


def test_float64_training_and_predictions_in_mpa(tiny_data, tiny_net):
    result = train(tiny_net, tiny_data, TrainingSettings(epochs=1, dtype="float64", **FAST))
    assert next(result.net.parameters()).dtype == torch.float64
    test = tiny_data.part("test")
    stress, rates = predict(result.net, result.normalisation, test.inputs)
    x = torch.as_tensor(result.normalisation.encode_inputs(test.inputs))
    expected = result.normalisation.decode_targets(result.net(x).detach().numpy())
    np.testing.assert_allclose(stress, expected, rtol=1e-12)
    assert set(rates) == {"layer0", "layer1"}


def test_rollout_equals_forward_and_carries_state(tiny_net):
    x = torch.randn(3, 6, 2)
    y, state, _ = rollout(tiny_net, x[:, :4], tiny_net.init_state(3))
    y2, _, _ = rollout(tiny_net, x[:, 4:], state)
    torch.testing.assert_close(torch.cat([y, y2], dim=1), tiny_net(x))


def test_network_and_data_sizes_must_agree(tiny_data):
    with pytest.raises(ValueError, match="inputs"):
        train(SpikingRegressor(1, 1, "lif", [4], population=2), tiny_data, TrainingSettings(epochs=1, **FAST))


def test_last_step_weight_adds_the_last_steps_mse():
    prediction = torch.tensor([[[1.0], [2.0], [3.0]]])
    target = torch.tensor([[[1.0], [1.0], [1.0]]])
    weighted = TrainingSettings(last_step_weight=2.0)
    assert stress_loss(prediction, target, TrainingSettings()).item() == pytest.approx(5 / 3)
    assert stress_loss(prediction, target, weighted).item() == pytest.approx(5 / 3 + 2 * 4)
    assert stress_loss(prediction, target, weighted, ends_path=False).item() == pytest.approx(5 / 3)


def test_increment_weight_adds_the_mse_of_stress_increments():
    prediction = torch.tensor([[[1.0], [3.0], [4.0]]])
    target = torch.tensor([[[1.0], [2.0], [4.0]]])  # increments 2, 1 against 1, 2
    settings = TrainingSettings(increment_weight=3.0)
    assert stress_loss(prediction, target, settings).item() == pytest.approx(1 / 3 + 3 * 1.0)


def test_relative_last_step_loss_weighs_errors_by_the_label():
    prediction = torch.tensor([[[1.0, 0.0], [3.0, 4.0]], [[0.0, 0.0], [0.5, 0.0]]])
    target = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    target[0, 1] = torch.tensor([3.0, 0.0])  # error 4 on a label of norm 3; path 2: error 0.5 on a zero label
    settings = TrainingSettings(last_step_weight=1.0, last_step_loss="relative", relative_floor=0.5)
    mse = torch.nn.functional.mse_loss(prediction, target).item()
    expected = mse + (16 / (9 + 0.25) + 0.25 / 0.25) / 2
    assert stress_loss(prediction, target, settings).item() == pytest.approx(expected)


def test_early_stopping_keeps_the_best_epoch(monkeypatch, tiny_data, tiny_net):
    losses = iter([3.0, 1.0, 2.0, 2.5, 0.5, 0.1])  # best at epoch 2, then two epochs without improvement
    snapshots = {}

    def fake_validation(net, x, y, batch_size):
        return {"loss": next(losses), "code_all": 0.0, "code_last": 0.0, "spike_rates": {}}

    monkeypatch.setattr("femsnn.train.harness.evaluate_standardised", fake_validation)
    result = train(tiny_net, tiny_data, TrainingSettings(epochs=6, patience=2, **FAST),
                   on_epoch=lambda epoch, record: snapshots.setdefault(epoch, copy.deepcopy(tiny_net.state_dict())))
    assert result.stopped_early and result.epochs_run == 4 and result.best_epoch == 2
    for key, value in snapshots[2].items():
        torch.testing.assert_close(result.net.state_dict()[key], value, rtol=0, atol=0)


def test_fit_skip_recovers_a_linear_map():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 3, generator=gen, dtype=torch.float64), torch.randn(2, generator=gen, dtype=torch.float64)
    x = torch.randn(5, 7, 3, generator=gen)
    skip = torch.nn.Linear(3, 2)
    fit_skip(skip, x, x.double() @ a.T + b)
    torch.testing.assert_close(skip.weight, a.float(), rtol=0, atol=1e-5)
    torch.testing.assert_close(skip.bias, b.float(), rtol=0, atol=1e-5)


def test_training_starts_a_skip_network_from_the_least_squares_fit(tiny_data):
    torch.manual_seed(0)
    net = SpikingRegressor(2, 1, "slstm", [8], population=4, skip=True)
    result = train(net, tiny_data, TrainingSettings(epochs=1, learning_rate=1e-12, **FAST))
    train_part = tiny_data.part("train")
    norm = result.normalisation
    x = torch.as_tensor(norm.encode_inputs(train_part.inputs), dtype=torch.float32)
    expected = torch.nn.Linear(2, 1)
    fit_skip(expected, x, torch.as_tensor(norm.encode_targets(train_part.targets)))
    assert torch.count_nonzero(expected.weight) > 0
    torch.testing.assert_close(result.net.skip.weight, expected.weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(result.net.skip.bias, expected.bias, rtol=0, atol=1e-6)


def test_elastic_skip_maps_strain_to_elastic_stress_in_physical_units():
    rng = np.random.default_rng(0)
    norm = Normalisation(rng.normal(size=8) * 1e-3, rng.uniform(1e-3, 2e-3, 8), rng.normal(size=4) * 10, rng.uniform(50, 90, 4))
    meta = {"material": {"E": 7e4, "nu": 0.3}, "input_features": ["strain", "strain_increment"], "target_names": list("abcd")}
    skip = torch.nn.Linear(8, 4).double()
    elastic_skip(skip, norm, meta)
    inputs = rng.normal(size=(5, 8)) * 1e-3
    with torch.no_grad():
        stress = norm.decode_targets(skip(torch.as_tensor(norm.encode_inputs(inputs))).numpy())
    np.testing.assert_allclose(stress, inputs[:, :4] @ elastic_stiffness(7e4, 0.3, 4).T, rtol=1e-10, atol=1e-8)
    with pytest.raises(ValueError, match="E \\(and nu\\)"):
        elastic_skip(skip, norm, {**meta, "material": {"E": 7e4}})
    with pytest.raises(ValueError, match="first input feature"):
        elastic_skip(skip, norm, {**meta, "input_features": ["strain_increment", "strain"]})


def test_a_fixed_skip_connection_keeps_its_start(tiny_data):
    torch.manual_seed(0)
    net = SpikingRegressor(2, 1, "slstm", [8], population=4, skip=True)
    result = train(net, tiny_data, TrainingSettings(epochs=2, learning_rate=1e-2, skip_init="elastic", skip_trainable=False, **FAST))
    expected = torch.nn.Linear(2, 1)
    elastic_skip(expected, result.normalisation, tiny_data.meta)
    torch.testing.assert_close(result.net.skip.weight, expected.weight, rtol=0, atol=0)
    torch.testing.assert_close(result.net.skip.bias, expected.bias, rtol=0, atol=0)
