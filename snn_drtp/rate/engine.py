"""The rate-coded (ANN) reference engine: one training step under any rule, gradients written into
the shared parameter set without an autograd graph."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from snn_drtp.core.engines import StepResult
from snn_drtp.core.params import Params
from snn_drtp.rate.layers import RATE_LAYERS, Activation, LayerCache, RateLayer, SoftLIF
from snn_drtp.rules import LayerView, Rule, Timing, check_instant, check_rule
from snn_drtp.spiking.neuron import LIFParams


def output_delta(y_out: torch.Tensor, y_star: torch.Tensor, activation: str) -> torch.Tensor:
    """delta z_K = dJ/dz_K for the output layer, averaged over batch x outputs (N x C):
    sigmoid + BCE: (y_K - y*) / (N C); linear + MSE: 2 (y_K - y*) / (N C); tanh + MSE:
    2 (y_K - y*) (1 - y_K^2) / (N C)."""
    if activation == "sigmoid":
        return (y_out - y_star) * (1.0 / y_out.numel())
    delta = (y_out - y_star) * (2.0 / y_out.numel())
    return delta * (1 - y_out**2) if activation == "tanh" else delta


def output_loss(cache: LayerCache, y_star: torch.Tensor, activation: str) -> float:
    """J: BCE on sigmoid outputs (computed from z_K for stability), or MSE on linear and tanh outputs."""
    if activation != "sigmoid":
        return float(F.mse_loss(cache.y, y_star))
    return float(F.binary_cross_entropy_with_logits(cache.z, y_star))


def _static(x: Any) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"the rate engine takes static inputs [N, ...], got {type(x).__name__}; time-first spike trains "
            "need the spiking engine, or their spike counts per input as a static tensor"
        )
    return x


class RateEngine:
    """A feed-forward ANN over a :class:`Params`: tanh/sigmoid/linear/lif units, each layer's update
    written into ``.grad`` by the layer itself.

    ``hidden_activation`` replaces the spec's activation of every hidden layer (for example
    ``"lif"``, the LIF rate curve, to compare with the spiking engine); ``neuron`` gives that rate
    curve's parameters (default: the spec's ``[neuron]`` table).
    """

    name: ClassVar[str] = "rate"
    numbers_version: ClassVar[int] = 1
    exact_reference: ClassVar[str] = "BP"
    signal_batch: ClassVar[int | None] = None
    input_layout: ClassVar[str] = "static"
    timings: ClassVar[frozenset[Timing]] = frozenset(Timing)

    def __init__(self, params: Params, hidden_activation: str | None = None, neuron: LIFParams | None = None):
        self.params = params
        spec = params.spec
        names = [layer.activation for layer in spec.layers]
        if hidden_activation is not None:
            names = [hidden_activation] * (len(names) - 1) + names[-1:]
        soft_lif = None
        if "lif" in names:
            neuron = neuron or LIFParams.from_dict(spec.neuron)
            soft_lif = SoftLIF(neuron.tau_mem / neuron.dt, neuron.threshold)
        self.layers: list[RateLayer] = [
            RATE_LAYERS[layer.spec.kind](layer, Activation(name, soft_lif if name == "lif" else None))
            for layer, name in zip(params.layers, names, strict=True)
        ]
        self.output_activation = names[-1]

    @property
    def hidden(self) -> list[RateLayer]:
        return self.layers[:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y_K for a batch, no dropout."""
        h = _static(x).to(self.params.device)
        for layer in self.layers:
            h, _ = layer.forward(h)
        return h

    @torch.no_grad()
    def predict(self, x: Any, example_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_K, predicted class) for a batch, no dropout."""
        y = self.forward(x)
        return y, y.argmax(1)

    def loss_sum(self, output: torch.Tensor, y_star: torch.Tensor) -> float:
        """Sum over examples of the per-example loss averaged over outputs: BCE on sigmoid outputs
        (clamped to [1e-7, 1 - 1e-7]), MSE on linear and tanh ones."""
        if self.output_activation != "sigmoid":
            return float(F.mse_loss(output, y_star, reduction="sum")) / y_star.shape[1]
        clamped = output.clamp(1e-7, 1 - 1e-7)
        return float(F.binary_cross_entropy(clamped, y_star, reduction="sum")) / y_star.shape[1]

    def _view(self, k: int, y_star: torch.Tensor, **seen: Any) -> LayerView:
        return LayerView(k=k, y_star=y_star, B=self.params.feedback(k), **seen)

    def train_step(
        self,
        x: Any,
        y_star: torch.Tensor,
        rule: Rule,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> StepResult:
        """Forward pass and the rule's local updates written into ``.grad`` (overwriting it, so no
        ``zero_grad`` is needed; hidden layers of shallow learning keep ``.grad`` None). Dropout
        acts only when a ``generator`` is given."""
        return self._step(x, y_star, rule, dropout, generator, write_grads=True, keep_signals=False)

    @torch.no_grad()
    def _step(
        self,
        x: Any,
        y_star: torch.Tensor,
        rule: Rule,
        dropout: float,
        generator: torch.Generator | None,
        write_grads: bool,
        keep_signals: bool,
    ) -> StepResult:
        """The forward pass, asking the rule for m_k when its timing allows.

        A rule whose third factor comes from the label (DRTP) updates each hidden layer as soon as
        its output exists and drops its cache: nothing waits for the output layer. Rules that need
        the output (DFA, sDFA) or a backward sweep (BP, FA) keep the caches until then.
        """
        p = dropout if generator is not None else 0.0
        waiting: list[tuple[int, LayerCache]] = []
        signals: dict[int, torch.Tensor] = {}
        rule = check_instant(check_rule(rule), self.name)
        h = _static(x).to(self.params.device)
        y_star = y_star.to(self.params.device)
        for k, layer in enumerate(self.hidden, start=1):
            h, cache = layer.forward(h, p if layer.params.spec.kind == "dense" else 0.0, generator)
            wanted = layer.params.trainable or keep_signals
            if rule.timing is Timing.LABEL and wanted:
                self._learn(k, cache, rule.third_factor(self._view(k, y_star)), write_grads, signals)
            elif (rule.timing is Timing.OUTPUT and wanted) or rule.timing is Timing.BACKWARD:
                waiting.append((k, cache))
        out_layer = self.layers[-1]
        y_out, out_cache = out_layer.forward(h, p, generator)
        delta = output_delta(y_out, y_star, self.output_activation)
        if write_grads:
            out_layer.write_grad(out_cache, delta)
        if rule.timing is Timing.OUTPUT:
            error = y_out - y_star
            for k, cache in waiting:
                self._learn(k, cache, rule.third_factor(self._view(k, y_star, error=error)), write_grads, signals)
        elif rule.timing is Timing.BACKWARD:
            above_cache = out_cache
            for k, cache in reversed(waiting):
                above = self.layers[k]

                def carry(d: torch.Tensor, M: torch.Tensor, above: RateLayer = above, c: LayerCache = above_cache):
                    return above.input_signal(c, d, M)

                view = self._view(
                    k,
                    y_star,
                    delta_above=delta,
                    W_above=above.params.weight,
                    F_above=self.params.fa(k + 1),
                    carry=carry,
                )
                delta = self._learn(k, cache, rule.third_factor(view), write_grads, signals, carried=True)
                above_cache = cache
        ordered = [signals[k] for k in sorted(signals)] if keep_signals else []
        loss = output_loss(out_cache, y_star, self.output_activation)
        return StepResult(y_out, loss, ordered, y_out.argmax(1))

    def _learn(
        self,
        k: int,
        cache: LayerCache,
        m: torch.Tensor,
        write_grads: bool,
        signals: dict[int, torch.Tensor],
        carried: bool = False,
    ) -> torch.Tensor:
        """delta z_k = m_k * f'(z_k) (m_k first taken back through the layer's pooling when it was
        carried from the layer above), written as the layer's update when it is trainable."""
        layer = self.layers[k - 1]
        if carried:
            m = layer.signal_at_activation(cache, m)
        delta_z = layer.modulate(cache, m)
        if write_grads and layer.params.trainable:
            layer.write_grad(cache, delta_z)
        signals[k] = delta_z
        return delta_z

    def learning_signals(
        self, x: Any, y_star: torch.Tensor, rule: Rule, example_ids: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """delta z_k of every hidden layer under ``rule`` for this batch, weights unchanged."""
        return self._step(x, y_star, rule, 0.0, None, write_grads=False, keep_signals=True).signals
