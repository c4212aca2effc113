"""Membrane decoder: non-resetting leaky integrators and one population per output component."""

import pytest
import torch

from femsnn.snn.decoder import MembraneDecoder


def test_population_vote_by_hand():
    torch.manual_seed(1)
    dec = MembraneDecoder(n_hidden=6, n_outputs=3, population=4).double()
    with torch.no_grad():
        dec.beta1.uniform_(-0.5, 1.5)  # clamped to [0, 1] in use
    state = {k: torch.randn(5, *shape, dtype=torch.float64) for k, shape in dec.state_spec.items()}
    membrane = torch.randn(5, 6, dtype=torch.float64)
    y, new = dec.step(membrane, state)
    m1 = dec.beta1.clamp(0, 1) * state["membrane1"] + membrane @ dec.linear1.weight.T + dec.linear1.bias
    m2 = dec.beta2 * state["membrane2"] + m1 @ dec.linear2.weight.T + dec.linear2.bias
    torch.testing.assert_close(new["membrane1"], m1)
    torch.testing.assert_close(new["membrane2"], m2)
    for k in range(3):
        torch.testing.assert_close(y[:, k], m2[:, 4 * k : 4 * (k + 1)].mean(dim=1))


def test_beta_initialisation():
    assert torch.all(MembraneDecoder(8, 1, 16, beta_init=0.1).beta2 == 0.1)
    uniform = MembraneDecoder(400, 1, 400).beta1
    assert 0 <= uniform.min() and uniform.max() <= 1 and uniform.std() > 0.2


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="population"):
        MembraneDecoder(8, 1, 0)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_inference_mode_equals_the_reference(dtype, tol):
    torch.manual_seed(2)
    dec = MembraneDecoder(n_hidden=6, n_outputs=3, population=4).to(dtype)
    with torch.no_grad():
        dec.beta2.uniform_(-0.5, 1.5)
    state = {k: torch.randn(5, *shape, dtype=dtype) for k, shape in dec.state_spec.items()}
    membrane = torch.randn(5, 6, dtype=dtype)
    y, new = dec.step(membrane, state)
    with torch.inference_mode():
        fast_y, fast = dec.step(membrane, state)
    torch.testing.assert_close(fast_y, y, rtol=tol, atol=tol)
    for k in new:
        torch.testing.assert_close(fast[k], new[k], rtol=tol, atol=tol)


def test_input_map_is_the_derivative_of_the_vote_by_the_membrane():
    torch.manual_seed(3)
    decoder = MembraneDecoder(6, 2, population=3).double()
    state = {k: torch.randn(1, *shape, dtype=torch.float64) for k, shape in decoder.state_spec.items()}
    membrane = torch.randn(6, dtype=torch.float64)
    expected = torch.autograd.functional.jacobian(lambda u: decoder.step(u[None], state)[0][0], membrane)
    torch.testing.assert_close(decoder.input_map(), expected, rtol=1e-12, atol=1e-12)
