"""Spiking layers against snnTorch 1.0 (Leaky, RLeaky, SLSTM) and hand-rolled references, float64."""

import copy

import pytest
import snntorch as snn
import torch

from femsnn.snn.neurons import LIF, RLIF, SLSTM

B, T = 16, 20
TOL = 1e-6  # the bound; float64 runs agree to ~1e-15


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def randomised(layer):
    """layer in float64 with random β (some outside [0, 1], to exercise the clamp) and thresholds."""
    layer = layer.double()
    with torch.no_grad():
        if hasattr(layer, "beta"):
            layer.beta.uniform_(-0.2, 1.2)
        high = 0.2 if isinstance(layer, SLSTM) else 0.6  # h = o tanh(c) stays small: lower thresholds
        layer.threshold.uniform_(0.0, high)
    return layer


def run(layer, x, state):
    """Loop layer.step over x (B, T, n): spikes and states per step."""
    spikes, states = [], []
    for t in range(x.shape[1]):
        s, state = layer.step(x[:, t], state)
        spikes.append(s)
        states.append(state)
    return spikes, states


def assert_some_spikes(spikes):
    """The comparison is only meaningful if neurons both fire and stay silent."""
    rate = torch.stack(spikes).mean().item()
    assert 0.05 < rate < 0.95, rate


def leaky_like(layer, reset):
    """snnTorch Leaky with the layer's β and thresholds (learnable, so gradients can be compared)."""
    return snn.Leaky(
        beta=layer.beta.detach().clone(),
        threshold=layer.threshold.detach().clone(),
        learn_beta=True,
        learn_threshold=True,
        reset_mechanism=reset,
    ).double()


def loss(spikes, membranes):
    """A scalar that reaches every parameter through membranes and through the surrogate of the spikes."""
    return sum(m.square().sum() + s.sum() for s, m in zip(spikes, membranes))


def assert_same_gradients(pairs):
    """(ours, snnTorch's) parameter pairs have equal gradients.

    snnTorch's spikes are float32 whatever the membrane's dtype, so gradients that flow back through
    spikes are rounded to float32 there: tolerance 1e-6 of the largest gradient entry (with float64
    spikes patched into snnTorch they agree to 1e-10).
    """
    for ours, ref in pairs:
        torch.testing.assert_close(ours.grad, ref.grad, rtol=0, atol=1e-6 * ref.grad.abs().max().item())


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_lif_matches_snntorch_leaky(reset):
    lif = randomised(LIF(5, 12, reset=reset))
    ref, fc = leaky_like(lif, reset), copy.deepcopy(lif.linear)
    x = torch.randn(B, T, 5, dtype=torch.float64)
    state = {"membrane": torch.randn(B, 12, dtype=torch.float64)}  # start away from rest
    spikes, states = run(lif, x, state)
    mem, ref_spikes, ref_mems = state["membrane"].clone(), [], []
    for t in range(T):
        spk, mem = ref(fc(x[:, t]), mem)
        assert torch.equal(spikes[t], spk.double()), t
        torch.testing.assert_close(states[t]["membrane"], mem, rtol=0, atol=TOL)
        ref_spikes.append(spk)
        ref_mems.append(mem)
    assert_some_spikes(spikes)
    # gradients through the surrogate, the detached reset and the β clamp agree with snnTorch's
    loss(spikes, [s["membrane"] for s in states]).backward()
    loss(ref_spikes, ref_mems).backward()
    assert_same_gradients(
        [(lif.beta, ref.beta), (lif.threshold, ref.threshold), (lif.linear.weight, fc.weight), (lif.linear.bias, fc.bias)]
    )


@pytest.mark.parametrize("reset", ["subtract", "none"])
def test_rlif_matches_snntorch_rleaky(reset):
    rlif = randomised(RLIF(5, 12, reset=reset))
    with torch.no_grad():
        rlif.recurrent.weight.mul_(3.0)  # make the recurrence matter
    ref = snn.RLeaky(
        beta=rlif.beta.detach().clone(),
        threshold=rlif.threshold.detach().clone(),
        learn_beta=True,
        learn_threshold=True,
        all_to_all=True,
        linear_features=12,
        init_hidden=False,
        reset_mechanism=reset,
    ).double()
    fc = copy.deepcopy(rlif.linear)
    with torch.no_grad():
        ref.recurrent.weight.copy_(rlif.recurrent.weight)
        ref.recurrent.bias.zero_()
    x = torch.randn(B, T, 5, dtype=torch.float64)
    state = {"membrane": torch.randn(B, 12, dtype=torch.float64)}
    spikes, states = run(rlif, x, state)
    mem, ref_spikes, ref_mems = state["membrane"].clone(), [], []
    spk = ref.fire(mem)  # the spikes that produced the initial membrane, passed on each step
    for t in range(T):
        spk, mem = ref(fc(x[:, t]), spk.double(), mem)
        assert torch.equal(spikes[t], spk.double()), t
        torch.testing.assert_close(states[t]["membrane"], mem, rtol=0, atol=TOL)
        ref_spikes.append(spk)
        ref_mems.append(mem)
    assert_some_spikes(spikes)
    loss(spikes, [s["membrane"] for s in states]).backward()
    loss(ref_spikes, ref_mems).backward()
    assert_same_gradients(
        [
            (rlif.beta, ref.beta),
            (rlif.threshold, ref.threshold),
            (rlif.linear.weight, fc.weight),
            (rlif.recurrent.weight, ref.recurrent.weight),
        ]
    )
    # genuinely recurrent: without V the membranes differ
    with torch.no_grad():
        rlif.recurrent.weight.zero_()
    assert not torch.allclose(run(rlif, x, state)[1][-1]["membrane"], states[-1]["membrane"])


def test_rlif_zero_reset_zeroes_the_previous_membrane():
    rlif = randomised(RLIF(4, 9, reset="zero"))
    x = torch.randn(B, T, 4, dtype=torch.float64)
    state = {"membrane": torch.randn(B, 9, dtype=torch.float64)}
    spikes, states = run(rlif, x, state)
    beta, thr = rlif.beta.clamp(0, 1), rlif.threshold
    mem = state["membrane"]
    for t in range(T):
        fired = (mem > thr).double()
        mem = beta * (1 - fired) * mem + rlif.linear(x[:, t]) + fired @ rlif.recurrent.weight.T
        torch.testing.assert_close(states[t]["membrane"], mem, rtol=0, atol=TOL)
        assert torch.equal(spikes[t], (mem > thr).double())
    assert_some_spikes(spikes)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_slstm_matches_snntorch_slstm_when_sizes_are_equal(reset):
    slstm = randomised(SLSTM(10, 10, reset=reset))
    ref = snn.SLSTM(
        10, 10, threshold=slstm.threshold.detach().clone(), learn_threshold=True, reset_mechanism=reset
    ).double()
    ref.lstm_cell.load_state_dict(slstm.lstm_cell.state_dict())
    x = torch.randn(B, T, 10, dtype=torch.float64)
    state = {"membrane": torch.randn(B, 10, dtype=torch.float64).tanh(), "cell": torch.randn(B, 10, dtype=torch.float64)}
    spikes, states = run(slstm, x, state)
    syn, mem, ref_spikes, ref_mems = state["cell"].clone(), state["membrane"].clone(), [], []
    for t in range(T):
        spk, syn, mem = ref(x[:, t], syn, mem)
        assert torch.equal(spikes[t], spk.double()), t
        torch.testing.assert_close(states[t]["membrane"], mem, rtol=0, atol=TOL)
        torch.testing.assert_close(states[t]["cell"], syn, rtol=0, atol=TOL)
        ref_spikes.append(spk)
        ref_mems.append(mem + syn)
    assert_some_spikes(spikes)
    loss(spikes, [s["membrane"] + s["cell"] for s in states]).backward()
    loss(ref_spikes, ref_mems).backward()
    ours, theirs = dict(slstm.named_parameters()), dict(ref.named_parameters())
    assert_same_gradients([(ours[name], theirs[name]) for name in ours])


def lstm_cell_by_hand(cell, x, h, c):
    """torch's LSTMCell gate equations (i, f, g, o) written out."""
    gates = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


@pytest.mark.parametrize("n_in, n_out", [(1, 8), (12, 5)])
def test_slstm_carries_state_when_sizes_differ(n_in, n_out):
    slstm = randomised(SLSTM(n_in, n_out))
    x = torch.randn(B, T, n_in, dtype=torch.float64)
    state = slstm.init_state(B)
    spikes, states = run(slstm, x, state)
    h, c = state["membrane"], state["cell"]
    for t in range(T):
        fired = (h > slstm.threshold).double()
        candidate, c = lstm_cell_by_hand(slstm.lstm_cell, x[:, t], h, c)
        h = candidate - fired * slstm.threshold
        torch.testing.assert_close(states[t]["membrane"], h, rtol=0, atol=TOL)
        torch.testing.assert_close(states[t]["cell"], c, rtol=0, atol=TOL)
        assert torch.equal(spikes[t], (h > slstm.threshold).double())
    assert_some_spikes(spikes)
    # the state matters: stepping the last input from rest gives another membrane
    fresh = slstm.step(x[:, -1], slstm.init_state(B))[1]["membrane"]
    assert not torch.allclose(fresh, states[-1]["membrane"])


@pytest.mark.parametrize("make", [lambda: LIF(3, 7), lambda: RLIF(3, 7), lambda: SLSTM(3, 7)])
def test_step_leaves_its_state_untouched_and_forward_loops_step(make):
    layer = randomised(make())
    state = {k: torch.randn(4, *shape, dtype=torch.float64) for k, shape in layer.state_spec.items()}
    before = {k: v.clone() for k, v in state.items()}
    _, new = layer.step(torch.randn(4, 3, dtype=torch.float64), state)
    for k in state:
        assert torch.equal(state[k], before[k])
        assert new[k] is not state[k]
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    torch.testing.assert_close(layer(x, state), torch.stack(run(layer, x, state)[0], dim=1), rtol=0, atol=0)


def test_spikes_of_a_state_are_the_step_output():
    layer = randomised(SLSTM(3, 7))
    out, state = layer.step(torch.randn(4, 3, dtype=torch.float64), layer.init_state(4))
    assert torch.equal(layer.spikes(state), out)


def test_initialisation_follows_the_authors():
    lif = LIF(2, 6)
    assert torch.all(lif.beta == 0.1) and torch.all(lif.threshold == 0.1)
    slstm = SLSTM(2, 500)
    assert 0 <= slstm.threshold.min() and slstm.threshold.max() <= 1 and slstm.threshold.std() > 0.2
    assert {n for n, p in slstm.named_parameters() if p.requires_grad} == {
        "threshold", "lstm_cell.weight_ih", "lstm_cell.weight_hh", "lstm_cell.bias_ih", "lstm_cell.bias_hh"
    }


@pytest.mark.parametrize(
    "args, match", [((0, 4), "sizes"), ((3, 4, "hard"), "reset"), ((3, 4, "subtract", 0.0), "slope")]
)
def test_bad_layer_arguments_are_rejected(args, match):
    for cls in (LIF, RLIF, SLSTM):
        with pytest.raises(ValueError, match=match):
            cls(*args)


# inference path (torch.inference_mode): one stacked GEMM and in-place updates, equal to the reference to rounding
INFERENCE_TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def random_state(layer, batch, dtype):
    """A state away from rest: membranes around the thresholds, cells of order one."""
    return {k: (0.3 * torch.randn(batch, *shape, dtype=dtype)) for k, shape in layer.state_spec.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("make", [LIF, RLIF, SLSTM], ids=["lif", "rlif", "slstm"])
def test_inference_path_equals_the_reference_path(make, reset, dtype):
    layer = randomised(make(6, 24, reset=reset)).to(dtype)
    x = 2 * torch.randn(B, T, 6, dtype=dtype)
    state, tol, all_spikes = random_state(layer, B, dtype), INFERENCE_TOL[dtype], []
    for t in range(T):  # each step from the reference state, so that rounding does not accumulate
        with torch.no_grad():
            spikes, new = layer.step(x[:, t], state)
        with torch.inference_mode():
            fast_spikes, fast = layer.step(x[:, t], state)
        assert torch.equal(fast_spikes, spikes), t
        assert fast.keys() == new.keys() and all(fast[k].dtype == dtype for k in fast)
        for k in new:
            torch.testing.assert_close(fast[k], new[k], rtol=tol, atol=tol)
        state = new
        all_spikes.append(spikes)
    assert_some_spikes(all_spikes)


@pytest.mark.parametrize("make", [LIF, RLIF, SLSTM], ids=["lif", "rlif", "slstm"])
def test_inference_path_leaves_the_state_untouched_and_follows_parameter_changes(make):
    layer = randomised(make(3, 7))
    state = random_state(layer, 4, torch.float64)
    before = {k: v.clone() for k, v in state.items()}
    x = torch.randn(4, 3, dtype=torch.float64)
    with torch.inference_mode():
        first = layer.step(x, state)[1]
    assert all(torch.equal(state[k], before[k]) for k in state)
    with torch.no_grad():
        next(p for name, p in layer.named_parameters() if "weight" in name).mul_(2.0)  # as an optimiser would
        expected = layer.step(x, state)[1]
    with torch.inference_mode():
        second = layer.step(x, state)[1]
    assert not torch.allclose(second["membrane"], first["membrane"])
    torch.testing.assert_close(second["membrane"], expected["membrane"], rtol=1e-12, atol=1e-12)


def test_inference_path_runs_only_in_inference_mode(monkeypatch):
    """Outside inference mode (no_grad included: torch.func may still differentiate) the reference step runs."""
    layer = randomised(SLSTM(3, 7))
    state, x = random_state(layer, 4, torch.float64), torch.randn(4, 3, dtype=torch.float64)
    calls = []

    def spy(name, method):
        def wrapped(self, *args):
            calls.append(name)
            return method(self, *args)

        return wrapped

    monkeypatch.setattr(SLSTM, "differentiable_step", spy("reference", SLSTM.differentiable_step))
    monkeypatch.setattr(SLSTM, "update_from_preactivation", spy("inference", SLSTM.update_from_preactivation))
    with torch.no_grad():
        layer.step(x, state)
    layer.step(x, state)
    with torch.inference_mode():
        layer.step(x, state)
    assert calls == ["reference", "reference", "inference"]


def test_inference_path_refuses_a_state_of_another_dtype():
    layer = randomised(SLSTM(3, 7))
    state = {k: v.float() for k, v in random_state(layer, 4, torch.float64).items()}
    with torch.inference_mode(), pytest.raises(ValueError, match="membrane is torch.float32"):
        layer.step(torch.randn(4, 3, dtype=torch.float64), state)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("make", [LIF, RLIF, SLSTM], ids=["lif", "rlif", "slstm"])
def test_input_jacobian_of_a_step_equals_autograd(make, reset):
    layer = randomised(make(5, 7, reset=reset)).double()
    x, state = torch.randn(B, 5, dtype=torch.float64), random_state(layer, B, torch.float64)
    downstream = torch.randn(3, 7, dtype=torch.float64)

    def mapped(row: torch.Tensor, index: int) -> torch.Tensor:
        one = {k: v[index : index + 1] for k, v in state.items()}
        return downstream @ layer.differentiable_step(row[None], one)[1]["membrane"][0]

    expected = torch.stack([torch.autograd.functional.jacobian(lambda row: mapped(row, b), x[b]) for b in range(B)])
    with torch.inference_mode():
        new, jacobian = layer.inference_step_with_jacobian(x, state, downstream)
        _, reference = layer.step(x, state)
    assert jacobian.shape == (B, 3, 5)
    torch.testing.assert_close(jacobian, expected, rtol=1e-12, atol=1e-12)
    for k in reference:
        torch.testing.assert_close(new[k], reference[k], rtol=1e-12, atol=1e-12)
