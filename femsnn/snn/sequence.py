"""Whole-sequence training path: an SLSTM layer and a leaky integrator over all T steps, each one autograd node.

Looping ``differentiable_step`` records some twenty autograd nodes per layer and step, and most of a
training batch's time went into that bookkeeping and into T small GEMMs per weight. Here the
input-side GEMMs of a layer run once over all steps (the caller's ``x @ W^T + b``), the recurrence
runs without autograd, and the backward pass is written out by hand (BPTT through the LSTM gates,
the reset and the arctan surrogate), with the recurrent weight's gradient as one GEMM over all steps.
The maths is that of :meth:`femsnn.snn.neurons.SLSTM.differentiable_step` and of the decoder's
step; only the order of summation differs, so results agree to rounding (tests/snn/test_sequence.py).

Layout is time-major, (T, B, n), so that every step reads and writes contiguous blocks.
"""

from __future__ import annotations

import torch
from torch import Tensor

from femsnn.snn.surrogate import surrogate_derivative


class SLSTMSequence(torch.autograd.Function):
    """SLSTM recurrence over T steps from the input-side gate pre-activations (gate order i, f, g, o).

    Inputs: pre (T, B, 4n) = W_ih x_t + b_ih + b_hh, w_hh (4n, n), threshold (n,), h0 and c0 (B, n),
    reset mode, surrogate slope. Outputs: spikes (T, B, n) (arctan surrogate gradient), membranes
    (T, B, n) after the reset, and the last cell state (B, n).
    """

    @staticmethod
    def forward(ctx, pre: Tensor, w_hh: Tensor, threshold: Tensor, h0: Tensor, c0: Tensor, reset: str, slope: float):  # noqa: D102
        n = w_hh.shape[1]
        gates = torch.empty_like(pre)  # activated: i, f, g = tanh, o
        cells, tanh_cells, membranes = (pre.new_empty((pre.shape[0], *h0.shape)) for _ in range(3))
        fired = torch.empty_like(cells)  # R_t = H(h_{t-1} - U_thr), detached
        w_t = w_hh.t()
        h, c = h0, c0
        for p, a, cell, tanh_cell, membrane, reset_signal in zip(
            pre.unbind(0), gates.unbind(0), cells.unbind(0), tanh_cells.unbind(0), membranes.unbind(0), fired.unbind(0)
        ):
            torch.addmm(p, h, w_t, out=a)
            input_forget, g, o = a.split((2 * n, n, n), dim=1)
            input_forget.sigmoid_()
            g.tanh_()
            o.sigmoid_()
            torch.mul(input_forget[:, n:], c, out=cell).addcmul_(input_forget[:, :n], g)
            torch.tanh(cell, out=tanh_cell)
            torch.mul(o, tanh_cell, out=membrane)
            torch.gt(h, threshold, out=reset_signal)
            if reset == "subtract":
                membrane.addcmul_(reset_signal, threshold, value=-1)
            elif reset == "zero":
                membrane.addcmul_(membrane, reset_signal, value=-1)  # h̃ (1 - R)
            h, c = membrane, cell
        ctx.save_for_backward(w_hh, threshold, h0, c0, gates, cells, tanh_cells, membranes, fired)
        ctx.reset, ctx.slope = reset, slope
        ctx.set_materialize_grads(False)
        return (membranes > threshold).to(pre.dtype), membranes, cells[-1].clone()

    @staticmethod
    def backward(ctx, d_spikes: Tensor | None, d_membranes: Tensor | None, d_cell: Tensor | None):  # noqa: D102
        w_hh, threshold, h0, c0, gates, cells, tanh_cells, membranes, fired = ctx.saved_tensors
        steps, batch, n = membranes.shape
        d_h = torch.zeros_like(membranes) if d_membranes is None else d_membranes.clone()
        d_threshold = torch.zeros_like(threshold)
        if d_spikes is not None:
            through_spikes = d_spikes * surrogate_derivative(membranes - threshold, ctx.slope)
            d_h += through_spikes
            d_threshold -= through_spikes.sum((0, 1))
        # per-step factors, in bulk: d pre_t = [d c_t g_t, d c_t c_{t-1}, d c_t i_t, d h̃_t tanh c_t] * activation'
        gate = gates.unflatten(2, (4, n))
        g = gate[:, :, 2]
        factors = torch.stack([g, torch.cat([c0[None], cells[:-1]]), gate[:, :, 0], tanh_cells], dim=2)
        activation = gate * (1 - gate)  # σ' of i, f, o
        activation[:, :, 2] = 1 - g * g  # tanh' of g
        factors *= activation
        through_cell = gate[:, :, 3] * (1 - tanh_cells * tanh_cells)  # d h̃ / d c = o (1 - tanh² c)
        if ctx.reset == "zero":  # h = h̃ (1 - R): the gradient reaches h̃ only where the neuron did not reset
            kept = 1 - fired
            through_cell *= kept
            factors[:, :, 3] *= kept
        d_pre = torch.empty_like(factors)
        d_c = torch.zeros_like(c0) if d_cell is None else d_cell.clone()
        d_h_steps, d_pre_steps = d_h.unbind(0), d_pre.unbind(0)
        for t in reversed(range(steps)):
            d_membrane, d_gates, step_factors = d_h_steps[t], d_pre_steps[t], factors[t]
            d_c.addcmul_(d_membrane, through_cell[t])
            torch.mul(d_c[:, None], step_factors[:, :3], out=d_gates[:, :3])
            torch.mul(d_membrane, step_factors[:, 3], out=d_gates[:, 3])
            d_c.mul_(gate[t, :, 1])
            if t > 0:
                d_h_steps[t - 1].addmm_(d_gates.view(batch, 4 * n), w_hh)
        if ctx.reset == "subtract":
            d_threshold -= (d_h * fired).sum((0, 1))
        d_pre = d_pre.view(steps, batch, 4 * n)
        previous = torch.cat([h0[None], membranes[:-1]])
        d_w_hh = previous.view(steps * batch, n).t().mm(d_pre.view(steps * batch, 4 * n)).t().contiguous()  # the fast layout
        d_h0 = d_pre[0].mm(w_hh) if ctx.needs_input_grad[3] else None
        return d_pre, d_w_hh, d_threshold, d_h0, d_c if ctx.needs_input_grad[4] else None, None, None


class LeakyScan(torch.autograd.Function):
    """Non-resetting leaky integrators over T steps: m_t = decay m_{t-1} + a_t, from m0 (B, n); a (T, B, n)."""

    @staticmethod
    def forward(ctx, decay: Tensor, current: Tensor, m0: Tensor) -> Tensor:  # noqa: D102
        out = torch.empty_like(current)
        previous = m0
        for t in range(current.shape[0]):
            previous = torch.addcmul(current[t], decay, previous, out=out[t])
        ctx.save_for_backward(decay, m0, out)
        return out

    @staticmethod
    def backward(ctx, d_out: Tensor):  # noqa: D102
        decay, m0, out = ctx.saved_tensors
        d_current = d_out.clone()
        for t in reversed(range(d_current.shape[0] - 1)):
            d_current[t].addcmul_(decay, d_current[t + 1])
        previous = torch.cat([m0[None], out[:-1]])
        d_decay = (d_current * previous).sum((0, 1))
        d_m0 = decay * d_current[0] if ctx.needs_input_grad[2] else None
        return d_decay, d_current, d_m0


def slstm_sequence(
    pre: Tensor, w_hh: Tensor, threshold: Tensor, h0: Tensor, c0: Tensor, reset: str, slope: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Spikes, membranes (T, B, n) and the last cell state (B, n) of an SLSTM layer (:class:`SLSTMSequence`)."""
    if pre.ndim != 3 or pre.shape[2] != 4 * w_hh.shape[1] or pre.shape[0] < 1:
        raise ValueError(f"gate pre-activations must be (T >= 1, B, {4 * w_hh.shape[1]}), got {tuple(pre.shape)}")
    return SLSTMSequence.apply(pre, w_hh, threshold, h0, c0, reset, slope)


def leaky_scan(decay: Tensor, current: Tensor, m0: Tensor) -> Tensor:
    """Membranes (T, B, n) of leaky integrators m_t = decay m_{t-1} + current_t (:class:`LeakyScan`)."""
    if current.ndim != 3 or current.shape[0] < 1 or current.shape[1:] != m0.shape:
        raise ValueError(f"current must be (T >= 1, *{tuple(m0.shape)}), got {tuple(current.shape)}")
    return LeakyScan.apply(decay, current, m0)
