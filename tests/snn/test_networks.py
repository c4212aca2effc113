"""Regressors: the spiking regressor against the authors' architecture built from snnTorch, the LSTM
baseline's step against its fused forward, state handling, dtypes and the architecture round trip."""

import copy
import json

import pytest
import snntorch as snn
import torch

from femsnn.config import ConfigError
from femsnn.snn import networks
from femsnn.snn.networks import (
    EnsembleRegressor,
    LSTMRegressor,
    SpikingRegressor,
    build_regressor,
    regressor_spec,
)

B, T = 8, 15
TOL = 1e-6


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def randomised(net):
    """net in float64 with random decays and thresholds low enough for the neurons to fire."""
    net = net.double()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("beta") or ".beta" in name:
                p.uniform_(0.0, 1.0)
            elif name.endswith("threshold"):
                p.uniform_(0.0, 0.2 if net.neuron == "slstm" else 0.5)
    return net


def snntorch_twin(net):
    """The authors' model.py architecture from snnTorch modules, with net's parameters (one step function)."""
    layers = []
    for layer in net.spiking_layers:
        thr = layer.threshold.detach().clone()
        if net.neuron == "slstm":
            cell = snn.SLSTM(layer.n_inputs, layer.n_outputs, threshold=thr, reset_mechanism=net.reset).double()
            cell.lstm_cell.load_state_dict(layer.lstm_cell.state_dict())
            layers.append((None, cell))
        elif net.neuron == "lif":
            cell = snn.Leaky(beta=layer.beta.detach().clone(), threshold=thr, reset_mechanism=net.reset).double()
            layers.append((copy.deepcopy(layer.linear), cell))
        else:
            cell = snn.RLeaky(
                beta=layer.beta.detach().clone(),
                threshold=thr,
                linear_features=layer.n_outputs,
                reset_mechanism=net.reset,
            ).double()
            with torch.no_grad():
                cell.recurrent.weight.copy_(layer.recurrent.weight)
                cell.recurrent.bias.zero_()
            layers.append((copy.deepcopy(layer.linear), cell))
    dec = net.decoder
    fc4, lif4 = copy.deepcopy(dec.linear1), snn.Leaky(beta=dec.beta1.detach().clone(), reset_mechanism="none").double()
    fc5, lif5 = copy.deepcopy(dec.linear2), snn.Leaky(beta=dec.beta2.detach().clone(), reset_mechanism="none").double()

    def run(x):
        """x (B, T, n_inputs) -> outputs (B, T, n_outputs), spikes per step per layer."""
        states = [dict(mem=torch.zeros(x.shape[0], l.n_outputs, dtype=x.dtype)) for l in net.spiking_layers]
        for s in states:
            s["syn"], s["spk"] = torch.zeros_like(s["mem"]), torch.zeros_like(s["mem"])
        mem4 = torch.zeros(x.shape[0], dec.n_inputs, dtype=x.dtype)
        mem5 = torch.zeros(x.shape[0], dec.population * dec.n_outputs, dtype=x.dtype)
        outputs, spikes = [], []
        for t in range(x.shape[1]):
            signal, step_spikes = x[:, t], []
            for (fc, cell), s in zip(layers, states):
                if net.neuron == "slstm":
                    s["spk"], s["syn"], s["mem"] = cell(signal, s["syn"], s["mem"])
                elif net.neuron == "lif":
                    s["spk"], s["mem"] = cell(fc(signal), s["mem"])
                else:
                    s["spk"], s["mem"] = cell(fc(signal), s["spk"].double(), s["mem"])
                signal = s["spk"].double()
                step_spikes.append(signal)
            _, mem4 = lif4(fc4(states[-1]["mem"]), mem4)
            _, mem5 = lif5(fc5(mem4), mem5)
            outputs.append(mem5.unflatten(-1, (dec.n_outputs, dec.population)).mean(-1))
            spikes.append(step_spikes)
        return torch.stack(outputs, dim=1), spikes

    return run


@pytest.mark.parametrize(
    "neuron, n_inputs, hidden, reset",
    [
        ("lif", 2, [9, 7, 7], "subtract"),
        ("rlif", 1, [8, 8, 8], "subtract"),
        ("rlif", 1, [8, 8], "none"),
        ("slstm", 6, [6, 6, 6], "subtract"),  # sizes equal: where snnTorch's SLSTM keeps its state
        ("slstm", 6, [6, 6], "zero"),
    ],
)
def test_spiking_regressor_matches_the_authors_architecture_in_snntorch(neuron, n_inputs, hidden, reset):
    net = randomised(SpikingRegressor(n_inputs, 2, neuron=neuron, hidden=hidden, population=5, reset=reset))
    x = 2 * torch.randn(B, T, n_inputs, dtype=torch.float64)
    expected, expected_spikes = snntorch_twin(net)(x)
    state = net.init_state(B)
    rates = []
    with torch.no_grad():
        for t in range(T):
            y, state = net.step(x[:, t], state)
            torch.testing.assert_close(y, expected[:, t], rtol=0, atol=TOL)
            for i, s in enumerate(net.spikes(state).values()):
                assert torch.equal(s, expected_spikes[t][i]), (t, i)
                rates.append(s.mean())
    assert 0.05 < torch.stack(rates).mean() < 0.95  # the spikes carried information


@pytest.mark.parametrize(
    "make",
    [
        lambda: SpikingRegressor(3, 2, neuron="slstm", hidden=[5, 4], population=3),
        lambda: SpikingRegressor(3, 2, neuron="rlif", hidden=[5, 4], population=3),
        lambda: LSTMRegressor(3, 2, hidden=6, layers=2, population=3),
        lambda: EnsembleRegressor([SpikingRegressor(3, 2, "slstm", [5, 4], 3), SpikingRegressor(3, 2, "lif", [4], 2, skip=True)]),
    ],
)
def test_step_is_pure_and_forward_equals_looping_step(make):
    net = make().double()
    state = {k: torch.randn(B, *shape, dtype=torch.float64) for k, shape in net.state_spec.items()}
    before = {k: v.clone() for k, v in state.items()}
    x = torch.randn(B, T, 3, dtype=torch.float64)
    looped, s = [], state
    for t in range(T):
        y, s = net.step(x[:, t], s)
        looped.append(y)
    assert all(torch.equal(state[k], before[k]) for k in state)
    looped = torch.stack(looped, dim=1)
    torch.testing.assert_close(net(x, state), looped, rtol=0, atol=1e-12)
    assert not torch.allclose(net(x), looped)  # the given state was used
    zeros = net.init_state(B)
    assert net.step(x[:, 0], zeros)[0].shape == (B, 2)


def test_lstm_regressor_is_the_papers_baseline():
    net = LSTMRegressor(1, 1, hidden=16, layers=3, population=8)
    ref_lstm = torch.nn.LSTM(1, 16, num_layers=3)  # the authors' (T, B, n) layout
    ref_lstm.load_state_dict(net.lstm.state_dict())
    x = torch.randn(T, B, 1)
    h = net.linear2(torch.nn.functional.leaky_relu(net.linear1(ref_lstm(x)[0])))
    torch.testing.assert_close(net(x.transpose(0, 1)), h.mean(-1, keepdim=True).transpose(0, 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_follows_to(dtype):
    for net in (SpikingRegressor(2, 1, hidden=[4], population=2), LSTMRegressor(2, 1, hidden=4, population=2)):
        net = net.to(dtype)
        state = net.init_state(3)
        assert all(v.dtype == dtype for v in state.values())
        y, new = net.step(torch.randn(3, 2, dtype=dtype), state)
        assert y.dtype == dtype and all(v.dtype == dtype for v in new.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    net = SpikingRegressor(2, 1, hidden=[8, 8], population=4).double()
    x = torch.randn(B, T, 2, dtype=torch.float64)
    torch.testing.assert_close(net.to("cuda")(x.to("cuda")).cpu(), net.to("cpu")(x), rtol=0, atol=1e-9)


def test_state_names():
    net = SpikingRegressor(1, 1, neuron="slstm", hidden=[4, 3], population=2)
    assert net.state_spec == {
        "layer0.membrane": (4,),
        "layer0.cell": (4,),
        "layer1.membrane": (3,),
        "layer1.cell": (3,),
        "decoder.membrane1": (3,),
        "decoder.membrane2": (2,),
    }
    assert list(SpikingRegressor(1, 1, neuron="lif", hidden=[4], population=2).state_spec) == [
        "layer0.membrane", "decoder.membrane1", "decoder.membrane2"
    ]
    assert list(LSTMRegressor(1, 1, hidden=4, layers=2, population=2).state_spec) == [
        "layer0.hidden", "layer0.cell", "layer1.hidden", "layer1.cell"
    ]


def test_step_rejects_a_state_of_another_batch():
    net = SpikingRegressor(2, 1, hidden=[4], population=2)
    with pytest.raises(ValueError, match="must have shape"):
        net.step(torch.zeros(5, 2), net.init_state(1))


@pytest.mark.parametrize(
    "make",
    [
        lambda: SpikingRegressor(3, 2, neuron="lif", hidden=[5, 4], population=3, reset="zero", surrogate_slope=4.0),
        lambda: LSTMRegressor(3, 2, hidden=6, layers=2, population=3),
        lambda: SpikingRegressor(3, 2, neuron="slstm", hidden=[4], population=3, skip=True),
        lambda: LSTMRegressor(3, 2, hidden=6, layers=2, population=3, skip=True),
        lambda: EnsembleRegressor([SpikingRegressor(3, 2, "slstm", [4], 3), SpikingRegressor(3, 2, "slstm", [4, 4], 2)]),
    ],
)
def test_architecture_round_trips_through_json(make):
    net = make()
    spec = json.loads(json.dumps(regressor_spec(net)))
    rebuilt = build_regressor(spec)
    assert type(rebuilt) is type(net) and regressor_spec(rebuilt) == spec
    rebuilt.load_state_dict(net.state_dict())
    x = torch.randn(B, T, 3)
    torch.testing.assert_close(rebuilt(x), net(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"kind": "transformer"}, "kind"),
        ({"n_inputs": 1}, "kind"),
        ({"kind": "spiking", "n_inputs": 1, "n_outputs": 1, "neuron": "izhikevich", "hidden": [4], "population": 2}, "neuron"),
        ({"kind": "spiking", "n_inputs": 1, "n_outputs": 1, "neuron": "lif", "hidden": [], "population": 2}, "hidden"),
        ({"kind": "lstm", "n_inputs": 1, "n_outputs": 1, "hidden": 4, "population": 2, "dropout": 0.1}, "dropout: unknown key"),
        ({"kind": "lstm", "n_inputs": 1, "n_outputs": 1, "hidden": 0, "population": 2}, "hidden"),
        ({"kind": "ensemble", "members": [{"kind": "spiking", "n_inputs": 1, "n_outputs": 1, "neuron": "lif", "hidden": [4], "population": 2}]},
         "members"),
    ],
)
def test_bad_specs_name_the_problem(spec, match):
    with pytest.raises(ConfigError, match=match):
        build_regressor(spec)


def test_bad_constructor_arguments_are_rejected():
    with pytest.raises(ValueError, match="neuron"):
        SpikingRegressor(1, 1, neuron="lstm")
    with pytest.raises(ValueError, match="hidden"):
        SpikingRegressor(1, 1, hidden=[])
    with pytest.raises(ValueError, match="reset"):
        SpikingRegressor(1, 1, reset="soft")
    with pytest.raises(ValueError, match="sizes"):
        LSTMRegressor(1, 1, hidden=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("neuron, hidden, reset", [("slstm", [16, 12, 12], "subtract"), ("slstm", [9], "zero"), ("lif", [9, 7], "subtract"), ("rlif", [8, 8], "none")])
def test_inference_step_equals_the_reference_step(neuron, hidden, reset, dtype):
    """Under torch.inference_mode the layers chain their inference paths: same outputs, states and spikes."""
    net = randomised(SpikingRegressor(5, 3, neuron=neuron, hidden=hidden, population=4, reset=reset)).to(dtype)
    tol = {torch.float32: 1e-6, torch.float64: 1e-12}[dtype]
    x = 2 * torch.randn(B, T, 5, dtype=dtype)
    state, rates = net.init_state(B), []
    for t in range(T):  # each step from the reference state, so that rounding does not accumulate
        with torch.no_grad():
            y, new = net.step(x[:, t], state)
        with torch.inference_mode():
            fast_y, fast = net.step(x[:, t], state)
        torch.testing.assert_close(fast_y, y, rtol=tol, atol=tol)
        assert fast.keys() == new.keys()
        for k in new:
            torch.testing.assert_close(fast[k], new[k], rtol=tol, atol=tol)
        for name, spikes in net.spikes(new).items():
            assert torch.equal(net.spikes(fast)[name], spikes), (t, name)
            rates.append(spikes.mean())
        state = new
    assert 0.05 < torch.stack(rates).mean() < 0.95


def test_inference_step_refuses_input_of_another_dtype():
    net = SpikingRegressor(2, 1, hidden=[4], population=2).double()
    with torch.inference_mode(), pytest.raises(ValueError, match="input is torch.float32"):
        net.step(torch.zeros(3, 2), net.init_state(3))


def test_inference_step_in_blocks_equals_one_block(monkeypatch):
    net = randomised(SpikingRegressor(5, 3, neuron="slstm", hidden=[8, 8], population=4))
    x = torch.randn(23, 5, dtype=torch.float64)
    state = {k: torch.randn(23, *shape, dtype=torch.float64) for k, shape in net.state_spec.items()}
    with torch.inference_mode():
        y, new = net.step(x, state)
        monkeypatch.setattr(networks, "ONE_BLOCK_MAX", 10)
        monkeypatch.setattr(networks, "INFERENCE_BLOCK", 5)  # four full blocks and a partial one
        blocked_y, blocked = net.step(x, state)
    torch.testing.assert_close(blocked_y, y, rtol=1e-14, atol=1e-14)
    for k in new:
        torch.testing.assert_close(blocked[k], new[k], rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize(
    "make",
    [
        lambda skip: SpikingRegressor(3, 2, neuron="slstm", hidden=[5, 4], population=3, skip=skip),
        lambda skip: LSTMRegressor(3, 2, hidden=6, layers=2, population=3, skip=skip),
    ],
)
def test_skip_adds_a_linear_map_of_the_input_on_every_path(make):
    plain = make(False)
    plain = randomised(plain) if isinstance(plain, SpikingRegressor) else plain.double()
    net = make(True).double()
    assert regressor_spec(net)["skip"] and not regressor_spec(plain)["skip"]
    assert torch.count_nonzero(net.skip.weight) == 0 and torch.count_nonzero(net.skip.bias) == 0  # neutral until fitted
    with torch.no_grad():
        net.skip.weight.normal_()
        net.skip.bias.normal_()
    net.load_state_dict(plain.state_dict() | {k: v for k, v in net.state_dict().items() if k.startswith("skip.")})
    x = torch.randn(B, T, 3, dtype=torch.float64)
    linear = x @ net.skip.weight.T + net.skip.bias
    torch.testing.assert_close(net(x), plain(x) + linear, rtol=0, atol=1e-12)
    state = net.init_state(B)
    y, _ = net.step(x[:, 0], state)
    torch.testing.assert_close(y, plain.step(x[:, 0], state)[0] + linear[:, 0], rtol=0, atol=1e-12)
    with torch.inference_mode():
        fast, _ = net.step(x[:, 0], state)
    torch.testing.assert_close(fast, y, rtol=0, atol=1e-12)


def test_ensemble_output_is_the_mean_of_its_members_with_their_states_side_by_side():
    members = [randomised(SpikingRegressor(3, 2, "slstm", [6, 5], population=3)) for _ in range(3)]
    ensemble = EnsembleRegressor(members)
    assert list(ensemble.state_spec) == [f"member{i}.{k}" for i, m in enumerate(members) for k in m.state_spec]
    x = torch.randn(B, T, 3, dtype=torch.float64)
    expected = torch.stack([m(x) for m in members]).mean(dim=0)
    torch.testing.assert_close(ensemble(x), expected, rtol=0, atol=1e-12)
    y, state, spikes = ensemble.sequence(x)
    torch.testing.assert_close(y, expected, rtol=1e-10, atol=1e-10)
    assert sorted(spikes) == sorted(f"member{i}.layer{j}" for i in range(3) for j in range(2))
    final = members[1].sequence(x)[1]
    assert all(torch.allclose(state[f"member1.{k}"], v, atol=1e-10) for k, v in final.items())
    for name, value in ensemble.spikes(state).items():  # the spikes of the last step
        torch.testing.assert_close(value, spikes[name][:, -1], rtol=0, atol=0)
    with torch.inference_mode():  # the members' inference paths
        y_fast, _ = ensemble.step(x[:, 0], ensemble.init_state(B))
    torch.testing.assert_close(y_fast, expected[:, 0], rtol=0, atol=1e-12)


def test_ensemble_refuses_single_foreign_or_mismatched_members():
    with pytest.raises(ValueError, match="at least 2"):
        EnsembleRegressor([SpikingRegressor(3, 2, "lif", [4], 2)])
    with pytest.raises(ValueError, match="spiking regressors"):
        EnsembleRegressor([SpikingRegressor(3, 2, "lif", [4], 2), LSTMRegressor(3, 2, 4, 1, 2)])
    with pytest.raises(ValueError, match="same inputs"):
        EnsembleRegressor([SpikingRegressor(3, 2, "lif", [4], 2), SpikingRegressor(3, 1, "lif", [4], 2)])
    member = SpikingRegressor(3, 2, "lif", [4], 2)
    with pytest.raises(ValueError, match="distinct"):
        EnsembleRegressor([member, member])
    with pytest.raises(ValueError, match="dtype"):
        EnsembleRegressor([member, SpikingRegressor(3, 2, "lif", [4], 2).double()])
    with pytest.raises(ValueError, match=r"\(B, T >= 1, 3\)"):
        EnsembleRegressor([member, SpikingRegressor(3, 2, "lif", [4], 2)]).sequence(torch.zeros(4, 3))
