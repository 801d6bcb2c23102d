"""Surrogate-gradient backpropagation through time (BPTT): the baseline the three-factor rule is
compared with. The conventional formulation: one step at a time through all layers, the graph
kept over the whole window, then J.backward(). The loss is J = sum (y_hat - y*)^2 / (2 N C) with
y_hat = output spike count / T, so the output layer's error dJ/dy_hat = (y_hat - y*) / (N C) is
the one the three-factor rule uses."""

from __future__ import annotations

from functools import partial

import torch

from snn_drtp.rate.network import StepResult
from snn_drtp.spiking.encoders import encode
from snn_drtp.spiking.network import EVAL_SEED, SpikingNetwork, decide, dropout_masks
from snn_drtp.spiking.neuron import LIFState, lif_step
from snn_drtp.spiking.surrogate import SpikeFunction


def _surrogate_spike(v: torch.Tensor, threshold: float, slope: float, surrogate: str) -> torch.Tensor:
    return SpikeFunction.apply(v, threshold, slope, surrogate)


def bptt_step(
    net: SpikingNetwork,
    x: torch.Tensor,
    y_star: torch.Tensor,
    dropout: float = 0.0,
    generator: torch.Generator | None = None,
    write_grads: bool = True,
    keep_signals: bool = False,
) -> StepResult:
    """Present the batch exactly as :meth:`SpikingNetwork.step` does (same encoder draws and
    dropout masks from the same generator), backpropagate through time, write ``.grad``."""
    opt = net.options
    T, batch = opt.steps, x.shape[0]
    p = dropout if generator is not None else 0.0
    gen = generator if generator is not None else torch.Generator().manual_seed(EVAL_SEED)
    masks = dropout_masks(net, batch, p, gen)
    spike_fn = partial(_surrogate_spike, slope=opt.slope, surrogate=opt.surrogate)
    params = [t for layer in net.layers for t in (layer.weight, layer.bias)]
    with torch.enable_grad():
        for t in params:
            t.requires_grad_(True)
        states = [LIFState.zeros((batch, layer.spec.units), opt.neuron) for layer in net.layers]
        counts = torch.zeros(batch, net.spec.n_outputs)
        v_sum = torch.zeros_like(counts)
        for t0 in range(0, T, opt.chunk):
            n = min(opt.chunk, T - t0)
            window = encode(opt.encoder, x.reshape(batch, -1), T, gen, start=t0, count=n)
            for t in range(n):
                s = window[t]
                for k, layer in enumerate(net.layers):
                    if masks[k] is not None:
                        s = s * masks[k]
                    current = torch.nn.functional.linear(s, layer.weight, layer.bias)
                    s, v, states[k] = lif_step(current, states[k], opt.neuron, spike_fn)
                counts = counts + s
                v_sum += v.detach()
        y_hat = counts / T
        loss = 0.5 * torch.nn.functional.mse_loss(y_hat, y_star)
        trainable = [t for layer in net.layers if layer.trainable for t in (layer.weight, layer.bias)]
        grads = torch.autograd.grad(loss, trainable)
    if write_grads:
        for t, g in zip(trainable, grads, strict=True):
            t.grad = g
    hidden = {id(layer.weight) for layer in net.hidden}
    signals = [g for t, g in zip(trainable, grads, strict=True) if id(t) in hidden] if keep_signals else []
    y_hat = y_hat.detach()
    bce = float(torch.nn.functional.binary_cross_entropy(y_hat.clamp(1e-4, 1 - 1e-4), y_star))
    return StepResult(y_hat, bce, signals, decide(counts.detach(), v_sum, T))
