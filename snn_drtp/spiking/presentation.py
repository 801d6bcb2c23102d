"""One presentation of a batch to a spiking network, whatever simulates it (PyTorch or Brian2).

A spiking engine provides only its simulation (:meth:`SpikeCountEngine._simulate`): given the
input spikes, the dropout masks and the third factors that exist before the presentation, it
returns the output spike counts, the hidden layers' accumulated updates and the output layer's
per-example eligibility. Everything around it is here, shared: the random draws of a step, the
label-timed third factors m_k = rule(B_k, y*) asked for before the first step, the output
layer's update once its error exists,

    delta = (y_hat - y*) / (N C),   y_hat = spike count / T,
    dJ/dW_K = sum_n delta[n] E[n],  E[n] = (1/T) sum_t post_K[n](t) pre_K[n](t)^T,

the write into ``.grad``, the loss J = |y_hat - y*|^2 / (2 N C) and the decision (most spikes,
ties to the larger mean membrane potential).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from snn_drtp.core.engines import StepResult
from snn_drtp.core.params import Params
from snn_drtp.rules import LayerView, Rule, Timing, check_instant, check_rule
from snn_drtp.spiking.inputs import EVAL_SEED, SpikeInput, spike_input
from snn_drtp.spiking.layers import LIFLayer
from snn_drtp.spiking.options import SpikingOptions
from snn_drtp.spiking.readout import decide, squared_error

Monitor = Callable[[int, torch.Tensor, torch.Tensor], None]
"""monitor(k, spikes [n, N, N_k], v [n, N, N_k]) sees each window of layer k (k = 0: the input)."""
Masks = list[torch.Tensor | None]


def dropout_masks(layers: Sequence[LIFLayer], batch: int, p: float, gen: torch.Generator | None) -> Masks:
    """Per fully connected layer, an inverted-dropout mask on its input, m / (1 - p) with
    m ~ Bernoulli(1 - p), one per example, held for the whole presentation (None when p = 0 and for
    layers without dropout); drawn in layer order, on the device of the layer's weights."""
    if p == 0.0 or gen is None:
        return [None] * len(layers)
    weight = layers[0].params.weight
    return [
        (torch.rand(batch, layer.n_inputs, generator=gen, device=weight.device) >= p).to(weight.dtype).div_(1.0 - p)
        if layer.takes_dropout
        else None
        for layer in layers
    ]


@dataclass(frozen=True)
class Learning:
    """What a presentation learns: the rule (None: nothing), whether the updates are written into
    ``.grad`` and whether every hidden layer's dJ/dW_k is returned as a learning signal."""

    rule: Rule | None
    write_grads: bool
    keep_signals: bool
    trainable: tuple[bool, ...]
    """Per layer 1 ... K, whether its parameters are trained."""

    @property
    def active(self) -> bool:
        return self.rule is not None and (self.write_grads or self.keep_signals)

    @property
    def timing(self) -> Timing:
        return self.rule.timing if self.rule is not None else Timing.NEVER

    @property
    def layers(self) -> int:
        return len(self.trainable)

    @property
    def hidden(self) -> set[int]:
        """The hidden layers k < K whose updates are accumulated."""
        if not self.active:
            return set()
        return {k for k in range(1, self.layers) if self.trainable[k - 1] or self.keep_signals}

    def writes(self, k: int) -> bool:
        """Whether layer k's update goes into ``.grad`` (hidden layers only if the rule teaches them)."""
        K = self.layers
        return (
            self.write_grads and self.active and self.trainable[k - 1] and (k == K or self.timing is not Timing.NEVER)
        )


@dataclass
class Harvest:
    """What a simulation returns: output spike counts and summed membrane potentials [N, C], the
    accumulated (dJ/dW_k, dJ/db_k) of each learning hidden layer k and the output layer's
    per-example eligibility (E [N, C, D], E_b [N, C]) when learning."""

    counts: torch.Tensor
    v_sum: torch.Tensor
    steps: int
    hidden: dict[int, tuple[torch.Tensor, torch.Tensor]]
    eligibility: tuple[torch.Tensor, torch.Tensor] | None


class SpikeCountEngine:
    """What the spiking engines (PyTorch, Brian2) share around their simulation: the steps of the
    :class:`~snn_drtp.core.engines.Engine` protocol over :meth:`_simulate`, and prediction, loss
    and learning signals from the spike-count readout."""

    name: ClassVar[str]
    numbers_version: ClassVar[int]
    exact_reference: ClassVar[str] = "BPTT"
    signal_batch: ClassVar[int | None] = 100
    input_layout: ClassVar[str] = "any"
    timings: ClassVar[frozenset[Timing]]
    params: Params
    options: SpikingOptions
    layers: list[LIFLayer]

    def train_step(
        self,
        x: Any,
        y_star: torch.Tensor,
        rule: Rule,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
        example_ids: torch.Tensor | None = None,
        monitor: Monitor | None = None,
    ) -> StepResult:
        """Present a batch, accumulate the rule's updates and write them into ``.grad``.

        ``x`` is static input [N, ...] (encoded window by window from ``generator``, or per example
        from ``example_ids``) or a :class:`~snn_drtp.spiking.inputs.SpikeInput` such as a time-first
        :class:`~snn_drtp.spiking.inputs.SpikeTrain` [T, N, ...], whose T is used. Dropout acts only
        when a ``generator`` is given. ``monitor`` (three-factor rules only) sees every layer's window,
        as in :meth:`simulate`."""
        return self._step(x, y_star, rule, self._learning(rule, True, False), dropout, generator, example_ids, monitor)

    def learning_signals(
        self, x: Any, y_star: torch.Tensor, rule: Rule, example_ids: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """dJ/dW_k of every hidden layer under ``rule`` for this batch, weights and ``.grad``
        unchanged (static input encoded per example, from ``example_ids`` or 0 ... N-1)."""
        ids = self._ids(x, example_ids)
        return self._step(x, y_star, rule, self._learning(rule, False, True), 0.0, None, ids, None).signals

    @torch.no_grad()
    def simulate(self, x: Any, example_ids: torch.Tensor | None = None, monitor: Monitor | None = None) -> StepResult:
        """Present a batch without learning. Static input is encoded per example from seed EVAL_SEED +
        id (ids 0 ... N-1 when not given), so an example's output does not depend on its batch.
        ``monitor(k, spikes, v)`` sees every layer k's window (k = 0: the input spikes)."""
        inputs = self._spike_input(x, None, self._ids(x, example_ids))
        weight = self.params.layers[0].weight
        y_star = torch.zeros(inputs.batch, self.params.spec.n_outputs, dtype=weight.dtype, device=weight.device)
        learning = self._learning(None, False, False)
        return self._finish(
            self._simulate(inputs, y_star, learning, [None] * len(self.layers), {}, monitor),
            y_star,
            learning,
        )

    @torch.no_grad()
    def predict(self, x: Any, example_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_hat = output spike counts / T, predicted class), no learning; see :meth:`simulate`."""
        res = self.simulate(x, example_ids)
        return res.output, res.prediction

    def loss_sum(self, output: torch.Tensor, y_star: torch.Tensor) -> float:
        """Sum over examples of |y_hat - y*|^2 / (2 C), the per-example form of :func:`squared_error`."""
        return 0.5 * float(torch.nn.functional.mse_loss(output, y_star, reduction="sum")) / y_star.shape[1]

    def _learning(self, rule: Rule | None, write_grads: bool, keep_signals: bool) -> Learning:
        return Learning(rule, write_grads, keep_signals, tuple(layer.params.trainable for layer in self.layers))

    @staticmethod
    def _ids(x: Any, example_ids: torch.Tensor | None) -> torch.Tensor:
        """Example ids 0 ... N-1 unless given: host-side seeds of the per-example encoders (CPU)."""
        if example_ids is not None:
            return example_ids
        return torch.arange(x.shape[0] if isinstance(x, torch.Tensor) else x.batch, device="cpu")

    def _spike_input(self, x: Any, generator: torch.Generator | None, example_ids: torch.Tensor | None) -> SpikeInput:
        return spike_input(x, self.options.encoder, self.options.steps, generator, example_ids, self.params.device)

    def _generator(self, generator: torch.Generator | None) -> torch.Generator:
        """A training step's generator, or without one a fixed generator (EVAL_SEED) on the
        parameters' device."""
        if generator is not None:
            return generator
        return torch.Generator(device=self.params.layers[0].weight.device).manual_seed(EVAL_SEED)

    @torch.no_grad()
    def _step(
        self,
        x: Any,
        y_star: torch.Tensor,
        rule: Rule,
        learning: Learning,
        dropout: float,
        generator: torch.Generator | None,
        example_ids: torch.Tensor | None,
        monitor: Monitor | None,
    ) -> StepResult:
        rule = check_instant(check_rule(rule), self.name)
        if rule.timing not in self.timings:
            raise ValueError(self._timing_error(rule))
        y_star = y_star.to(self.params.device)
        gen = self._generator(generator)
        p = dropout if generator is not None else 0.0
        inputs = self._spike_input(x, gen, example_ids)
        masks = dropout_masks(self.layers, inputs.batch, p, gen)
        if rule.timing is Timing.BACKWARD:
            if monitor is not None:
                raise ValueError(f"rule {rule!r}: backpropagation through time takes no monitor")
            return self._backward(inputs, y_star, rule, masks, learning)
        factors = self._label_factors(learning, y_star, self.compute_dtype)
        return self._finish(self._simulate(inputs, y_star, learning, masks, factors, monitor), y_star, learning)

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the engine simulates in: the parameters' (Brian2: float64)."""
        return self.params.layers[0].weight.dtype

    def _timing_error(self, rule: Rule) -> str:
        return f"rule {rule!r}: the {self.name} engine does not simulate its timing ({rule.timing.value})"

    def _backward(
        self, inputs: SpikeInput, y_star: torch.Tensor, rule: Rule, masks: Masks, learning: Learning
    ) -> StepResult:
        """Rules with a backward sweep (BP, FA): backpropagation through time, where an engine runs it."""
        raise ValueError(self._timing_error(rule))

    def _label_factors(self, learning: Learning, y_star: torch.Tensor, dtype: torch.dtype) -> dict[int, torch.Tensor]:
        """m_k = rule(B_k, y*) of every learning hidden layer, for rules whose third factor comes from
        the label: known before the first step."""
        if learning.rule is None or learning.timing is not Timing.LABEL:
            return {}
        y = y_star.to(dtype)
        return {
            k: learning.rule.third_factor(LayerView(k=k, y_star=y, B=self.params.feedback(k).to(dtype)))
            for k in sorted(learning.hidden)
        }

    def _simulate(
        self,
        inputs: SpikeInput,
        y_star: torch.Tensor,
        learning: Learning,
        masks: Masks,
        label_factors: dict[int, torch.Tensor],
        monitor: Monitor | None,
    ) -> Harvest:
        """Run the presentation; accumulate the updates of ``learning.hidden`` (with
        ``label_factors``, or for output-timed rules from the running error) and the output
        layer's eligibility when ``learning.active``."""
        raise NotImplementedError

    def _finish(self, harvest: Harvest, y_star: torch.Tensor, learning: Learning) -> StepResult:
        """The output layer's update from its error, the writes into ``.grad``, the loss, the
        learning signals and the decision."""
        y_hat = harvest.counts / harvest.steps
        target = y_star.to(y_hat.dtype)
        updates = dict(harvest.hidden)
        if learning.active and harvest.eligibility is not None:
            delta = (y_hat - target) / y_hat.numel()
            e_w, e_b = harvest.eligibility
            updates[learning.layers] = (torch.einsum("nc,ncd->cd", delta, e_w), (delta * e_b).sum(0))
        dtype, device = self.params.layers[0].weight.dtype, self.params.layers[0].weight.device
        for k, layer in enumerate(self.params.layers, start=1):
            if learning.writes(k) and k in updates:
                layer.weight.grad, layer.bias.grad = (g.to(device, dtype) for g in updates[k])
        signals = [updates[k][0].to(device, dtype) for k in range(1, learning.layers)] if learning.keep_signals else []
        prediction = decide(harvest.counts, harvest.v_sum, harvest.steps)
        return StepResult(y_hat.to(device, dtype), float(squared_error(y_hat, target)), signals, prediction.to(device))
