"""Backpropagation through time (BPTT) for rules whose third factor comes from the layer above
(BP: surrogate-gradient BPTT, the baseline the three-factor rule is compared with; FA: the same
sweep through fixed random matrices).

The conventional formulation: one step at a time through all layers, the graph kept over the
whole presentation, then J.backward() with J = |y_hat - y*|^2 / (2 N C), y_hat = output spike
count / T, so the output layer's error dJ/dy_hat = (y_hat - y*) / (N C) is the three-factor
rule's. Spikes are a Heaviside step forward and the surrogate psi(v) backward. What a layer's input
spikes receive from its current I_k(t) (``differentiable_current`` of the layer: a matrix product
or a convolution) is the rule's third factor: the rule sends dJ/dI_k(t) down through W_k (BP,
exactly autograd's product) or F_k (FA), with the layer's transposed product.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch

from snn_drtp.core.engines import StepResult
from snn_drtp.core.params import Params
from snn_drtp.rules import LayerView, Rule
from snn_drtp.spiking.inputs import SpikeInput
from snn_drtp.spiking.layers import LIFLayer
from snn_drtp.spiking.neuron import LIFState, lif_step
from snn_drtp.spiking.readout import decide, squared_error
from snn_drtp.spiking.surrogate import SpikeFunction

SpikeFn = Callable[[torch.Tensor, float], torch.Tensor]


def _surrogate_spike(v: torch.Tensor, threshold: float, slope: float, surrogate: str) -> torch.Tensor:
    return SpikeFunction.apply(v, threshold, slope, surrogate)


def backward_through_time(
    params: Params,
    layers: Sequence[LIFLayer],
    inputs: SpikeInput,
    y_star: torch.Tensor,
    rule: Rule,
    masks: Sequence[torch.Tensor | None],
    write_grads: bool = True,
    spike_fn: SpikeFn | None = None,
) -> StepResult:
    """Present the batch as the three-factor step does (the same dropout ``masks`` on each layer's
    input, the same input spikes), backpropagate J through time, and write the gradients into
    ``.grad`` of the trainable parameters unless ``write_grads`` is false (they are left otherwise
    untouched: the graph is built on detached copies). The result's signals are dJ/dW_k of the
    trainable hidden layers, and of every hidden layer, frozen ones included, when ``write_grads``
    is false (learning signals, as the three-factor rules give them).

    ``spike_fn(v, theta)`` replaces the surrogate spike function (tests use a smooth one whose
    exact derivative finite differences can check)."""
    opt = layers[0].options
    T, batch, K = inputs.steps, inputs.batch, len(layers)
    spike = spike_fn or partial(_surrogate_spike, slope=opt.slope, surrogate=opt.surrogate)
    wanted = [layer.trainable or not write_grads for layer in params.layers]  # signals: frozen layers' too
    leaves = [
        (layer.weight.detach().requires_grad_(want), layer.bias.detach().requires_grad_(want))
        for layer, want in zip(params.layers, wanted, strict=True)
    ]
    carries = [layer.carry(torch.Size((batch, *layer.input_shape))) for layer in layers]

    def send_down(k: int, grad: torch.Tensor) -> torch.Tensor:
        """dJ/ds_{k-1}(t) from dJ/dI_k(t): the rule's third factor for hidden layer k - 1."""
        view = LayerView(
            k=k - 1,
            y_star=y_star,
            B=params.feedback(k - 1),
            delta_above=grad,
            W_above=leaves[k - 1][0].detach(),
            F_above=params.fa(k),
            carry=carries[k - 1],
        )
        return rule.third_factor(view)

    senders = [partial(send_down, k) for k in range(1, K + 1)]
    with torch.enable_grad():
        dtype, device = leaves[0][0].dtype, leaves[0][0].device
        states = [LIFState.zeros((batch, *layer.state_shape), opt.neuron, dtype, device) for layer in layers]
        counts = torch.zeros(batch, params.spec.n_outputs, dtype=dtype, device=device)
        v_sum = torch.zeros_like(counts)
        for _, window in inputs.windows(opt.time_chunk):
            for t in range(window.shape[0]):
                s = window[t]
                for k, (layer, (weight, bias)) in enumerate(zip(layers, leaves, strict=True), start=1):
                    mask = masks[k - 1]
                    if mask is not None:
                        s = s.reshape(batch, -1) * mask
                    current = layer.differentiable_current(s, weight, bias, senders[k - 1])
                    out, states[k - 1] = lif_step(current, states[k - 1], opt.neuron, spike)
                    s = layer.differentiable_spikes(out.spikes)
                counts = counts + s
                v_sum += out.v.detach()
        y_hat = counts / T
        loss = squared_error(y_hat, y_star)
        trainable = [(k, t) for k, pair in enumerate(leaves, start=1) for t in pair if t.requires_grad]
        grads = torch.autograd.grad(loss, [t for _, t in trainable])
    if write_grads:  # then only trainable layers were differentiated
        for (k, leaf), g in zip(trainable, grads, strict=True):
            owner = params.layer(k)
            target = owner.weight if leaf is leaves[k - 1][0] else owner.bias
            target.grad = g
    weight_grads = {k: g for (k, leaf), g in zip(trainable, grads, strict=True) if leaf is leaves[k - 1][0]}
    signals = [weight_grads[k] for k in range(1, K) if k in weight_grads]
    return StepResult(y_hat.detach(), float(loss.detach()), signals, decide(counts.detach(), v_sum, T))
