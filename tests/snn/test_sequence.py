"""The whole-sequence training path (femsnn.snn.sequence) against looping the reference step: values and gradients."""

import pytest
import torch

from femsnn.snn.networks import SpikingRegressor
from femsnn.snn.sequence import leaky_scan, slstm_sequence
from femsnn.train.harness import rollout

B, T = 6, 13


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def firing_net(hidden, reset, skip=False):
    """A float64 SLSTM regressor with random decoder decays and thresholds low enough for the neurons to fire."""
    net = SpikingRegressor(3, 2, neuron="slstm", hidden=hidden, population=4, reset=reset, skip=skip).double()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "beta" in name:
                p.uniform_(0.0, 1.0)
            elif name.endswith("threshold"):
                p.uniform_(0.0, 0.2)
            elif name.startswith("skip."):
                p.normal_()
    return net


def looped(net, x, state):
    """The reference: net.step looped over time, with every layer's spikes (B, T, n_i)."""
    outputs, spikes = [], {}
    for t in range(x.shape[1]):
        y, state = net.step(x[:, t], state)
        outputs.append(y)
        for name, s in net.spikes(state).items():
            spikes.setdefault(name, []).append(s)
    return torch.stack(outputs, dim=1), state, {k: torch.stack(v, dim=1) for k, v in spikes.items()}


def scalar_of(y, state, spikes, weights):
    """A loss that reaches every output of a sequence run: outputs, final state and spikes, randomly weighted."""
    total = (weights["y"] * y).sum()
    total = total + sum((weights[k] * v).sum() for k, v in state.items())
    return total + sum((weights[k] * v).sum() for k, v in spikes.items())


@pytest.mark.parametrize(
    "hidden, reset, skip, from_rest",
    [([7, 5], "subtract", False, True), ([7, 5], "subtract", True, False), ([6, 6, 4], "zero", False, False), ([5], "none", True, True)],
)
def test_sequence_equals_looped_step_in_values_and_gradients(hidden, reset, skip, from_rest):
    net = firing_net(hidden, reset, skip)
    x = (2 * torch.randn(B, T, 3, dtype=torch.float64)).requires_grad_()
    start = net.init_state(B) if from_rest else {k: torch.randn(B, *s, dtype=torch.float64) for k, s in net.state_spec.items()}
    start = {k: v.requires_grad_() for k, v in start.items()}

    ref = looped(net, x, start)
    fast = net.sequence(x, start)
    torch.testing.assert_close(fast[0], ref[0], rtol=0, atol=1e-12)
    assert fast[1].keys() == ref[1].keys() and fast[2].keys() == ref[2].keys()
    for k in ref[1]:
        torch.testing.assert_close(fast[1][k], ref[1][k], rtol=0, atol=1e-12)
    rates = []
    for k in ref[2]:
        assert torch.equal(fast[2][k], ref[2][k]), k
        rates.append(ref[2][k].mean())
    assert 0.05 < torch.stack(rates).mean() < 0.95  # the spikes carried information

    weights = {"y": torch.randn_like(ref[0])} | {k: torch.randn_like(v) for k, v in {**ref[1], **ref[2]}.items()}
    inputs = [x, *start.values(), *net.parameters()]
    ref_grads = torch.autograd.grad(scalar_of(*ref, weights), inputs, allow_unused=True)
    fast_grads = torch.autograd.grad(scalar_of(*fast, weights), inputs, allow_unused=True)
    names = ["x", *start, *(n for n, _ in net.named_parameters())]
    for name, r, f in zip(names, ref_grads, fast_grads):
        assert (r is None) == (f is None), name
        if r is not None:
            torch.testing.assert_close(f, r, rtol=1e-9, atol=1e-11, msg=name)
    assert any(r is not None and r.abs().max() > 0 for r in ref_grads[1 : 1 + len(start)])  # the start state mattered


def test_forward_uses_the_sequence_path_and_inference_mode_the_step():
    net = firing_net([5, 4], "subtract")
    x = torch.randn(B, T, 3, dtype=torch.float64)
    with torch.no_grad():
        reference = looped(net, x, net.init_state(B))[0]
    torch.testing.assert_close(net(x), reference, rtol=0, atol=1e-12)
    with torch.inference_mode():
        torch.testing.assert_close(net(x), reference, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(net.sequence(x)[0], reference, rtol=1e-9, atol=1e-9)


def test_rollout_spike_rates_come_from_the_sequence_path():
    net = firing_net([5, 4], "subtract")
    x = torch.randn(B, T, 3, dtype=torch.float64)
    y, state, rates = rollout(net, x, net.init_state(B), want_spikes=True)
    ref_y, ref_state, ref_spikes = looped(net, x, net.init_state(B))
    torch.testing.assert_close(y, ref_y, rtol=0, atol=1e-12)
    assert rates.keys() == ref_spikes.keys()
    for k, s in ref_spikes.items():
        torch.testing.assert_close(rates[k], s.mean(), rtol=0, atol=1e-15)


def test_leaky_scan_gradients_are_exact():
    decay = torch.rand(4, dtype=torch.float64, requires_grad=True)
    current = torch.randn(T, 3, 4, dtype=torch.float64, requires_grad=True)
    m0 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(leaky_scan, (decay, current, m0))
    expected, m = [], m0
    for t in range(T):
        m = decay * m + current[t]
        expected.append(m)
    torch.testing.assert_close(leaky_scan(decay, current, m0), torch.stack(expected), rtol=0, atol=1e-14)


def test_bad_shapes_are_rejected():
    net = SpikingRegressor(3, 2, neuron="slstm", hidden=[4], population=2)
    with pytest.raises(ValueError, match="input must have shape"):
        net.sequence(torch.zeros(B, 0, 3))
    with pytest.raises(ValueError, match="input must have shape"):
        net.sequence(torch.zeros(B, T, 2))
    with pytest.raises(ValueError, match="must have shape"):
        net.sequence(torch.zeros(B, T, 3), net.init_state(B + 1))
    with pytest.raises(ValueError, match="gate pre-activations"):
        slstm_sequence(torch.zeros(T, B, 15), torch.zeros(16, 4), torch.zeros(4), torch.zeros(B, 4), torch.zeros(B, 4), "subtract", 2.0)
    with pytest.raises(ValueError, match="current must be"):
        leaky_scan(torch.zeros(4), torch.zeros(T, B, 5), torch.zeros(B, 4))
