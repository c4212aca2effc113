"""The closed-form input Jacobian of one-layer spiking regressors equals autograd's."""

from __future__ import annotations

import pytest
import torch

from femsnn.snn import EnsembleRegressor, SpikingRegressor


def autograd_jacobian(net: SpikingRegressor, x: torch.Tensor, state: dict) -> torch.Tensor:
    """d y / d x (B, n_out, n_in) of the differentiable step, point by point."""
    rows = []
    for b in range(x.shape[0]):
        one = {k: v[b : b + 1] for k, v in state.items()}
        rows.append(torch.autograd.functional.jacobian(lambda row: net.step(row[None], one)[0][0], x[b]))
    return torch.stack(rows)


def check_closed_form_jacobian(net) -> None:
    """step_with_input_jacobian gives step's output and state, and autograd's Jacobian, on 6 random points (5 inputs)."""
    x = torch.randn(6, 5, dtype=torch.float64)
    state = {k: 0.5 * torch.randn(6, *shape, dtype=torch.float64) for k, shape in net.state_spec.items()}
    y, new_state, jacobian = net.step_with_input_jacobian(x, state)
    with torch.no_grad():
        y_ref, state_ref = net.step(x, state)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    assert new_state.keys() == state_ref.keys() == state.keys()
    for k in state_ref:
        torch.testing.assert_close(new_state[k], state_ref[k], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(jacobian, autograd_jacobian(net, x, state), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("neuron", ["lif", "rlif", "slstm"])
@pytest.mark.parametrize("skip", [False, True])
def test_closed_form_jacobian_equals_autograd(neuron, skip):
    torch.manual_seed(0)
    net = SpikingRegressor(5, 3, neuron, hidden=(9,), population=2, skip=skip).double()
    if skip:
        with torch.no_grad():
            net.skip.weight.normal_()
    check_closed_form_jacobian(net)


def test_an_ensemble_of_one_layer_networks_has_the_mean_jacobian():
    torch.manual_seed(0)
    net = EnsembleRegressor([SpikingRegressor(5, 3, "slstm", (9,), 2, skip=True), SpikingRegressor(5, 3, "slstm", (7,), 3)]).double()
    with torch.no_grad():
        net.member0.skip.weight.normal_()
    assert net.exact_input_jacobian
    check_closed_form_jacobian(net)


def test_deeper_networks_have_no_closed_form_jacobian():
    net = SpikingRegressor(2, 1, "slstm", hidden=(4, 4), population=2)
    state = net.init_state(3)
    assert not net.exact_input_jacobian
    with pytest.raises(ValueError, match="one spiking layer"):
        net.step_with_input_jacobian(torch.zeros(3, 2), state)
    ensemble = EnsembleRegressor([net, SpikingRegressor(2, 1, "slstm", hidden=(4,), population=2)])
    assert not ensemble.exact_input_jacobian
    with pytest.raises(ValueError, match="one spiking layer"):
        ensemble.step_with_input_jacobian(torch.zeros(3, 2), ensemble.init_state(3))
