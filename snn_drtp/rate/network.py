"""The rate-coded reference network and its training step under any rule in ``snn_drtp.rules``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from snn_drtp.networks import NetworkSpec
from snn_drtp.rate.layers import ConvLayer, DenseLayer, Layer, LayerCache, SoftLIF
from snn_drtp.rules import Rule, feedback_matrices, kaiming_uniform


@dataclass
class StepResult:
    """One training step: the output y_K, the loss J, each hidden layer's learning signal (if
    asked: delta z_k in the rate engine, dJ/dW_k in the spiking one) and the predicted classes."""

    output: torch.Tensor
    loss: float
    signals: list[torch.Tensor]
    prediction: torch.Tensor


def output_delta(y_out: torch.Tensor, y_star: torch.Tensor, activation: str) -> torch.Tensor:
    """delta z_K = dJ/dz_K for the output layer, averaged over batch x outputs (N x C):
    sigmoid + BCE: (y_K - y*) / (N C); linear + MSE: 2 (y_K - y*) / (N C)."""
    scale = 2.0 if activation == "linear" else 1.0
    return (y_out - y_star) * (scale / y_out.numel())


def output_loss(cache: LayerCache, y_star: torch.Tensor, activation: str) -> float:
    """J: BCE on sigmoid outputs (computed from z_K for stability), or MSE on linear outputs."""
    if activation == "linear":
        return float(F.mse_loss(cache.y, y_star))
    return float(F.binary_cross_entropy_with_logits(cache.z, y_star))


class RateNetwork(nn.Module):
    """A feed-forward ANN built from a :class:`NetworkSpec`.

    Holds the forward weights W_k, b_k (PyTorch's default init, uniform +-1/sqrt(fan_in), or
    zeros), the DRTP/DFA matrices B_k [C, N_k] (seed ``seed + 1``) and the FA matrices of W_k's
    shape (seed ``seed + 2``), all saved in ``state_dict``.
    """

    def __init__(self, spec: NetworkSpec, seed: int = 0, zero_init: bool = False):
        super().__init__()
        self.spec = spec
        gen = torch.Generator().manual_seed(seed)
        layers: list[Layer] = []
        soft_lif = None
        if any(layer.activation == "lif" for layer in spec.layers):
            from snn_drtp.spiking.neuron import LIFParams  # the spiking package imports this module

            neuron = LIFParams.from_dict(spec.neuron)
            soft_lif = SoftLIF(neuron.tau_mem / neuron.dt, neuron.threshold)
        shape: tuple[int, ...] = tuple(spec.input_shape)
        for layer_spec in spec.layers:
            if layer_spec.kind == "conv":
                conv = ConvLayer(shape, layer_spec, gen, zero_init)
                layers.append(conv)
                shape = conv.out_shape
            else:
                layers.append(DenseLayer(math.prod(shape), layer_spec, gen, zero_init, soft_lif))
                shape = (layer_spec.units,)
        self.layers = nn.ModuleList(layers)
        hidden = list(self.layers)[:-1]
        for k, B in enumerate(feedback_matrices([layer.n_signal for layer in hidden], spec.n_outputs, seed + 1)):
            self.register_buffer(f"B_{k + 1}", B)
        fa_gen = torch.Generator().manual_seed(seed + 2)
        for k, layer in enumerate(list(self.layers)[1:], start=2):
            fan_in = math.prod(layer.weight.shape[1:])
            self.register_buffer(f"fa_{k}", kaiming_uniform(tuple(layer.weight.shape), fan_in, fa_gen))

    @property
    def hidden(self) -> list[Layer]:
        return list(self.layers)[:-1]

    def feedback(self, k: int) -> torch.Tensor:
        """B_k [C, N_k] of hidden layer k (1-based)."""
        return getattr(self, f"B_{k}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y_K for a batch, no dropout."""
        for layer in self.layers:
            x = layer(x)
        return x

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_K, predicted class) for a batch, no dropout."""
        y = self(x)
        return y, y.argmax(1)

    @torch.no_grad()
    def step(
        self,
        x: torch.Tensor,
        y_star: torch.Tensor,
        rule: Rule,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
        write_grads: bool = True,
        keep_signals: bool = False,
    ) -> StepResult:
        """Forward pass and the rule's local updates written into ``.grad`` (overwriting it, so
        no ``zero_grad`` is needed; hidden layers of shallow learning keep ``.grad`` None).

        Under DRTP (and shallow learning) each hidden layer's update is computed as soon as its
        output exists and its cache is dropped: nothing waits for the output layer. Rules that
        need the output (DFA, sDFA) or a backward sweep (BP, FA) keep the caches until then.
        """
        p = dropout if generator is not None else 0.0
        pending: list[tuple[int, LayerCache]] = []
        signals: dict[int, torch.Tensor] = {}
        h = x
        for k, layer in enumerate(self.hidden, start=1):
            h, cache = layer.forward_cached(h, p if isinstance(layer, DenseLayer) else 0.0, generator)
            if rule.name == "drtp" and (layer.trainable or keep_signals):
                m = rule.direct_third_factor(self.feedback(k), y_star)
                self._record(k, layer, cache, layer.modulate(cache, m.view_as(cache.y)), write_grads, signals)
            elif rule.update_locked:
                pending.append((k, cache))
        out_layer = self.layers[-1]
        y_out, out_cache = out_layer.forward_cached(h, p, generator)
        delta = output_delta(y_out, y_star, out_layer.activation)
        if write_grads:
            out_layer.write_grad(out_cache, delta)
        if rule.propagates:
            above_cache = out_cache
            for k, cache in reversed(pending):
                above = self.layers[k]
                matrix = above.weight if rule.name == "bp" else getattr(self, f"fa_{k + 1}")
                delta_out = above.input_signal(above_cache, delta, matrix)
                layer = self.layers[k - 1]
                delta = layer.modulate(cache, layer.signal_at_activation(cache, delta_out))
                self._record(k, layer, cache, delta, write_grads, signals)
                above_cache = cache
        else:
            for k, cache in pending:
                layer = self.layers[k - 1]
                if not (layer.trainable or keep_signals):
                    continue
                m = rule.direct_third_factor(self.feedback(k), y_star, y_out)
                self._record(k, layer, cache, layer.modulate(cache, m.view_as(cache.y)), write_grads, signals)
        ordered = [signals[k] for k in sorted(signals)] if keep_signals else []
        loss = output_loss(out_cache, y_star, out_layer.activation)
        return StepResult(y_out, loss, ordered, y_out.argmax(1))

    @staticmethod
    def _record(
        k: int,
        layer: Layer,
        cache: LayerCache,
        delta_z: torch.Tensor,
        write_grads: bool,
        signals: dict[int, torch.Tensor],
    ) -> None:
        if write_grads and layer.trainable:
            layer.write_grad(cache, delta_z)
        signals[k] = delta_z

    def modulatory_signals(self, x: torch.Tensor, y_star: torch.Tensor, rule: Rule) -> list[torch.Tensor]:
        """delta z_k of every hidden layer under ``rule`` for this batch, weights unchanged."""
        return self.step(x, y_star, rule, write_grads=False, keep_signals=True).signals
