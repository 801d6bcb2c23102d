"""Spiking (LIF) network that learns with the three-factor rule, streaming over time.

Every layer k has the weights, biases and fixed B_k of the rate network built from the same spec
and seed (it *is* a :class:`RateNetwork` whose layers are read as LIF populations): input
spikes s_{k-1}(t) drive the current I_k(t) = W_k s_{k-1}(t) + b_k, LIF neurons integrate it
(``snn_drtp.spiking.neuron``) and emit s_k(t). Learning accumulates, per synapse,

    dJ/dW_k = (1/T) sum_t (m_k(t) * psi(v_k(t))) x_{k-1}(t)^T

with psi a surrogate derivative of the membrane potential (``post``), x a pre-synaptic trace
x(t) = gamma x(t-1) + s(t), gamma = exp(-dt / tau_pre), or the raw spikes when tau_pre = 0
(``pre``), and m_k the rule's third factor (``snn_drtp.rules``):

* hidden layers, DRTP: m_k = y* B_k, known from the label before the first step;
* hidden layers, DFA / sDFA: m_k(t) = e(t) B_k or sign(e(t)) B_k from the running output error
  e(t) = y_hat(t) - y*, y_hat(t) the output spike count so far over t;
* output layer: m_K = (y_hat - y*) / (N C), y_hat = output spike count / T, its own error.

Because the output error exists only at the end of the window, the output layer keeps an
eligibility trace E[n] = (1/T) sum_t psi(v_K(t)) x_{K-1}(t)^T per example ([N, C, N_{K-1}]) and
multiplies it by the error when the window closes. Time is processed in chunks of
``time_chunk`` steps, layer after layer: a chunk's input current for all its steps is one matrix
product, then the LIF scan, then (under DRTP) the layer's update for that chunk, then the next
layer. Memory therefore depends on the chunk, not on T.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from snn_drtp.networks import NetworkSpec
from snn_drtp.rate.network import RateNetwork, StepResult
from snn_drtp.rules import Rule
from snn_drtp.spiking.encoders import encode
from snn_drtp.spiking.events import SpikeEvents
from snn_drtp.spiking.neuron import LIFParams, LIFState, lif_scan
from snn_drtp.spiking.surrogate import get_surrogate

EVAL_SEED = 12345
EVENT_DENSITY = 0.2


@dataclass(frozen=True)
class SpikingOptions:
    """How a spiking network is simulated and how its rule reads activity."""

    steps: int = 25
    encoder: str = "rate"
    surrogate: str = "fast_sigmoid"
    slope: float = 4.0
    tau_pre: float = 0.0
    time_chunk: int = 0
    event_driven: bool = True
    neuron: LIFParams = field(default_factory=LIFParams)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps (T) must be >= 1, got {self.steps}")
        if self.time_chunk < 0 or self.tau_pre < 0 or self.slope <= 0:
            raise ValueError("time_chunk and tau_pre must be >= 0 and slope > 0")
        get_surrogate(self.surrogate)

    @property
    def chunk(self) -> int:
        return self.time_chunk if 0 < self.time_chunk < self.steps else self.steps

    @property
    def gamma(self) -> float:
        return math.exp(-self.neuron.dt / self.tau_pre) if self.tau_pre > 0 else 0.0


def trace_scan(s: torch.Tensor, state: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-synaptic trace x(t) = gamma x(t-1) + s(t) over the time axis of s [T, N, D]."""
    if gamma == 0.0:
        return s, state
    out = torch.empty_like(s)
    for t in range(s.shape[0]):
        state = gamma * state + s[t]
        out[t] = state
    return out, state


def dropout_masks(net: RateNetwork, batch: int, p: float, gen: torch.Generator) -> list[torch.Tensor | None]:
    """Per layer, one inverted-dropout mask on its input per example, held for the whole
    presentation (None when p = 0)."""
    if p <= 0:
        return [None for _ in net.layers]
    return [
        (torch.rand(batch, layer.weight.shape[1], generator=gen) >= p).float().div_(1.0 - p) for layer in net.layers
    ]


def decide(counts: torch.Tensor, v_sum: torch.Tensor, steps: int) -> torch.Tensor:
    """The class with most output spikes; ties go to the larger mean membrane potential."""
    return (counts + 0.5 * torch.sigmoid(v_sum / steps)).argmax(1)


class SpikingNetwork(RateNetwork):
    """LIF network with the weights and B_k of ``RateNetwork(spec, seed)``."""

    def __init__(
        self, spec: NetworkSpec, seed: int = 0, options: SpikingOptions | None = None, zero_init: bool = False
    ):
        if any(layer.kind != "dense" for layer in spec.layers):
            raise ValueError(f"network {spec.name}: the spiking engine supports dense layers only")
        super().__init__(spec, seed=seed, zero_init=zero_init)
        self.options = options or SpikingOptions()
        self.psi = get_surrogate(self.options.surrogate)

    def _current(self, k: int, s: torch.Tensor, events: SpikeEvents | None) -> torch.Tensor:
        """I_k(t) = W_k s(t) + b_k for every step of a chunk at once: [n, N, D] -> [n, N, N_k];
        event-driven (work per spike) when ``events`` lists the spikes of s, else one dense product."""
        layer = self.layers[k - 1]
        n, batch = s.shape[:2]
        if events is not None:
            return (events.matmul(layer.weight) + layer.bias).view(n, batch, -1)
        return torch.addmm(layer.bias, s.reshape(n * batch, -1), layer.weight.t()).view(n, batch, -1)

    def _events(self, k: int, masks: list[torch.Tensor | None], s: torch.Tensor) -> bool:
        """Event-driven products pay off for binary inputs (no dropout scaling) that are sparse
        (fewer than ``EVENT_DENSITY`` of the entries spike) into wide layers."""
        return (
            self.options.event_driven
            and masks[k - 1] is None
            and self.layers[k - 1].spec.units >= 100
            and float(s.mean()) < EVENT_DENSITY
        )

    def _post(self, v: torch.Tensor) -> torch.Tensor:
        return self.psi(v, self.options.neuron.threshold, self.options.slope)

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
        monitor: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    ) -> StepResult:
        """Present a batch for T steps, accumulate the three-factor updates, write ``.grad``.

        ``monitor(k, spikes, v)`` is called for every layer k (1-based; k = 0 gives the input
        spikes twice) and time chunk, with spikes and pre-reset membrane potentials [n, N, N_k].
        ``keep_signals`` returns each hidden layer's summed update dJ/dW_k (alignment studies).
        """
        if rule.name == "bp":
            from snn_drtp.spiking.bptt import bptt_step

            return bptt_step(self, x, y_star, dropout, generator, write_grads, keep_signals)
        if rule.name == "fa":
            raise ValueError(
                "rule fa needs a layer-by-layer backward pass; the spiking engine offers "
                "drtp, dfa, sdfa, shallow and bp (surrogate-gradient BPTT)"
            )
        learn = write_grads or keep_signals
        opt, p = self.options, dropout if generator is not None else 0.0
        T, batch, K = opt.steps, x.shape[0], len(self.layers)
        gen = generator if generator is not None else torch.Generator().manual_seed(EVAL_SEED)
        masks = dropout_masks(self, batch, p, gen)
        states = [LIFState.zeros((batch, layer.spec.units), opt.neuron) for layer in self.layers]
        traces = [torch.zeros(batch, layer.weight.shape[1]) for layer in self.layers]
        shapes = [layer.weight.shape for layer in self.layers] if learn else []
        grads = [torch.zeros(shape) for shape in shapes]
        bias_grads = [torch.zeros(shape[0]) for shape in shapes]
        eligibility = torch.zeros(batch, *shapes[-1]) if learn else None
        eligibility_bias = torch.zeros(batch, shapes[-1][0]) if learn else None
        counts = torch.zeros(batch, self.layers[-1].spec.units)
        v_sum = torch.zeros_like(counts)
        hidden_m = [
            rule.direct_third_factor(self.feedback(k), y_star) if rule.name == "drtp" else None for k in range(1, K)
        ]
        for t0 in range(0, T, opt.chunk):
            n = min(opt.chunk, T - t0)
            s = encode(opt.encoder, x.reshape(batch, -1), T, gen, start=t0, count=n)
            if monitor is not None:
                monitor(0, s, s)
            pending = []
            for k in range(1, K + 1):
                if masks[k - 1] is not None:
                    s = s * masks[k - 1]
                pre, traces[k - 1] = trace_scan(s, traces[k - 1], opt.gamma)
                events = SpikeEvents(s.reshape(n * batch, -1)) if self._events(k, masks, s) else None
                spikes, v, states[k - 1] = lif_scan(self._current(k, s, events), states[k - 1], opt.neuron)
                events = events if opt.gamma == 0.0 else None
                if monitor is not None:
                    monitor(k, spikes, v)
                if k == K:
                    running = counts.unsqueeze(0) + spikes.cumsum(0)
                    counts += spikes.sum(0)
                    v_sum += v.sum(0)
                if not learn:
                    s = spikes
                    continue
                post = self._post(v)
                if k == K:
                    eligibility.baddbmm_(post.permute(1, 2, 0), pre.transpose(0, 1), alpha=1.0 / T)
                    eligibility_bias += post.sum(0) / T
                elif rule.name == "drtp" and self.layers[k - 1].trainable:
                    self._accumulate(k, post.mul_(hidden_m[k - 1]), pre, grads, bias_grads, T, events)
                elif rule.update_locked:
                    pending.append((k, post, pre, events))
                s = spikes
            if pending:
                elapsed = torch.arange(t0 + 1, t0 + n + 1, dtype=counts.dtype).view(n, 1, 1)
                error = running / elapsed - y_star
                for k, post, pre, events in pending:
                    m = (torch.sign(error) if rule.name == "sdfa" else error) @ self.feedback(k)
                    self._accumulate(k, post.mul_(m), pre, grads, bias_grads, T, events)
        y_hat = counts / T
        if learn:
            delta = (y_hat - y_star) / y_hat.numel()
            grads[-1] = torch.einsum("nc,ncd->cd", delta, eligibility)
            bias_grads[-1] = (delta * eligibility_bias).sum(0)
        if write_grads:
            for k, layer in enumerate(self.layers, start=1):
                if layer.trainable and (k == K or rule.trains_hidden):
                    layer.weight.grad, layer.bias.grad = grads[k - 1], bias_grads[k - 1]
        signals = [grads[k - 1] for k in range(1, K)] if keep_signals else []
        loss = float(torch.nn.functional.binary_cross_entropy(y_hat.clamp(1e-4, 1 - 1e-4), y_star))
        return StepResult(y_hat, loss, signals, decide(counts, v_sum, T))

    @staticmethod
    def _accumulate(
        k: int,
        delta: torch.Tensor,
        pre: torch.Tensor,
        grads: list[torch.Tensor],
        bias_grads: list[torch.Tensor],
        T: int,
        events: SpikeEvents | None,
    ) -> None:
        """grads_k += (1/T) sum_t delta(t)^T pre(t), all steps of the chunk in one product
        (event-driven when ``pre`` is binary spikes of a wide layer)."""
        d = delta.reshape(-1, delta.shape[-1])
        flat = pre.reshape(d.shape[0], -1)
        if events is not None:
            grads[k - 1].add_(events.outer_sum(d), alpha=1.0 / T)
        else:
            grads[k - 1].addmm_(d.t(), flat, alpha=1.0 / T)
        bias_grads[k - 1].add_(d.sum(0), alpha=1.0 / T)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_hat = output spike counts / T, predicted class), input encoded with a fixed seed."""
        y_star = torch.zeros(x.shape[0], self.spec.n_outputs)
        res = self.step(x, y_star, Rule("shallow"), write_grads=False)
        return res.output, res.prediction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(x)[0]
