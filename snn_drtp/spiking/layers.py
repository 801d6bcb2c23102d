"""Spiking layers that own their dynamics: each computes its input current, runs its LIF
population and accumulates its own three-factor update

    dJ/dW_k = (1/T) sum_t (m_k(t) * post_k(t)) pre_k(t)^T,    post_k(t) = psi(v_k(t)) * integrating_k(t)

with pre_k(t) = x_{k-1}(t) the layer's input spikes or their trace x(t) = gamma x(t-1) + s(t)
(gamma = exp(-dt / tau_pre); raw spikes when tau_pre = 0). A convolutional layer is one more class
implementing :class:`SpikingLayer` (``start``, ``present``, ``accumulate``, ...), its third
factor covering the convolution's output before pooling, registered in :data:`SPIKING_LAYERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch

from snn_drtp.params import LayerParams
from snn_drtp.spiking.events import SpikeEvents
from snn_drtp.spiking.neuron import LIFOutput, LIFState, lif_scan
from snn_drtp.spiking.options import SpikingOptions
from snn_drtp.spiking.surrogate import get_surrogate

EVENT_DENSITY = 0.2
"""Event-driven products pay off below this fraction of spiking inputs."""
EVENT_MIN_UNITS = 100
"""... and into layers at least this wide."""


def trace_scan(s: torch.Tensor, state: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-synaptic trace x(t) = gamma x(t-1) + s(t) over the time axis of s [n, N, D], from the
    trace ``state`` left by the previous window; returns the traces and the new state."""
    if gamma == 0.0:
        return s, state
    out = torch.empty_like(s)
    for t in range(s.shape[0]):
        state = gamma * state + s[t]
        out[t] = state
    return out, state


@dataclass
class LayerRun:
    """A layer's state during one presentation: its LIF state and pre-synaptic trace (carried
    from window to window), its dropout mask (one per example, held for the whole presentation)
    and its update accumulators (``grad_w``, ``grad_b``; per example ``eligibility`` for the output
    layer, whose error exists only when the presentation ends)."""

    state: LIFState
    trace: torch.Tensor
    mask: torch.Tensor | None
    steps: int
    grad_w: torch.Tensor | None = None
    grad_b: torch.Tensor | None = None
    eligibility: torch.Tensor | None = None
    eligibility_b: torch.Tensor | None = None


class LayerWindow(NamedTuple):
    """One window of a layer: what the rule reads as ``pre`` [n, N, D] (input after dropout, or its
    trace), the LIF output [n, N, N_k] and the input's spike events when the update may reuse them."""

    pre: torch.Tensor
    out: LIFOutput
    events: SpikeEvents | None


class DenseLIF:
    """A fully connected LIF population: I_k(t) = W_k x_{k-1}(t) + b_k for every step of a window
    in one matrix product (event-driven, work per input spike, when the input is sparse and binary),
    then the LIF scan."""

    def __init__(self, params: LayerParams, options: SpikingOptions):
        self.params = params
        self.options = options
        self.neuron = options.neuron
        self.psi = get_surrogate(options.surrogate)

    @property
    def units(self) -> int:
        return self.params.geometry.weight_shape[0]

    @property
    def n_inputs(self) -> int:
        return self.params.geometry.weight_shape[1]

    def start(self, batch: int, steps: int, mask: torch.Tensor | None, learn: bool, output: bool = False) -> LayerRun:
        dtype = self.params.weight.dtype
        run = LayerRun(
            state=LIFState.zeros((batch, self.units), self.neuron, dtype),
            trace=torch.zeros(batch, self.n_inputs, dtype=dtype),
            mask=mask,
            steps=steps,
        )
        if learn and output:
            run.eligibility = torch.zeros(batch, self.units, self.n_inputs, dtype=dtype)
            run.eligibility_b = torch.zeros(batch, self.units, dtype=dtype)
        elif learn:
            run.grad_w = torch.zeros(self.units, self.n_inputs, dtype=dtype)
            run.grad_b = torch.zeros(self.units, dtype=dtype)
        return run

    def _event_driven(self, s: torch.Tensor, run: LayerRun) -> bool:
        """Binary (no dropout scaling), sparse input into a wide layer."""
        return (
            self.options.event_driven
            and run.mask is None
            and self.units >= EVENT_MIN_UNITS
            and float(s.mean()) < EVENT_DENSITY
        )

    def current(self, s: torch.Tensor, events: SpikeEvents | None) -> torch.Tensor:
        """I_k(t) = W_k s(t) + b_k for every step of a window: [n, N, D] -> [n, N, N_k]."""
        n, batch = s.shape[:2]
        weight, bias = self.params.weight, self.params.bias
        if events is not None:
            return (events.matmul(weight) + bias).view(n, batch, -1)
        return torch.addmm(bias, s.reshape(n * batch, -1), weight.t()).view(n, batch, -1)

    def present(self, s: torch.Tensor, run: LayerRun) -> LayerWindow:
        """One window of input spikes [n, N, ...]: dropout, trace, current, LIF scan."""
        n, batch = s.shape[:2]
        s = s.reshape(n, batch, -1)
        if run.mask is not None:
            s = s * run.mask
        pre, run.trace = trace_scan(s, run.trace, self.options.gamma)
        events = SpikeEvents(s.reshape(n * batch, -1)) if self._event_driven(s, run) else None
        out, run.state = lif_scan(self.current(s, events), run.state, self.neuron)
        return LayerWindow(pre, out, events if self.options.gamma == 0.0 else None)

    def spikes(self, window: LayerWindow) -> torch.Tensor:
        """What the next layer receives."""
        return window.out.spikes

    def post(self, window: LayerWindow) -> torch.Tensor:
        """post_k(t) = psi(v_k(t)), 0 while refractory (the neuron then ignores its input)."""
        post = self.psi(window.out.v, self.neuron.threshold, self.options.slope)
        if window.out.integrating is not None:
            post.mul_(window.out.integrating)
        return post

    def accumulate(self, run: LayerRun, window: LayerWindow, m: torch.Tensor) -> None:
        """grad_W += (1/T) sum_t (m(t) * post(t))^T pre(t) over the window's steps in one product
        (event-driven when ``pre`` is the binary input spikes of a wide layer); m is [N, N_k] (held
        over the window) or [n, N, N_k]."""
        delta = self.post(window).mul_(m)
        d = delta.reshape(-1, delta.shape[-1])
        if window.events is not None:
            run.grad_w.add_(window.events.outer_sum(d), alpha=1.0 / run.steps)
        else:
            run.grad_w.addmm_(d.t(), window.pre.reshape(d.shape[0], -1), alpha=1.0 / run.steps)
        run.grad_b.add_(d.sum(0), alpha=1.0 / run.steps)

    def eligibility(self, run: LayerRun, window: LayerWindow) -> None:
        """Per example, E[n] += (1/T) sum_t post(t) pre(t)^T: the output layer's update waits for
        its error, which exists when the presentation ends."""
        post = self.post(window)
        run.eligibility.baddbmm_(post.permute(1, 2, 0), window.pre.transpose(0, 1), alpha=1.0 / run.steps)
        run.eligibility_b += post.sum(0) / run.steps

    def apply_error(self, run: LayerRun, delta: torch.Tensor) -> None:
        """grad_W = sum_n delta[n] E[n] once the error delta [N, N_k] exists."""
        run.grad_w = torch.einsum("nc,ncd->cd", delta, run.eligibility)
        run.grad_b = (delta * run.eligibility_b).sum(0)


class SpikingLayer(Protocol):
    """What the engine asks of a layer, whatever its connectivity."""

    params: LayerParams

    @property
    def n_inputs(self) -> int: ...

    def start(
        self, batch: int, steps: int, mask: torch.Tensor | None, learn: bool, output: bool = False
    ) -> LayerRun: ...

    def present(self, s: torch.Tensor, run: LayerRun) -> LayerWindow: ...

    def spikes(self, window: LayerWindow) -> torch.Tensor: ...

    def accumulate(self, run: LayerRun, window: LayerWindow, m: torch.Tensor) -> None: ...

    def eligibility(self, run: LayerRun, window: LayerWindow) -> None: ...

    def apply_error(self, run: LayerRun, delta: torch.Tensor) -> None: ...


SPIKING_LAYERS: dict[str, type[SpikingLayer]] = {"dense": DenseLIF}
"""The spiking layer class of each layer kind of a network spec."""
