"""Backpropagation through time for backward-sweep rules (BP, FA) in the spiking engine."""

import math

import pytest
import torch
from conftest import tiny_spec
from test_spiking_updates import engine_for, labels, spike_train

from snn_drtp.core.networks import parse_spec
from snn_drtp.core.params import Params
from snn_drtp.data.tensors import TensorData
from snn_drtp.rules import get_rule
from snn_drtp.runs.training import alignment
from snn_drtp.spiking import LIFParams, SpikeTrain, SpikingEngine, SpikingOptions
from snn_drtp.spiking.bptt import backward_through_time
from snn_drtp.spiking.encoders import rate

BETA = 3.0


def smooth_spike(v: torch.Tensor, theta: float) -> torch.Tensor:
    return torch.sigmoid(BETA * (v - theta))


def unrolled_loss(weights, spikes, y_star, alpha, theta, masks=None) -> torch.Tensor:
    """J = sum (count / T - y*)^2 / (2 N C) of a LIF network whose spikes are sigmoid(beta (v - theta)),
    unrolled step by step with reset by subtraction; ``masks[k]`` [N, D_k] (dropout) multiplies layer
    k's input at every step."""
    T, N = spikes.shape[:2]
    v = [torch.zeros(N, w.shape[0], dtype=torch.float64) for w, _ in weights]
    counts = torch.zeros(N, weights[-1][0].shape[0], dtype=torch.float64)
    for t in range(T):
        s = spikes[t].reshape(N, -1)
        for k, (w, b) in enumerate(weights):
            if masks is not None:
                s = s * masks[k]
            v[k] = alpha * v[k] + (1 - alpha) * (s @ w.T + b)
            s = torch.sigmoid(BETA * (v[k] - theta))
            v[k] = v[k] - s * theta
        counts = counts + s
    return ((counts / T - y_star) ** 2).sum() / (2 * y_star.numel())


def test_bptt_through_time_equals_finite_differences():
    """T = 7 steps, two layers, smooth spikes: every gradient entry against a central difference of
    the unrolled loss in float64."""
    neuron = LIFParams(dt=1e-3, tau_mem=5e-3, threshold=0.5)
    engine = SpikingEngine(Params(tiny_spec(("tanh",), (4,), 5, 3), seed=2).double(), SpikingOptions(neuron=neuron))
    with torch.no_grad():
        for layer in engine.params.layers:
            layer.weight.mul_(4.0)
    spikes, y_star = spike_train(7, 3, 5).double(), labels(3).double()
    res = backward_through_time(
        engine.params, engine.layers, SpikeTrain(spikes), y_star, get_rule("bp"), [None, None], spike_fn=smooth_spike
    )
    weights = [[layer.weight.detach().clone(), layer.bias.detach().clone()] for layer in engine.params.layers]
    loss = unrolled_loss(weights, spikes, y_star, neuron.alpha, neuron.threshold)
    assert res.loss == pytest.approx(float(loss), rel=1e-12)
    h = 1e-6
    for k, layer in enumerate(engine.params.layers):
        for j, param in enumerate((layer.weight, layer.bias)):
            numeric = torch.zeros_like(param)
            for i in range(param.numel()):
                for sign in (1, -1):
                    shifted = [[t.clone() for t in pair] for pair in weights]
                    shifted[k][j].view(-1)[i] += sign * h
                    numeric.view(-1)[i] += sign * unrolled_loss(shifted, spikes, y_star, neuron.alpha, 0.5) / (2 * h)
            torch.testing.assert_close(param.grad, numeric, rtol=1e-5, atol=1e-9)


def test_bptt_at_one_step_equals_the_chain_rule_with_the_surrogate():
    """T = 1: J = |y_hat - y*|^2 / (2 N C), y_hat = s_2, ds/dv = psi(v) = 1 / (1 + k |v - theta|)^2,
    dv/dI = 1 - alpha."""
    engine = engine_for(steps=1)
    x = torch.rand(4, 1, 1, 5, generator=torch.Generator().manual_seed(6))
    y_star = torch.eye(3)[[0, 1, 2, 1]]
    engine.train_step(x, y_star, get_rule("bp"), 0.0, torch.Generator().manual_seed(1))
    p, k = engine.options.neuron, engine.options.slope
    s0 = rate(x.reshape(4, -1), 1, torch.Generator().manual_seed(1))[0]
    W1, b1, W2, b2 = (t.detach() for t in engine.params.parameters())
    v1 = (1 - p.alpha) * (s0 @ W1.T + b1)
    s1 = (v1 >= p.threshold).float()
    v2 = (1 - p.alpha) * (s1 @ W2.T + b2)
    s2 = (v2 >= p.threshold).float()

    def psi(v):
        return 1 / (1 + k * (v - p.threshold).abs()) ** 2

    d2 = (s2 - y_star) / y_star.numel() * psi(v2) * (1 - p.alpha)
    d1 = (d2 @ W2) * psi(v1) * (1 - p.alpha)
    assert s1.sum() > 0 and d1.abs().sum() > 0
    for param, e in zip(engine.params.parameters(), [d1.T @ s0, d1.sum(0), d2.T @ s1, d2.sum(0)], strict=True):
        torch.testing.assert_close(param.grad, e, rtol=1e-5, atol=1e-8)


def test_fa_through_time_is_bp_when_its_matrices_are_the_weights():
    """FA sends the error down through F_k instead of W_k; with F_k = W_k the two coincide, with
    the random F_k they do not."""
    spikes, y_star = spike_train(9, 5, 5), labels(5)
    engine = engine_for(steps=9)
    engine.train_step(SpikeTrain(spikes), y_star, get_rule("bp"))
    bp = [p.grad.clone() for p in engine.params.parameters()]
    engine.train_step(SpikeTrain(spikes), y_star, get_rule("fa"))
    assert not torch.allclose(engine.params.layers[0].weight.grad, bp[0])
    torch.testing.assert_close(engine.params.layers[1].weight.grad, bp[2])
    engine.params.fa(2).copy_(engine.params.layers[1].weight.detach())
    engine.train_step(SpikeTrain(spikes), y_star, get_rule("fa"))
    for p, g in zip(engine.params.parameters(), bp, strict=True):
        torch.testing.assert_close(p.grad, g)


def test_bptt_leaves_parameters_untouched_and_frozen_layers_without_gradients():
    spec = parse_spec(
        {
            "name": "frozen-middle",
            "input_shape": [1, 1, 5],
            "layers": [
                {"kind": "dense", "units": 6},
                {"kind": "dense", "units": 6, "trainable": False},
                {"kind": "dense", "units": 3, "activation": "sigmoid"},
            ],
        }
    )
    engine = SpikingEngine(Params(spec, seed=1), SpikingOptions(neuron=LIFParams(tau_mem=5e-3, threshold=0.2)))
    with torch.no_grad():
        for layer in engine.params.layers:
            layer.weight.mul_(8.0)
    flags = [(p.requires_grad, p.is_leaf) for p in engine.params.parameters()]
    res = engine.train_step(SpikeTrain(spike_train(10, 4, 5)), labels(4), get_rule("bp"))
    assert [(p.requires_grad, p.is_leaf) for p in engine.params.parameters()] == flags
    frozen = engine.params.layers[1]
    assert not frozen.weight.requires_grad and frozen.weight.grad is None and frozen.bias.grad is None
    first = engine.params.layers[0].weight.grad
    assert first is not None and first.abs().sum() > 0, "the error must cross the frozen layer"
    assert len(res.signals) == 1 and torch.equal(res.signals[0], first)
    assert math.isfinite(res.loss)


def dropout_engine():
    neuron = LIFParams(dt=1e-3, tau_mem=5e-3, threshold=0.5)
    engine = SpikingEngine(Params(tiny_spec(("tanh",), (4,), 5, 3), seed=2).double(), SpikingOptions(neuron=neuron))
    with torch.no_grad():
        for layer in engine.params.layers:
            layer.weight.mul_(4.0)
    return engine


def test_bptt_with_dropout_equals_finite_differences_of_the_masked_network():
    """Dropout masks m / (1 - p) on each layer's input, held over the presentation: BPTT's gradient
    is the masked network's (finite differences of the unrolled loss with the same masks)."""
    engine = dropout_engine()
    spikes, y_star = spike_train(6, 3, 5, density=0.7).double(), labels(3).double()
    g = torch.Generator().manual_seed(8)
    masks = [(torch.rand(3, d, generator=g) >= 0.4).double() / 0.6 for d in (5, 4)]
    assert all(bool((m == 0).any()) for m in masks)
    res = backward_through_time(
        engine.params, engine.layers, SpikeTrain(spikes), y_star, get_rule("bp"), masks, spike_fn=smooth_spike
    )
    weights = [[layer.weight.detach().clone(), layer.bias.detach().clone()] for layer in engine.params.layers]
    alpha = math.exp(-1e-3 / 5e-3)
    assert res.loss == pytest.approx(float(unrolled_loss(weights, spikes, y_star, alpha, 0.5, masks)), rel=1e-12)
    h = 1e-6
    for k, layer in enumerate(engine.params.layers):
        numeric = torch.zeros_like(layer.weight)
        for i in range(numeric.numel()):
            for sign in (1, -1):
                shifted = [[t.clone() for t in pair] for pair in weights]
                shifted[k][0].view(-1)[i] += sign * h
                numeric.view(-1)[i] += sign * unrolled_loss(shifted, spikes, y_star, alpha, 0.5, masks) / (2 * h)
        torch.testing.assert_close(layer.weight.grad, numeric, rtol=1e-5, atol=1e-9)


def test_bptt_training_step_draws_the_dropout_masks_of_the_three_factor_step():
    """engine.train_step(dropout=p, generator) under BP draws the masks (rand(N, D_k) >= p) / (1 - p)
    in layer order from the generator first, as the three-factor step does."""
    engine = dropout_engine()
    spikes, y_star = spike_train(6, 3, 5, density=0.7).double(), labels(3).double()
    engine.train_step(SpikeTrain(spikes), y_star, get_rule("bp"), 0.4, torch.Generator().manual_seed(8))
    stepped = [layer.weight.grad.clone() for layer in engine.params.layers]
    g = torch.Generator().manual_seed(8)
    masks = [(torch.rand(3, d, generator=g) >= 0.4).double() / 0.6 for d in (5, 4)]
    backward_through_time(engine.params, engine.layers, SpikeTrain(spikes), y_star, get_rule("bp"), masks)
    for got, layer in zip(stepped, engine.params.layers, strict=True):
        torch.testing.assert_close(got, layer.weight.grad, rtol=0, atol=0)
    backward_through_time(engine.params, engine.layers, SpikeTrain(spikes), y_star, get_rule("bp"), [None, None])
    assert not torch.equal(stepped[0], engine.params.layers[0].weight.grad), "dropout must change the gradient"


def test_alignment_angles_cover_a_frozen_hidden_layer():
    """conv-mnist-random style: a frozen first layer. BPTT's learning signals include its dJ/dW_1
    (as the three-factor rules' do), so every hidden layer gets an angle (the pairing raised before)."""
    spec = parse_spec(
        {
            "name": "frozen-first",
            "input_shape": [1, 1, 5],
            "layers": [
                {"kind": "dense", "units": 6, "trainable": False},
                {"kind": "dense", "units": 4},
                {"kind": "dense", "units": 3, "activation": "sigmoid"},
            ],
        }
    )
    engine = SpikingEngine(
        Params(spec, seed=1), SpikingOptions(steps=10, neuron=LIFParams(tau_mem=5e-3, threshold=0.2))
    )
    with torch.no_grad():
        for layer in engine.params.layers:
            layer.weight.mul_(8.0)
    x = torch.rand(6, 1, 1, 5, generator=torch.Generator().manual_seed(4))
    bptt = engine.learning_signals(x, labels(6), get_rule("bp"))
    drtp = engine.learning_signals(x, labels(6), get_rule("drtp"))
    assert [s.shape for s in bptt] == [s.shape for s in drtp] == [(6, 5), (4, 6)]
    assert bptt[0].abs().sum() > 0 and engine.params.layers[0].weight.grad is None
    data = TensorData(x, torch.arange(6) % 3, 3)
    assert set(alignment(engine, data, get_rule("drtp"), 6)) == {"layer1", "layer2"}
