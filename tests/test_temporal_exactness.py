"""The temporal engines' eligibility traces and updates against unrolled autograd references
written here (Bellec et al. 2020; Bohnstingl et al. 2022, OSTL):

* a recurrent layer's traces are the derivatives dz_j(t)/dW_ji along the paths e-prop keeps (the
  neuron's own membrane and adaptation; other neurons' spikes and the reset held fixed);
* for a feed-forward LIF / ALIF layer with a given learning signal, the trace update (OSTL) is
  BPTT's gradient exactly, the reset kept;
* e-prop with the readout's weights as feedback is BPTT when the recurrent weights are zero, the
  readout's filter folded into the trace and the reset detached in both;
* random e-prop and OSTTP are sum_t L_k(t) ebar_k(t) and sum_t L_k(t) e_k(t) with their signals.

The references use their own LIF / ALIF loop and surrogate (SuperSpike, slope 4), in float64.
"""

from __future__ import annotations

import math

import pytest
import torch

from snn_drtp.core.networks import parse_spec
from snn_drtp.core.params import Params
from snn_drtp.rules import Eligibility, get_rule
from snn_drtp.spiking.neuron import LIFParams
from snn_drtp.temporal.engine import TemporalOptions, TemporalRateEngine, TemporalSpikingEngine
from snn_drtp.temporal.readout import ReadoutParams

DT, TAU_MEM, THETA, SLOPE = 1e-3, 10e-3, 0.4, 4.0
TAU_ADAPT, BETA, TAU_OUT, T, LOSS_STEPS = 30e-3, 0.2, 15e-3, 40, 8
ALPHA, RHO, KAPPA = math.exp(-DT / TAU_MEM), math.exp(-DT / TAU_ADAPT), math.exp(-DT / TAU_OUT)


class Spike(torch.autograd.Function):
    """H(d - theta) forward, 1 / (1 + slope |d - theta|)^2 backward."""

    @staticmethod
    def forward(ctx, d):
        ctx.save_for_backward(d)
        return (d >= THETA).to(d.dtype)

    @staticmethod
    def backward(ctx, grad):
        (d,) = ctx.saved_tensors
        return grad / (1 + SLOPE * (d - THETA).abs()) ** 2


def network(kind: str, adaptive: bool, n_in=6, units=5, classes=3, seed=0):
    hidden = {"kind": kind, "units": units}
    if adaptive:
        hidden |= {"tau_adapt": TAU_ADAPT, "adapt": BETA}
    spec = parse_spec(
        {
            "name": "exactness",
            "input_shape": [n_in],
            "layers": [hidden, {"kind": "readout", "units": classes}],
            "neuron": {"dt": DT, "tau_mem": TAU_MEM, "threshold": THETA},
        }
    )
    params = Params(spec, seed=seed).double()
    with torch.no_grad():  # strong enough input weights that the hidden neurons spike often
        params.layers[0].weight.mul_(0.6)
    return params


def engine(params, spiking=True, detach_reset=True, chunk_steps=32):
    options = TemporalOptions(
        neuron=LIFParams(dt=DT, tau_mem=TAU_MEM, threshold=THETA),
        slope=SLOPE,
        detach_reset=detach_reset,
        readout=ReadoutParams(tau_out=TAU_OUT, loss_steps=LOSS_STEPS),
        chunk_steps=chunk_steps,
    )
    return (TemporalSpikingEngine if spiking else TemporalRateEngine)(params, options)


def data(n_in=6, batch=3, classes=3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, batch, n_in, generator=gen) < 0.3).double()
    labels = torch.arange(batch) % classes
    return x, torch.nn.functional.one_hot(labels, classes).double()


def reference_forward(params, x, spiking=True, detach_reset=True, cut_recurrent=False, leaves=None):
    """The unrolled network: z(t) [T, B, N] and the readout y(t) [T, B, C], with autograd."""
    W, b = (leaves or {}).get("W", params.layers[0].weight), (leaves or {}).get("b", params.layers[0].bias)
    R = (leaves or {}).get("R", params.layers[0].recurrent)
    W_out, b_out = params.layers[1].weight, params.layers[1].bias
    adaptive = params.spec.layers[0].adapt != 0
    B, N = x.shape[1], W.shape[0]
    u = torch.zeros(B, N, dtype=x.dtype)
    a = torch.zeros(B, N, dtype=x.dtype)
    z = torch.zeros(B, N, dtype=x.dtype)
    y = torch.zeros(B, W_out.shape[0], dtype=x.dtype)
    zs, ys = [], []
    for t in range(T):
        current = x[t] @ W.T + b
        if R is not None:
            current = current + (z.detach() if cut_recurrent else z) @ R.T
        v = ALPHA * u + current
        if not spiking:
            z = torch.tanh(v)
            u = v
        else:
            if adaptive:
                a = RHO * a + z
            z = Spike.apply(v - BETA * a if adaptive else v)
            u = v - THETA * (z.detach() if detach_reset else z)
        y = KAPPA * y + z @ W_out.T + b_out
        zs.append(z)
        ys.append(y)
    return torch.stack(zs), torch.stack(ys)


def reference_traces(params, x, spiking=True, detach_reset=True):
    """dz_j(t)/d[W, R, b]_j. for every t and example: the recurrent input cut (e-prop's paths),
    [T, B, N, P] by autograd, one example and one step at a time."""
    layer = params.layers[0]
    tensors = [layer.weight, layer.bias] + ([layer.recurrent] if layer.recurrent is not None else [])
    size = sum(t.shape[1] if t.dim() == 2 else 1 for t in tensors)
    traces = torch.zeros(T, x.shape[1], layer.weight.shape[0], size, dtype=torch.float64)
    for n in range(x.shape[1]):
        leaves = {name: t.detach().clone().requires_grad_(True) for name, t in zip("WbR", tensors, strict=False)}
        zs, _ = reference_forward(params, x[:, n : n + 1], spiking, detach_reset, cut_recurrent=True, leaves=leaves)
        for t in range(T):
            grads = torch.autograd.grad(zs[t].sum(), list(leaves.values()), retain_graph=True, allow_unused=True)
            grads = [torch.zeros_like(leaf) if g is None else g for g, leaf in zip(grads, leaves.values(), strict=True)]
            gW, gb = grads[0], grads[1].unsqueeze(1)
            blocks = [gW] + ([grads[2]] if len(grads) == 3 else []) + [gb]
            traces[t, n] = torch.cat(blocks, dim=1)
    return traces


@pytest.mark.parametrize("adaptive", [False, True], ids=["LIF", "ALIF"])
def test_recurrent_traces_are_the_derivatives_along_the_paths_eprop_keeps(adaptive):
    params = network("recurrent", adaptive)
    x, _ = data()
    ours = engine(params).eligibility_history(x, 1)
    ref = reference_traces(params, x)
    assert ref.abs().max() > 0.05  # the neurons spike and their traces are not all zero
    assert ref[:, :, :, 6:11].abs().max() > 0  # the recurrent synapses' too
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)
    for k in (0, 2):  # one hidden layer: the readout (2) and a layer 0 have no trace, and say so
        with pytest.raises(ValueError, match=rf"hidden layers 1 \.\.\. 1 \(the readout has no trace\), got k = {k}"):
            engine(params).eligibility_history(x, k)


@pytest.mark.parametrize("adaptive", [False, True], ids=["LIF", "ALIF"])
@pytest.mark.parametrize("detach_reset", [False, True], ids=["reset-kept", "reset-detached"])
def test_ostl_update_of_a_feed_forward_layer_is_the_bptt_gradient(adaptive, detach_reset):
    """E = sum_t sum_j L_j(t) z_j(t) for a given learning signal L: dE/dW by autograd through the
    whole unrolled layer (reset path kept or not) equals sum_t L(t) e(t)."""
    params = network("dense", adaptive)
    x, _ = data()
    gen = torch.Generator().manual_seed(7)
    L = torch.randn(T, x.shape[1], 5, generator=gen, dtype=torch.float64)
    leaves = {"W": params.layers[0].weight.detach().clone().requires_grad_(True)}
    leaves["b"] = params.layers[0].bias.detach().clone().requires_grad_(True)
    zs, _ = reference_forward(params, x, detach_reset=detach_reset, leaves=leaves)
    assert zs.sum() > 10
    gW, gb = torch.autograd.grad((L * zs).sum(), [leaves["W"], leaves["b"]])
    traces = engine(params, detach_reset=detach_reset).eligibility_history(x, 1)
    update = torch.einsum("tbj,tbjp->jp", L, traces)
    torch.testing.assert_close(update[:, :-1], gW, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(update[:, -1], gb, rtol=1e-9, atol=1e-12)


def window_loss(ys, y_star):
    """E = -(1 / (N W)) sum over the last W steps and examples of y* . log softmax(y(t))."""
    logp = torch.log_softmax(ys[-LOSS_STEPS:], dim=2)
    return -(y_star * logp).sum() / (LOSS_STEPS * y_star.shape[0])


@pytest.mark.parametrize("spiking", [True, False], ids=["LIF", "tanh"])
def test_symmetric_eprop_is_bptt_without_recurrent_weights(spiking):
    params = network("recurrent", False)
    with torch.no_grad():
        params.layers[0].recurrent.zero_()
    x, y_star = data()
    names = ("W", "b", "R")
    layer = params.layers[0]
    leaves = {n: t.detach().clone().requires_grad_(True) for n, t in zip(names, layer.tensors(), strict=True)}
    _, ys = reference_forward(params, x, spiking, leaves=leaves)
    reference = torch.autograd.grad(window_loss(ys, y_star), [leaves[n] for n in names])
    assert reference[0].abs().max() > 1e-4
    ours = engine(params, spiking)
    for rule in ("eprop-sym", "bp"):
        ours.train_step(x, y_star, get_rule(rule))
        for tensor, ref in zip(layer.tensors(), reference, strict=True):
            torch.testing.assert_close(
                tensor.grad,
                ref.fill_diagonal_(0.0)
                if ref.dim() == 2 and ref.shape[0] == ref.shape[1] and tensor is layer.recurrent
                else ref,
                rtol=1e-8,
                atol=1e-12,
            )
            tensor.grad = None


def test_eprop_differs_from_bptt_with_recurrent_weights():
    """With R != 0 e-prop drops the paths through other neurons: not BPTT (the test above is not
    satisfied by any rule that ignores R)."""
    params = network("recurrent", False)
    with torch.no_grad():
        params.layers[0].recurrent.mul_(8.0)
    x, y_star = data()
    ours = engine(params)
    grads = {}
    for rule in ("eprop-sym", "bp"):
        ours.train_step(x, y_star, get_rule(rule))
        grads[rule] = params.layers[0].weight.grad.clone()
    assert not torch.allclose(grads["eprop-sym"], grads["bp"], rtol=1e-3)


@pytest.mark.parametrize(
    ("adaptive", "chunk_steps"),
    [(False, 32), (True, 32), (False, 1), (False, 5), (False, 64)],
    ids=["LIF", "ALIF", "LIF-chunk1", "LIF-chunk5", "LIF-chunk64"],
)
def test_random_eprop_and_osttp_updates_from_their_learning_signals(adaptive, chunk_steps):
    """Random e-prop: sum_t w(t) [(pi(t) - y*) B] ebar(t), ebar(t) = kappa ebar(t-1) + e(t);
    OSTTP: sum_t w(t) [y* B] e(t), w(t) = 1 / (N W) in the window; e(t) from the autograd reference.
    The LIF's factorised filtered trace is folded in chunks of ``chunk_steps`` (T = 40: one chunk,
    or several with the loss window inside one or across two): the same update."""
    params = network("recurrent", adaptive)
    x, y_star = data()
    e = reference_traces(params, x)
    ebar = torch.zeros_like(e)
    for t in range(T):
        ebar[t] = (KAPPA * ebar[t - 1] if t else 0) + e[t]
    with torch.no_grad():
        _, ys = reference_forward(params, x)
    pi = torch.softmax(ys, dim=2)
    w = torch.zeros(T, dtype=torch.float64)
    w[-LOSS_STEPS:] = 1.0 / (LOSS_STEPS * x.shape[1])
    B = params.feedback(1)
    expected = {
        "eprop": torch.einsum("t,tbj,tbjp->jp", w, (pi - y_star) @ B, ebar),
        "osttp": torch.einsum("t,bj,tbjp->jp", w, y_star @ B, e),
    }
    ours = engine(params, chunk_steps=chunk_steps)
    torch.testing.assert_close(ours.eligibility_history(x, 1, Eligibility.FILTERED), ebar, rtol=1e-9, atol=1e-12)
    layer = params.layers[0]
    for rule, update in expected.items():
        ours.train_step(x, y_star, get_rule(rule))
        assert update.abs().max() > 1e-5
        torch.testing.assert_close(layer.weight.grad, update[:, :6], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(layer.recurrent.grad, update[:, 6:11].fill_diagonal_(0.0), rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(layer.bias.grad, update[:, -1], rtol=1e-9, atol=1e-12)


def test_instant_eligibility_is_the_present_step_only():
    """Three-factor DRTP on the temporal engine: psi_j(t) p_i(t), no history."""
    params = network("dense", False)
    x, _ = data()
    ours = engine(params).eligibility_history(x, 1, Eligibility.INSTANT)
    traces = engine(params).eligibility_history(x, 1, Eligibility.TRACE)
    pre = torch.cat([x, torch.ones(T, x.shape[1], 1, dtype=x.dtype)], dim=2)
    psi_times_pbar = traces  # e(t) = psi(t) pbar(t); with pbar replaced by p(t):
    pbar = torch.zeros_like(pre)
    for t in range(T):
        pbar[t] = (ALPHA * pbar[t - 1] if t else 0) + pre[t]
    psi = psi_times_pbar[:, :, :, -1] / pbar[:, :, None, -1]
    torch.testing.assert_close(ours, psi.unsqueeze(3) * pre.unsqueeze(2), rtol=1e-9, atol=1e-12)
