"""Trial steps: branch steps part-way along a step, labelled by the data's material from the step's start."""

import copy

import numpy as np
import pytest
import torch

from femsnn.materials import drive, make_material
from femsnn.snn.networks import SpikingRegressor
from femsnn.train.data import Dataset, J2RandomWalkSettings, generate
from femsnn.train.harness import TrainingSettings, branch_change_loss, branch_rollout, predict, train
from femsnn.train.metrics import stress_metrics
from femsnn.train.normalisation import Normalisation
from femsnn.train.trial import TrialSteps, branch_step_errors

MATERIAL = {"type": "j2", "E": 70e3, "nu": 0.3, "sigma_y": 250.0, "H_iso": 700.0}


@pytest.fixture(scope="module")
def walks():
    settings = J2RandomWalkSettings(
        generator="j2_random_walk", stress_state="plane_strain", n_train=12, n_val=4, n_test=4, steps=10,
        increments=True, material=MATERIAL,
    )  # fmt: skip
    return generate(settings)


def trial_steps(data: Dataset, reach: float = 1.25, points: int = 3) -> TrialSteps:
    return TrialSteps(data, Normalisation.fit(data.inputs, data.targets), reach, points)


def test_branch_stress_is_the_material_driven_to_the_branch_strain(walks):
    data = walks.part("train")
    steps = trial_steps(data)
    paths = torch.tensor([5, 0, 7])
    generator = torch.Generator().manual_seed(3)
    for _ in range(4):
        t, x, y = steps.draw(paths, generator, torch.zeros((), dtype=torch.float64))
        inputs, stress = steps.norm.decode_inputs(x).numpy(), steps.norm.decode_targets(y).numpy()
        strain, increment = inputs[..., :4], inputs[..., 4:]
        before = data.strain[paths.numpy(), t - 1] if t > 0 else np.zeros((3, 4))
        np.testing.assert_allclose(strain - increment, np.repeat(before[:, None], 3, axis=1), atol=1e-14)
        fractions = np.linalg.norm(increment, axis=-1) / np.linalg.norm(data.strain[paths.numpy(), t] - before, axis=-1)[:, None]
        assert 0 <= fractions.min() and fractions.max() <= 1.25
        j2 = make_material(MATERIAL, "plane_strain")
        for j in range(3):  # independently: the material driven along the path to t - 1, then to the branch strain
            path = np.concatenate([data.strain[paths.numpy(), :t], strain[:, j : j + 1]], axis=1)
            np.testing.assert_allclose(drive(j2, path).stress[:, -1], stress[:, j], atol=1e-9)


def test_data_that_is_not_its_materials_answer_or_has_other_inputs_is_refused(walks):
    data = walks.part("train")
    wrong = Dataset(data.inputs, data.targets * 1.01, data.strain, data.split, data.meta)
    with pytest.raises(ValueError, match="differs by 9.90e-03 of the largest stress"):
        trial_steps(wrong)
    other = Dataset(data.inputs, data.targets, data.strain, data.split, {**data.meta, "input_features": ["temperature"]})
    with pytest.raises(ValueError, match="rebuild strain inputs"):
        trial_steps(other)
    anonymous = Dataset(data.inputs, data.targets, data.strain, data.split, {**data.meta, "material": {}})
    with pytest.raises(ValueError, match="the data names none"):
        trial_steps(anonymous)


def test_branch_rollout_with_the_steps_own_input_gives_the_paths_output():
    torch.manual_seed(0)
    net = SpikingRegressor(8, 4, "slstm", [8, 8], population=2, skip=True)
    x = torch.randn(3, 7, 8, dtype=torch.float64)
    net.double()
    whole = net(x)
    for t in (0, 3, 6):
        paths, branch = branch_rollout(net, x, t, torch.stack([x[:, t]] * 2, dim=1))
        torch.testing.assert_close(paths, whole, rtol=0, atol=1e-12)
        torch.testing.assert_close(branch, torch.stack([whole[:, t]] * 2, dim=1), rtol=0, atol=1e-12)


def test_training_with_trial_steps_is_reproducible_and_records_their_loss(walks):
    torch.manual_seed(0)
    net = SpikingRegressor(8, 4, "slstm", [8], population=4)
    settings = TrainingSettings(epochs=2, batch_size=4, progress=False, threads=1, trial_weight=1.0, augment="rotations")
    runs = [train(copy.deepcopy(net), walks, settings) for _ in range(2)]
    plain = train(copy.deepcopy(net), walks, settings.model_copy(update={"trial_weight": 0.0}))
    weights = [torch.cat([p.flatten() for p in r.net.state_dict().values()]) for r in (*runs, plain)]
    assert torch.equal(weights[0], weights[1]) and not torch.allclose(weights[0], weights[2])
    assert all(np.isfinite(h["train_trial_loss"]) and h["train_trial_loss"] > 0 for h in runs[0].history)
    assert "train_trial_loss" not in plain.history[0]


def test_branch_change_loss_compares_changes_from_the_committed_step():
    prediction = torch.tensor([[[1.0], [5.0], [9.0]]])  # the network is 3 too high after step 1
    target = torch.tensor([[[1.0], [2.0], [9.0]]])
    branch_prediction, branch_target = torch.tensor([[[5.5], [7.0]]]), torch.tensor([[[2.0], [4.0]]])
    # from step 1: changes 0.5, 2 against 0, 2; from rest (t = 0): the branch steps' own errors 3.5, 3
    assert branch_change_loss(prediction, target, 2, branch_prediction, branch_target).item() == pytest.approx(0.125)
    assert branch_change_loss(prediction, target, 0, branch_prediction, branch_target).item() == pytest.approx(10.625)


def test_trial_increment_weight_changes_training_and_needs_trial_steps(walks):
    torch.manual_seed(0)
    net = SpikingRegressor(8, 4, "slstm", [8], population=4)
    settings = TrainingSettings(epochs=1, batch_size=4, progress=False, threads=1, trial_weight=1.0)
    plain, changes = (train(copy.deepcopy(net), walks, settings.model_copy(update={"trial_increment_weight": w})) for w in (0.0, 5.0))
    weights = [torch.cat([p.flatten() for p in r.net.state_dict().values()]) for r in (plain, changes)]
    assert not torch.allclose(*weights)
    with pytest.raises(ValueError, match="set trial_weight > 0"):
        TrainingSettings(trial_increment_weight=1.0)


def test_trial_steps_with_truncation_or_activity_regularisation_are_refused():
    for other in ({"truncation": 5}, {"spike_rate_weight": 0.1}):
        with pytest.raises(ValueError, match="leave truncation and spike_rate_weight unset"):
            TrainingSettings(trial_weight=1.0, **other)


def test_branch_step_errors_at_the_full_step_are_the_paths_own_and_part_way_differ(walks):
    data = walks.part("test")
    norm = Normalisation.fit(data.inputs, data.targets)
    torch.manual_seed(1)
    net = SpikingRegressor(8, 4, "slstm", [8], population=2, skip=True).double()
    errors = branch_step_errors(net, TrialSteps(data, norm), fractions=(0.25, 1.0))
    paths_rmse = stress_metrics(predict(net, norm, data.inputs)[0], data.targets, norm)["rmse_mpa_all"]
    assert errors["all"]["1"] == pytest.approx(paths_rmse, rel=1e-12)
    assert errors["all"]["0.25"] != pytest.approx(paths_rmse, rel=1e-3)
    assert set(errors["large"]) == {"0.25", "1"} and errors["large"]["1"] != errors["all"]["1"]
    changes = branch_step_errors(net, TrialSteps(data, norm), fractions=(0.0,))["all_change"]["0"]
    jumps = []  # by hand: the network's stress change over a step without strain change (J2's is 0)
    with torch.no_grad():
        x = torch.as_tensor(norm.encode_inputs(data.inputs))
        state, before = net.init_state(x.shape[0]), np.zeros(data.targets[:, 0].shape)
        for t in range(x.shape[1]):
            start = data.strain[:, t - 1] if t else np.zeros_like(data.strain[:, 0])
            still = torch.as_tensor(norm.encode_inputs(np.concatenate([start, np.zeros_like(start)], axis=1)))
            jumps.append(norm.decode_targets(net.step(still, state)[0].numpy()) - before)
            out, state = net.step(x[:, t], state)
            before = norm.decode_targets(out.numpy())
    assert changes == pytest.approx(np.sqrt(np.mean(np.square(jumps).sum(axis=-1))), rel=1e-10)
