"""The spiking engine: LIF layers that learn with the three-factor rule, streaming over time.

Every layer reads W_k, b_k of the shared :class:`~snn_drtp.core.params.Params` (the rate engine's very
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

from typing import ClassVar

import torch

from snn_drtp.core.engines import StepResult
from snn_drtp.core.params import Params
from snn_drtp.rules import LayerView, Rule, Timing
from snn_drtp.spiking.bptt import backward_through_time
from snn_drtp.spiking.inputs import SpikeInput
from snn_drtp.spiking.layers import SPIKING_LAYERS, DenseLIF, LIFLayer
from snn_drtp.spiking.neuron import LIFParams
from snn_drtp.spiking.options import SpikingOptions
from snn_drtp.spiking.presentation import Harvest, Learning, Masks, Monitor, SpikeCountEngine
from snn_drtp.spiking.readout import SpikeCountReadout


class SpikingEngine(SpikeCountEngine):
    """A LIF network over a :class:`Params`, simulated with :class:`SpikingOptions` (default: the
    options' defaults with the neurons of the network spec's ``[neuron]`` table)."""

    name: ClassVar[str] = "spiking"
    numbers_version: ClassVar[int] = 2
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
        output = self.layers[-1]
        if not isinstance(output, DenseLIF):
            raise ValueError(f"network {params.spec.name}: the output layer must be dense")
        self.output: DenseLIF = output

    def _backward(
        self, inputs: SpikeInput, y_star: torch.Tensor, rule: Rule, masks: Masks, learning: Learning
    ) -> StepResult:
        return backward_through_time(self.params, self.layers, inputs, y_star, rule, masks, learning.write_grads)

    def _simulate(
        self,
        inputs: SpikeInput,
        y_star: torch.Tensor,
        learning: Learning,
        masks: Masks,
        label_factors: dict[int, torch.Tensor],
        monitor: Monitor | None,
    ) -> Harvest:
        """For each time window, for each layer: current, LIF scan, and the layer's update as soon
        as the rule's third factor exists (from the label: before the first step; from the output:
        the running error of the window); the output layer's eligibility meanwhile."""
        T, batch = inputs.steps, inputs.batch
        learn, rule = learning.active, learning.rule
        runs = [layer.start(batch, mask) for layer, mask in zip(self.layers, masks, strict=True)]
        updates = {k: self.layers[k - 1].zero_update() for k in learning.hidden}
        eligibility = self.output.zero_eligibility(batch) if learn else None
        waits = learning.hidden if learning.timing is Timing.OUTPUT else set()
        weight = self.params.layers[0].weight
        readout = SpikeCountReadout(batch, self.params.spec.n_outputs, weight.dtype, weight.device)
        for t0, s in inputs.windows(self.options.time_chunk):
            if monitor is not None:
                flat = s.reshape(s.shape[0], s.shape[1], -1)
                monitor(0, flat, flat)
            waiting = []
            for k, (layer, run) in enumerate(zip(self.layers, runs, strict=True), start=1):
                window = layer.present(s, run)
                if monitor is not None:
                    monitor(k, window.out.spikes, window.out.v)
                if k in label_factors:
                    layer.accumulate(updates[k], window, label_factors[k], T)
                elif k in waits:
                    waiting.append((k, window))
                s = layer.spikes(window)
            output = window
            if waiting and rule is not None:
                error = readout.running_error(output.out.spikes, t0, y_star)
                for k, hidden_window in waiting:
                    m = rule.third_factor(LayerView(k=k, y_star=y_star, B=self.params.feedback(k), error=error))
                    self.layers[k - 1].accumulate(updates[k], hidden_window, m, T)
            readout.add(output.out)
            if eligibility is not None:
                self.output.eligibility(eligibility, output, T)
        hidden = {k: (u.weight, u.bias) for k, u in updates.items()}
        return Harvest(readout.counts, readout.v_sum, T, hidden, eligibility)
