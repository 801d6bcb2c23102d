"""The spiking engine: LIF layers that learn with the three-factor rule, streaming over time.

Every layer reads W_k, b_k of the shared :class:`~snn_drtp.params.Params` (the rate engine's very
tensors for the same spec and seed): input spikes s_{k-1}(t) drive I_k(t) = W_k s_{k-1}(t) + b_k,
LIF neurons integrate it and emit s_k(t). Each layer accumulates

    dJ/dW_k = (1/T) sum_t (m_k(t) * post_k(t)) pre_k(t)^T

(``snn_drtp.spiking.layers``), with m_k from the rule at the moment its timing allows:

* from the label (DRTP): m_k = y* B_k once, before the first step, so each layer updates as soon
  as it has run a window;
* from the output (DFA, sDFA): from the running error e(t) = count(t)/t - y* of each window;
* from the layer above (BP, FA): backpropagation through time (``snn_drtp.spiking.bptt``);
* never (shallow): hidden layers do not learn.

The output layer learns from its own error (y_hat - y*) / (N C), y_hat = spike count / T, which
exists only when the presentation ends: it keeps a per-example eligibility trace meanwhile. Time
is processed in windows of ``time_chunk`` steps, layer after layer, so memory depends on the
window, not on T. The loss is J = |y_hat - y*|^2 / (2 N C), the one these updates descend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from snn_drtp.engine import StepResult
from snn_drtp.params import Params
from snn_drtp.rules import LayerView, Rule, Timing
from snn_drtp.spiking.inputs import EVAL_SEED, SpikeInput, spike_input
from snn_drtp.spiking.layers import SPIKING_LAYERS, DenseLIF, LIFLayer
from snn_drtp.spiking.neuron import LIFParams
from snn_drtp.spiking.options import SpikingOptions
from snn_drtp.spiking.readout import SpikeCountReadout, squared_error

Monitor = Callable[[int, torch.Tensor, torch.Tensor], None]


def dropout_masks(layers: list[LIFLayer], batch: int, p: float, gen: torch.Generator) -> list[torch.Tensor | None]:
    """Per fully connected layer, an inverted-dropout mask on its input, m / (1 - p) with
    m ~ Bernoulli(1 - p), one per example, held for the whole presentation (None when p = 0 and for
    layers without dropout); drawn in layer order."""
    dtype = layers[0].params.weight.dtype
    return [
        (torch.rand(batch, layer.n_inputs, generator=gen) >= p).to(dtype).div_(1.0 - p)
        if p > 0 and layer.takes_dropout
        else None
        for layer in layers
    ]


class SpikeCountEngine:
    """What the spiking engines (PyTorch, Brian2) share around their simulation: the random draws
    of a step, example ids, and prediction, loss and learning signals from the spike-count readout.
    A subclass provides ``step`` and ``simulate``."""

    @staticmethod
    def draws(generator: torch.Generator | None, dropout: float) -> tuple[torch.Generator, float]:
        """(generator, dropout) of a step: a training step's own; without a generator, a fixed
        one (EVAL_SEED) and no dropout."""
        if generator is None:
            return torch.Generator().manual_seed(EVAL_SEED), 0.0
        return generator, dropout

    @staticmethod
    def _ids(x: Any, example_ids: torch.Tensor | None) -> torch.Tensor:
        batch = x.shape[0] if isinstance(x, torch.Tensor) else x.batch
        return example_ids if example_ids is not None else torch.arange(batch)

    @torch.no_grad()
    def predict(self, x: Any, example_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_hat = output spike counts / T, predicted class), no learning; see :meth:`simulate`."""
        res = self.simulate(x, example_ids)
        return res.output, res.prediction

    def loss_sum(self, output: torch.Tensor, y_star: torch.Tensor) -> float:
        """Sum over examples of |y_hat - y*|^2 / (2 C), the per-example form of :func:`squared_error`."""
        return 0.5 * float(torch.nn.functional.mse_loss(output, y_star, reduction="sum")) / y_star.shape[1]

    def learning_signals(
        self, x: Any, y_star: torch.Tensor, rule: Rule, example_ids: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """dJ/dW_k of every hidden layer under ``rule`` for this batch, weights unchanged (static
        input encoded per example, from ``example_ids`` or 0 ... N-1)."""
        ids = self._ids(x, example_ids)
        return self.step(x, y_star, rule, write_grads=False, keep_signals=True, example_ids=ids).signals


class SpikingEngine(SpikeCountEngine):
    """A LIF network over a :class:`Params`, simulated with :class:`SpikingOptions` (default: the
    options' defaults with the neurons of the network spec's ``[neuron]`` table)."""

    name: ClassVar[str] = "spiking"
    numbers_version: ClassVar[int] = 2
    exact_reference: ClassVar[str] = "BPTT"
    signal_batch: ClassVar[int | None] = 100
    input_layout: ClassVar[str] = "any"
    timings: ClassVar[frozenset[Timing]] = frozenset(Timing)

    def __init__(self, params: Params, options: SpikingOptions | None = None):
        self.params = params
        self.options = options or SpikingOptions(neuron=LIFParams.from_dict(params.spec.neuron))
        unknown = {layer.spec.kind for layer in params.layers} - set(SPIKING_LAYERS)
        if unknown:
            raise ValueError(
                f"network {params.spec.name}: the spiking engine has no {', '.join(sorted(unknown))} layer; "
                f"it simulates {', '.join(SPIKING_LAYERS)} layers"
            )
        self.layers: list[LIFLayer] = [SPIKING_LAYERS[layer.spec.kind](layer, self.options) for layer in params.layers]
        if not isinstance(self.layers[-1], DenseLIF):
            raise ValueError(f"network {params.spec.name}: the output layer must be dense")
        self.output: DenseLIF = self.layers[-1]

    def spike_input(
        self, x: Any, generator: torch.Generator | None = None, example_ids: torch.Tensor | None = None
    ) -> SpikeInput:
        """``x`` as spike input (:func:`~snn_drtp.spiking.inputs.spike_input` with the options' encoder and T)."""
        return spike_input(x, self.options.encoder, self.options.steps, generator, example_ids)

    def _view(self, k: int, y_star: torch.Tensor, **seen: Any) -> LayerView:
        return LayerView(k=k, y_star=y_star, B=self.params.feedback(k), **seen)

    @torch.no_grad()
    def step(
        self,
        x: Any,
        y_star: torch.Tensor,
        rule: Rule,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
        write_grads: bool = True,
        keep_signals: bool = False,
        example_ids: torch.Tensor | None = None,
        monitor: Monitor | None = None,
    ) -> StepResult:
        """Present a batch, accumulate the rule's updates, write them into ``.grad``.

        ``x`` is static input [N, ...] (encoded here, window by window, from ``generator``, or
        per example from ``example_ids``) or a :class:`SpikeInput` such as a time-first
        :class:`~snn_drtp.spiking.inputs.SpikeTrain` [T, N, ...], whose T is used. Dropout acts
        only when a ``generator`` is given. ``keep_signals`` returns each hidden layer's update dJ/dW_k.
        ``monitor`` (three-factor rules only) sees every layer's window, as in :meth:`simulate`.
        """
        gen, p = self.draws(generator, dropout)
        inputs = self.spike_input(x, gen, example_ids)
        if rule.timing is Timing.BACKWARD:
            if monitor is not None:
                raise ValueError(f"rule {rule!r}: backpropagation through time takes no monitor")
            from snn_drtp.spiking.bptt import backward_through_time

            return backward_through_time(self, inputs, y_star, rule, p, gen, write_grads, keep_signals)
        return self._present(inputs, y_star, rule, p, gen, write_grads, keep_signals, monitor)

    @torch.no_grad()
    def simulate(self, x: Any, example_ids: torch.Tensor | None = None, monitor: Monitor | None = None) -> StepResult:
        """Present a batch without learning. Static input is encoded per example from seed EVAL_SEED +
        id (ids 0 ... N-1 when not given), so an example's output does not depend on its batch.
        ``monitor(k, spikes, v)`` sees every layer k's window (k = 0: the input spikes, twice)."""
        inputs = self.spike_input(x, example_ids=self._ids(x, example_ids))
        y_star = torch.zeros(inputs.batch, self.params.spec.n_outputs, dtype=self.params.layers[0].weight.dtype)
        return self._present(inputs, y_star, None, 0.0, None, False, False, monitor)

    def _present(
        self,
        inputs: SpikeInput,
        y_star: torch.Tensor,
        rule: Rule | None,
        p: float,
        gen: torch.Generator | None,
        write_grads: bool,
        keep_signals: bool,
        monitor: Monitor | None = None,
    ) -> StepResult:
        """For each time window, for each layer: current, LIF scan, and the layer's update as soon
        as the rule's third factor exists; then the readout and the output layer's update."""
        learn = rule is not None and (write_grads or keep_signals)
        timing = rule.timing if rule is not None else Timing.NEVER
        T, batch, K = inputs.steps, inputs.batch, len(self.layers)
        masks = dropout_masks(self.layers, batch, p, gen) if gen is not None else [None] * K
        runs = [
            layer.start(batch, T, mask, learn, output=k == K)
            for k, (layer, mask) in enumerate(zip(self.layers, masks, strict=True), start=1)
        ]
        wanted = {k for k in range(1, K) if learn and (self.layers[k - 1].params.trainable or keep_signals)}
        label_m = {}
        if timing is Timing.LABEL:
            label_m = {k: rule.third_factor(self._view(k, y_star)) for k in wanted}
        readout = SpikeCountReadout(batch, self.params.spec.n_outputs, T, self.params.layers[0].weight.dtype)
        for t0, s in inputs.windows(self.options.time_chunk):
            if monitor is not None:
                flat = s.reshape(s.shape[0], s.shape[1], -1)
                monitor(0, flat, flat)
            waiting = []
            for k, (layer, run) in enumerate(zip(self.layers, runs, strict=True), start=1):
                window = layer.present(s, run)
                if monitor is not None:
                    monitor(k, window.out.spikes, window.out.v)
                if k in label_m:
                    layer.accumulate(run, window, label_m[k])
                elif timing is Timing.OUTPUT and k in wanted:
                    waiting.append((k, window))
                s = layer.spikes(window)
            output = window
            error = readout.running_error(output.out.spikes, t0, y_star) if waiting else None
            readout.add(output.out)
            if learn:
                self.output.eligibility(runs[-1], output)
            for k, hidden_window in waiting:
                m = rule.third_factor(self._view(k, y_star, error=error))
                self.layers[k - 1].accumulate(runs[k - 1], hidden_window, m)
        y_hat = readout.y_hat
        if learn:
            self.output.apply_error(runs[-1], (y_hat - y_star) / y_hat.numel())
        if write_grads and learn:
            for k, (layer, run) in enumerate(zip(self.layers, runs, strict=True), start=1):
                if layer.params.trainable and (k == K or (k in wanted and timing is not Timing.NEVER)):
                    layer.params.weight.grad, layer.params.bias.grad = run.grad_w, run.grad_b
        signals = [runs[k - 1].grad_w for k in range(1, K)] if keep_signals else []
        return StepResult(y_hat, float(squared_error(y_hat, y_star)), signals, readout.prediction())
