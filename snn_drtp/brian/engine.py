"""The Brian2 engine: the spiking engine's network, neurons and three-factor rule simulated by
Brian2 (``snn_drtp.brian.model``), over the same :class:`~snn_drtp.core.params.Params`.

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
from snn_drtp.core.engines import BRIAN2_TARGETS
from snn_drtp.core.params import Params
from snn_drtp.rules import LayerView, Rule, Timing
from snn_drtp.spiking.inputs import SpikeInput
from snn_drtp.spiking.layers import SPIKING_LAYERS, Eligibility, LIFLayer
from snn_drtp.spiking.neuron import LIFParams
from snn_drtp.spiking.options import SpikingOptions
from snn_drtp.spiking.presentation import Harvest, Learning, Masks, Monitor, SpikeCountEngine

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
    timings: ClassVar[frozenset[Timing]] = frozenset({Timing.LABEL, Timing.OUTPUT, Timing.NEVER})

    def __init__(
        self,
        params: Params,
        options: SpikingOptions | None = None,
        target: str = "numpy",
        replicas: int = DEFAULT_REPLICAS,
    ):
        if target not in BRIAN2_TARGETS:
            raise ValueError(f"Brian2 target {target!r} is not one of {', '.join(BRIAN2_TARGETS)}")
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

    @property
    def compute_dtype(self) -> torch.dtype:
        """Brian2 computes in float64 whatever the parameters' dtype."""
        return torch.float64

    def _timing_error(self, rule: Rule) -> str:
        return (
            f"rule {rule!r} needs a backward sweep (backpropagation through time), which the Brian2 engine "
            "does not run; use --engine spiking, or a rule whose third factor comes from the label or the output"
        )

    def _simulate(
        self,
        inputs: SpikeInput,
        y_star: torch.Tensor,
        learning: Learning,
        masks: Masks,
        label_factors: dict[int, torch.Tensor],
        monitor: Monitor | None,
    ) -> Harvest:
        """Present the batch in groups of ``replicas`` examples: for each group, upload its masks,
        third factors and input spikes, run T steps, harvest counts and the synapses' eligibilities."""
        spikes = torch.cat([s for _, s in inputs.windows(0)]).reshape(inputs.steps, inputs.batch, -1).cpu()
        if not bool(((spikes == 0) | (spikes == 1)).all()):
            raise ValueError(
                f"the Brian2 engine's input is 0/1 spikes; this input holds values up to {float(spikes.max()):g} "
                "(event counts): use --binary-frames (FrameSpec(binary=True)) or the torch spiking engine"
            )
        T, batch = inputs.steps, inputs.batch
        y64 = y_star.detach().to("cpu", torch.float64)
        factors = {k: m.detach().to("cpu", torch.float64) for k, m in label_factors.items()}
        replicas = min(self.replicas, batch)
        net = self.network(replicas, record=monitor is not None)
        self._upload_weights(net, replicas)
        b2.prefs.codegen.target = self.target
        counts = torch.zeros(batch, self.sizes[-1], dtype=torch.float64, device="cpu")
        v_sum = torch.zeros_like(counts)
        hidden = {
            k: (
                torch.zeros(self.sizes[k], self.sizes[k - 1], dtype=torch.float64, device="cpu"),
                torch.zeros(self.sizes[k], dtype=torch.float64, device="cpu"),
            )
            for k in learning.hidden
        }
        eligibility: list[tuple[torch.Tensor, torch.Tensor]] = []
        recordings: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in range(len(self.layers) + 1)]
        for start in range(0, batch, replicas):
            n = min(replicas, batch - start)
            part = slice(start, start + n)
            self._upload_group(net, part, n, masks, factors)
            t_start = float(net.network.t / b2.second)
            net.set_input(_padded(spikes[:, part], replicas, dim=1).numpy())
            self._run(net, learning, _padded(y64[part], replicas), T)
            self._harvest(net, part, n, T, counts, v_sum, hidden, eligibility)
            if monitor is not None:
                _record(net, recordings, t_start, T, n)
        if monitor is not None:
            for k, windows in enumerate(recordings):
                monitor(k, torch.cat([s for s, _ in windows], 1), torch.cat([v for _, v in windows], 1))
        output = None
        if learning.active:
            output = Eligibility(torch.cat([e for e, _ in eligibility]), torch.cat([e for _, e in eligibility]))
        return Harvest(counts, v_sum, T, hidden, output)

    def _upload_weights(self, net: BrianNetwork, replicas: int) -> None:
        """W_k and b_k of the parameter set (float64, on the CPU) into every replica's synapses."""
        for layer, torch_layer in zip(net.layers, self.layers, strict=True):
            weight = torch_layer.params.weight.detach().to("cpu", torch.float64).numpy()
            layer.synapses.w = np.tile(weight.reshape(-1), replicas)
            layer.neurons.b = np.tile(torch_layer.params.bias.detach().to("cpu", torch.float64).numpy(), replicas)

    def _upload_group(
        self,
        net: BrianNetwork,
        part: slice,
        n: int,
        masks: Masks,
        factors: dict[int, torch.Tensor],
    ) -> None:
        """A group's dropout masks (1 for idle replicas) and m_k at the start of its presentation:
        1 for the output layer (its eligibility), the label-selected factor for label-timed rules,
        else 0 (set at every step by :class:`RunningError`, or no update)."""
        net.reset()
        K, replicas = len(net.layers), net.replicas
        for k, (layer, mask) in enumerate(zip(net.layers, masks, strict=True), start=1):
            factor = torch.ones(replicas, layer.n_in, dtype=torch.float64, device="cpu")
            if mask is not None:
                factor[:n] = mask[part].to("cpu", torch.float64)
            layer.synapses.mask = factor.repeat_interleave(layer.n_out, dim=0).reshape(-1).numpy()
            m = torch.zeros(replicas, self.sizes[k], dtype=torch.float64, device="cpu")
            if k == K:
                m.fill_(1.0)
            elif k in factors:
                m = _padded(factors[k][part], replicas)
            layer.neurons.m = m.reshape(-1).numpy()

    def _run(self, net: BrianNetwork, learning: Learning, y_part: torch.Tensor, steps: int) -> None:
        """T steps of Brian2, with the running error setting m_k at every step for output-timed rules."""
        running = None
        if learning.rule is not None and learning.timing is Timing.OUTPUT and learning.hidden:
            views = {
                k: LayerView(k=k, y_star=y_part, B=self.params.feedback(k).to("cpu", torch.float64))
                for k in learning.hidden
            }
            running = b2.NetworkOperation(
                RunningError(net, views, learning.rule),
                clock=net.clock,
                when="groups",
                order=(len(net.layers) + 1) * LAYER_STRIDE,
            )
            net.network.add(running)
        net.run(steps)
        if running is not None:
            net.network.remove(running)

    def _harvest(
        self,
        net: BrianNetwork,
        part: slice,
        n: int,
        steps: int,
        counts: torch.Tensor,
        v_sum: torch.Tensor,
        hidden: dict[int, tuple[torch.Tensor, torch.Tensor]],
        eligibility: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> None:
        """Output counts and summed v of the group's n examples; hidden layers' g / T summed into
        their updates, the output layer's g / T kept per example."""
        replicas, K = net.replicas, len(net.layers)
        out = net.layers[-1].neurons
        counts[part] = torch.from_numpy(np.asarray(out.count[:]).reshape(replicas, -1)[:n])
        v_sum[part] = torch.from_numpy(np.asarray(out.vsum[:]).reshape(replicas, -1)[:n])
        for k, layer in enumerate(net.layers, start=1):
            if k != K and k not in hidden:
                continue
            g = torch.from_numpy(np.asarray(layer.synapses.g[:]).reshape(replicas, layer.n_out, layer.n_in)[:n])
            gb = torch.from_numpy(np.asarray(layer.neurons.gb[:]).reshape(replicas, layer.n_out)[:n])
            if k == K:
                eligibility.append((g / steps, gb / steps))
            else:
                hidden[k][0].add_(g.sum(0) / steps)
                hidden[k][1].add_(gb.sum(0) / steps)


def _padded(x: torch.Tensor, size: int, dim: int = 0) -> torch.Tensor:
    """x with zeros appended along ``dim`` up to ``size`` (idle replicas of a last, smaller group)."""
    missing = size - x.shape[dim]
    if missing == 0:
        return x
    shape = list(x.shape)
    shape[dim] = missing
    return torch.cat([x, torch.zeros(shape, dtype=x.dtype, device=x.device)], dim)


def _record(net: BrianNetwork, recordings: list[list[Any]], t_start: float, steps: int, n: int) -> None:
    """Spikes and v [T, n, N_k] of this run's first n replicas from the monitors (layer 0: the input)."""
    dt = net.options.neuron.dt
    sources = [(net.input_monitor, None, net.sizes[0])]
    sources += [(layer.monitor, layer.v_monitor, layer.n_out) for layer in net.layers]
    for k, (spike_monitor, v_monitor, units) in enumerate(sources):
        if spike_monitor is None:
            raise RuntimeError(
                "the Brian2 network was built without monitors (record=False); build it with record=True"
            )
        t = np.asarray(spike_monitor.t / b2.second)
        index = np.asarray(spike_monitor.i[:])
        keep = t >= t_start - dt / 2
        step = np.rint((t[keep] - t_start) / dt).astype(np.int64)
        dense = torch.zeros(steps, net.replicas * units, dtype=torch.float64, device="cpu")
        dense[step, index[keep]] = 1.0
        dense = dense.view(steps, net.replicas, units)[:, :n]
        if v_monitor is None:
            v = dense
        else:
            values = np.asarray(v_monitor.v[:])[:, -steps:]
            v = torch.from_numpy(values.T.copy()).view(steps, net.replicas, units)[:, :n]
        recordings[k].append((dense, v))
