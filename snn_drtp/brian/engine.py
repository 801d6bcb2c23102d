"""The Brian2 engine: the spiking engine's network, neurons and three-factor rule simulated by
Brian2 (``snn_drtp.brian.model``), over the same :class:`~snn_drtp.params.Params`.

It presents a batch as ``replicas`` copies of the network at once (more examples: one run per
group of ``replicas``), reads W_k and b_k from the parameter set before every presentation and
writes the updates back into ``.grad``:

    hidden k:  dJ/dW_k = (1/T) sum_n sum_t m_k[n](t) post_k[n](t) pre_k[n](t)^T   (g of its synapses)
    output K:  dJ/dW_K = sum_n delta[n] (1/T) sum_t post_K[n](t) pre_K[n](t)^T,
               delta = (y_hat - y*) / (N C),  y_hat = spike count / T

with m_k from the rule: before the presentation for rules whose third factor comes from the label
(DRTP), at every step from the running error count(t)/t - y* for update-locked rules (DFA, sDFA).
Rules that need a backward sweep (BP, FA: backpropagation through time) are the torch engine's.
Only dense layers; input spikes are 0/1 (event frames with counts need ``--binary-frames``).
Brian2 computes in float64; it is meant for small networks and cross-checks, not for speed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import brian2 as b2
import numpy as np
import torch

from snn_drtp.brian.model import LAYER_STRIDE, BrianNetwork
from snn_drtp.engine import StepResult
from snn_drtp.params import Params
from snn_drtp.rules import LayerView, Rule, Timing
from snn_drtp.spiking.engine import Monitor, SpikeCountEngine, dropout_masks
from snn_drtp.spiking.inputs import spike_input
from snn_drtp.spiking.layers import SPIKING_LAYERS, LIFLayer
from snn_drtp.spiking.neuron import LIFParams
from snn_drtp.spiking.options import SpikingOptions
from snn_drtp.spiking.readout import decide, squared_error

TARGETS = ("numpy", "cython")
"""Brian2 code generation targets: numpy works everywhere; cython compiles C (first use ~1 min)."""
DEFAULT_REPLICAS = 50


class RunningError:
    """Sets m_k of update-locked hidden layers at every step from the running error
    e(t) = count(t) / t - y* (a Brian2 network operation after the output layer's reset)."""

    def __init__(self, network: BrianNetwork, views: dict[int, LayerView], rule: Rule):
        self.network, self.views, self.rule, self.elapsed = network, views, rule, 0

    def __call__(self) -> None:
        self.elapsed += 1
        output = self.network.layers[-1].neurons
        counts = np.asarray(output.count[:]).reshape(self.network.replicas, -1)
        for k, view in self.views.items():
            error = torch.from_numpy(counts / self.elapsed).unsqueeze(0) - view.y_star
            m = self.rule.third_factor(LayerView(k=k, y_star=view.y_star, B=view.B, error=error))
            self.network.layers[k - 1].neurons.m = m.reshape(-1).numpy()


class Brian2Engine(SpikeCountEngine):
    """A dense LIF network over a :class:`Params`, simulated by Brian2 with code generation
    ``target`` and ``replicas`` examples per run."""

    name: ClassVar[str] = "brian2"
    numbers_version: ClassVar[int] = 1
    exact_reference: ClassVar[str] = "BPTT"
    signal_batch: ClassVar[int | None] = 100
    input_layout: ClassVar[str] = "any"
    timings: ClassVar[frozenset[Timing]] = frozenset({Timing.LABEL, Timing.OUTPUT, Timing.NEVER})

    def __init__(
        self,
        params: Params,
        options: SpikingOptions | None = None,
        target: str = "numpy",
        replicas: int = DEFAULT_REPLICAS,
    ):
        if target not in TARGETS:
            raise ValueError(f"Brian2 target {target!r} is not one of {', '.join(TARGETS)}")
        if replicas < 1:
            raise ValueError(f"replicas must be >= 1 examples per Brian2 run, got {replicas}")
        kinds = {layer.spec.kind for layer in params.layers}
        if kinds != {"dense"}:
            raise ValueError(
                f"network {params.spec.name}: the Brian2 engine simulates dense layers only, this one has "
                f"{', '.join(sorted(kinds - {'dense'}))} layers; use --engine spiking"
            )
        self.params = params
        self.options = options or SpikingOptions(neuron=LIFParams.from_dict(params.spec.neuron))
        self.target, self.replicas = target, replicas
        self.layers: list[LIFLayer] = [SPIKING_LAYERS["dense"](layer, self.options) for layer in params.layers]
        self.sizes = [self.layers[0].n_inputs, *(layer.params.geometry.weight_shape[0] for layer in self.layers)]
        self._networks: dict[tuple[int, bool], BrianNetwork] = {}

    def network(self, replicas: int, record: bool = False) -> BrianNetwork:
        """The Brian2 network for ``replicas`` examples (built on first use, then reused)."""
        key = (replicas, record)
        if key not in self._networks:
            self._networks[key] = BrianNetwork(self.sizes, self.options, replicas, record)
        return self._networks[key]

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
        """Present a batch and write the rule's updates into ``.grad``; the same inputs, random
        draws and arguments as :meth:`SpikingEngine.step <snn_drtp.spiking.engine.SpikingEngine.step>`."""
        if rule.timing not in self.timings:
            raise ValueError(
                f"rule {rule!r} needs a backward sweep (backpropagation through time), which the Brian2 engine "
                "does not run; use --engine spiking, or a rule whose third factor comes from the label or the output"
            )
        gen, p = self.draws(generator, dropout)
        inputs = spike_input(x, self.options.encoder, self.options.steps, gen, example_ids)
        masks = dropout_masks(self.layers, inputs.batch, p, gen)
        return self._present(inputs, y_star, rule, masks, write_grads, keep_signals, monitor)

    def simulate(self, x: Any, example_ids: torch.Tensor | None = None, monitor: Monitor | None = None) -> StepResult:
        """Present a batch without learning (static input encoded per example from seed EVAL_SEED + id)."""
        inputs = spike_input(x, self.options.encoder, self.options.steps, example_ids=self._ids(x, example_ids))
        y_star = torch.zeros(inputs.batch, self.params.spec.n_outputs, dtype=torch.float64)
        return self._present(inputs, y_star, None, [None] * len(self.layers), False, False, monitor)

    def _present(
        self,
        inputs: Any,
        y_star: torch.Tensor,
        rule: Rule | None,
        masks: list[torch.Tensor | None],
        write_grads: bool,
        keep_signals: bool,
        monitor: Monitor | None,
    ) -> StepResult:
        spikes = torch.cat([s for _, s in inputs.windows(0)]).reshape(inputs.steps, inputs.batch, -1)
        if not bool(((spikes == 0) | (spikes == 1)).all()):
            raise ValueError(
                f"the Brian2 engine's input is 0/1 spikes; this input holds values up to {float(spikes.max()):g} "
                "(event counts): use --binary-frames (FrameSpec(binary=True)) or the torch spiking engine"
            )
        T, batch, K = inputs.steps, inputs.batch, len(self.layers)
        learn = rule is not None and (write_grads or keep_signals)
        timing = rule.timing if rule is not None else Timing.NEVER
        wanted = {k for k in range(1, K) if learn and (self.layers[k - 1].params.trainable or keep_signals)}
        y64 = y_star.to(torch.float64)
        replicas = min(self.replicas, batch)
        net = self.network(replicas, record=monitor is not None)
        weights = [layer.params.weight.detach().to(torch.float64).numpy() for layer in self.layers]
        for layer, w, b in zip(net.layers, weights, self.layers, strict=True):
            layer.synapses.w = np.tile(w.reshape(-1), replicas)
            layer.neurons.b = np.tile(b.params.bias.detach().to(torch.float64).numpy(), replicas)
        counts = torch.zeros(batch, self.sizes[-1], dtype=torch.float64)
        v_sum = torch.zeros_like(counts)
        grads_w = [torch.zeros(w.shape, dtype=torch.float64) for w in weights]
        grads_b = [torch.zeros(w.shape[0], dtype=torch.float64) for w in weights]
        eligibility, eligibility_b = [], []
        recordings: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in range(K + 1)]
        for start in range(0, batch, replicas):
            n = min(replicas, batch - start)
            part = slice(start, start + n)
            y_part = _padded(y64[part], replicas)
            net.reset()
            for k, (layer, mask) in enumerate(zip(net.layers, masks, strict=True), start=1):
                factor = torch.ones(replicas, layer.n_in, dtype=torch.float64)
                if mask is not None:
                    factor[:n] = mask[part].to(torch.float64)
                layer.synapses.mask = factor.repeat_interleave(layer.n_out, dim=0).reshape(-1).numpy()
                layer.neurons.m = self._third_factor(k, K, rule, timing, wanted, y_part).reshape(-1).numpy()
            running = None
            if timing is Timing.OUTPUT and wanted:
                views = {k: LayerView(k=k, y_star=y_part, B=self.params.feedback(k).to(torch.float64)) for k in wanted}
                running = b2.NetworkOperation(
                    RunningError(net, views, rule), clock=net.clock, when="groups", order=(K + 1) * LAYER_STRIDE
                )
                net.network.add(running)
            t_start = float(net.network.t / b2.second)
            net.set_input(_padded(spikes[:, part], replicas, dim=1).numpy())
            b2.prefs.codegen.target = self.target
            net.run(T)
            if running is not None:
                net.network.remove(running)
            out = net.layers[-1].neurons
            counts[part] = torch.from_numpy(np.asarray(out.count[:]).reshape(replicas, -1)[:n])
            v_sum[part] = torch.from_numpy(np.asarray(out.vsum[:]).reshape(replicas, -1)[:n])
            for k, layer in enumerate(net.layers, start=1):
                g = torch.from_numpy(np.asarray(layer.synapses.g[:]).reshape(replicas, layer.n_out, layer.n_in)[:n])
                gb = torch.from_numpy(np.asarray(layer.neurons.gb[:]).reshape(replicas, layer.n_out)[:n])
                if k == K:
                    eligibility.append(g / T)
                    eligibility_b.append(gb / T)
                else:
                    grads_w[k - 1] += g.sum(0) / T
                    grads_b[k - 1] += gb.sum(0) / T
            if monitor is not None:
                _record(net, recordings, t_start, T, n)
        if monitor is not None:
            for k, windows in enumerate(recordings):
                monitor(k, torch.cat([s for s, _ in windows], 1), torch.cat([v for _, v in windows], 1))
        y_hat = counts / T
        if learn:
            delta = (y_hat - y64) / y_hat.numel()
            grads_w[-1] = torch.einsum("nc,ncd->cd", delta, torch.cat(eligibility))
            grads_b[-1] = (delta * torch.cat(eligibility_b)).sum(0)
        dtype = self.params.layers[0].weight.dtype
        if write_grads and learn:
            for k, layer in enumerate(self.layers, start=1):
                if layer.params.trainable and (k == K or (k in wanted and timing is not Timing.NEVER)):
                    layer.params.weight.grad = grads_w[k - 1].to(dtype)
                    layer.params.bias.grad = grads_b[k - 1].to(dtype)
        signals = [grads_w[k - 1].to(dtype) for k in range(1, K)] if keep_signals else []
        prediction = decide(counts, v_sum, T)
        return StepResult(y_hat.to(dtype), float(squared_error(y_hat, y64)), signals, prediction)

    def _third_factor(
        self, k: int, K: int, rule: Rule | None, timing: Timing, wanted: set[int], y_star: torch.Tensor
    ) -> torch.Tensor:
        """m_k per example and unit at the start of a presentation: 1 for the output layer (its
        eligibility), the rule's label-selected factor for label-timed rules, else 0 (set later
        by :class:`RunningError`, or no update)."""
        units = self.sizes[k]
        if k == K:
            return torch.ones(y_star.shape[0], units, dtype=torch.float64)
        if rule is not None and timing is Timing.LABEL and k in wanted:
            view = LayerView(k=k, y_star=y_star, B=self.params.feedback(k).to(torch.float64))
            return rule.third_factor(view)
        return torch.zeros(y_star.shape[0], units, dtype=torch.float64)


def _padded(x: torch.Tensor, size: int, dim: int = 0) -> torch.Tensor:
    """x with zeros appended along ``dim`` up to ``size`` (idle replicas of a last, smaller group)."""
    missing = size - x.shape[dim]
    if missing == 0:
        return x
    shape = list(x.shape)
    shape[dim] = missing
    return torch.cat([x, torch.zeros(shape, dtype=x.dtype)], dim)


def _record(net: BrianNetwork, recordings: list[list[Any]], t_start: float, steps: int, n: int) -> None:
    """Spikes and v [T, n, N_k] of this run's first n replicas from the monitors (layer 0: the input)."""
    dt = net.options.neuron.dt
    sources = [(net.input_monitor, None, net.sizes[0])]
    sources += [(layer.monitor, layer.v_monitor, layer.n_out) for layer in net.layers]
    for k, (spike_monitor, v_monitor, units) in enumerate(sources):
        t = np.asarray(spike_monitor.t / b2.second)
        index = np.asarray(spike_monitor.i[:])
        keep = t >= t_start - dt / 2
        step = np.rint((t[keep] - t_start) / dt).astype(np.int64)
        dense = torch.zeros(steps, net.replicas * units, dtype=torch.float64)
        dense[step, index[keep]] = 1.0
        dense = dense.view(steps, net.replicas, units)[:, :n]
        if v_monitor is None:
            v = dense
        else:
            values = np.asarray(v_monitor.v[:])[:, -steps:]
            v = torch.from_numpy(values.T.copy()).view(steps, net.replicas, units)[:, :n]
        recordings[k].append((dense, v))
