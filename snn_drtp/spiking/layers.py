"""Spiking layers that own their dynamics: each computes its input current, runs its LIF
population and accumulates its own three-factor update

    dJ/dW_k = (1/T) sum_t (m_k(t) * post_k(t)) pre_k(t)^T,    post_k(t) = psi(v_k(t)) * integrating_k(t)

with pre_k(t) = x_{k-1}(t) the layer's input spikes (or event counts) or their trace
x(t) = gamma x(t-1) + s(t) (gamma = exp(-dt / tau_pre); the input itself when tau_pre = 0).
:class:`LIFLayer` holds what every layer shares (state, trace, post factor, bookkeeping); a layer
kind is one subclass that says how its current is computed and how its update is accumulated:
:class:`DenseLIF` (a matrix product, event-driven when the input is sparse) and
:class:`ConvLIF` (a convolution, LIF neurons on its output, then max-pooling of the spikes; its
third factor covers the convolution's output before pooling, as in the paper's CONV networks).
Each kind also gives backpropagation through time its current as a differentiable operation whose
input gradient is the rule's third factor.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input, conv2d_weight

from snn_drtp.core.params import LayerParams
from snn_drtp.spiking.events import SpikeEvents, column_blocks
from snn_drtp.spiking.neuron import LIFOutput, LIFState, lif_scan
from snn_drtp.spiking.options import SpikingOptions
from snn_drtp.spiking.surrogate import get_surrogate

EVENT_DENSITY = 0.2
"""Event-driven products pay off below this fraction of non-zero inputs: the current and update
of a window (events listed, both products) against the two dense products, 1 thread, crossed at
a density of 0.3 for 2,500 x 784 inputs into 1,000 units and at 0.15-0.2 for 1,000 x 4,624 into
500 (the N-MNIST network's dense layer); at a density of 0.1, 2.5x faster than dense."""
EVENT_MIN_UNITS = 100
"""... and into layers at least this wide."""

SendDown = Callable[[torch.Tensor], torch.Tensor]


def trace_scan(s: torch.Tensor, state: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-synaptic trace x(t) = gamma x(t-1) + s(t) over the time axis of s [n, N, ...], from the
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
    from window to window) and its dropout mask (one per example, held for the whole presentation)."""

    state: LIFState
    trace: torch.Tensor
    mask: torch.Tensor | None
    weight_t: list[torch.Tensor] | None = None
    """W_k^T in the column blocks of the event-driven current, built at its first use in the
    presentation (the weights do not change during one), not once per window."""


class Update:
    """Accumulators of a layer's update over a presentation: dJ/dW_k and dJ/db_k, added to in place.

    The weight accumulator is held in the layout of the product that adds to it: [N_k, D] for the
    dense product and convolutions, transposed [D, N_k] for the event-driven update, whose blocks
    come out that way (adding them into [N_k, D] reads them transposed, 5x slower for 500 x 4,624).
    A change of layout is an exact copy, so the sum is the same whichever products fed it."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        self._weight = torch.zeros_like(weight, memory_format=torch.contiguous_format)
        self._transposed = False
        self.bias = torch.zeros_like(bias, memory_format=torch.contiguous_format)

    def weight_as(self, transposed: bool) -> torch.Tensor:
        """The weight accumulator to add to in place, [N_k, D] or (``transposed``) [D, N_k], contiguous."""
        if transposed != self._transposed:
            self._weight = self._weight.t().contiguous()
            self._transposed = transposed
        return self._weight

    @property
    def weight(self) -> torch.Tensor:
        """dJ/dW_k [N_k, ...] (the shape of W_k), contiguous."""
        return self.weight_as(False)


class Eligibility(NamedTuple):
    """The output layer's per-example eligibility E [N, C, D] and E_b [N, C], waiting for the error
    that exists when the presentation ends."""

    weight: torch.Tensor
    bias: torch.Tensor


class LayerWindow(NamedTuple):
    """One window of a layer: what the rule reads as ``pre`` [n, N, ...] (input after dropout, or
    its trace), the LIF output [n, N, ...] and the input's events when the update may reuse them."""

    pre: torch.Tensor
    out: LIFOutput
    events: SpikeEvents | None


class LIFLayer(ABC):
    """What every spiking layer does; subclasses give the current and the update's product."""

    takes_dropout: ClassVar[bool] = False
    """Dropout acts on the input of fully connected layers only (as in the paper)."""

    def __init__(self, params: LayerParams, options: SpikingOptions):
        self.params = params
        self.options = options
        self.neuron = options.neuron
        self.psi = get_surrogate(options.surrogate)
        geometry = params.geometry
        self.state_shape: tuple[int, ...] = geometry.act_shape
        self.input_shape: tuple[int, ...] = self._input_shape(geometry.in_shape)

    def _input_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return in_shape

    @property
    def n_inputs(self) -> int:
        return math.prod(self.input_shape)

    def start(self, batch: int, mask: torch.Tensor | None) -> LayerRun:
        """The state of a new presentation of ``batch`` examples, on the weights' device and dtype."""
        weight = self.params.weight
        return LayerRun(
            state=LIFState.zeros((batch, *self.state_shape), self.neuron, weight.dtype, weight.device),
            trace=torch.zeros(batch, *self.input_shape, dtype=weight.dtype, device=weight.device),
            mask=mask,
        )

    def zero_update(self) -> Update:
        """Zeroed accumulators of dJ/dW_k and dJ/db_k (contiguous, on the weights' device)."""
        return Update(self.params.weight, self.params.bias)

    def events(self, s: torch.Tensor, run: LayerRun) -> SpikeEvents | None:
        """The input's events when the current is computed per event (default: never)."""
        return None

    @abstractmethod
    def current(self, s: torch.Tensor, events: SpikeEvents | None, run: LayerRun) -> torch.Tensor:
        """I_k(t) for every step of a window: [n, N, *input_shape] -> [n, N, *state_shape]."""

    def present(self, s: torch.Tensor, run: LayerRun) -> LayerWindow:
        """One window of input [n, N, ...]: dropout, trace, current, LIF scan."""
        s = s.reshape(*s.shape[:2], *self.input_shape)
        if run.mask is not None:
            s = s * run.mask
        pre, run.trace = trace_scan(s, run.trace, self.options.gamma)
        events = self.events(s, run)
        out, run.state = lif_scan(self.current(s, events, run), run.state, self.neuron)
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

    def accumulate(self, update: Update, window: LayerWindow, m: torch.Tensor, steps: int) -> None:
        """update += (1/T) sum_t (m(t) * post(t)) x pre(t) over the window's steps (T = ``steps``); m is
        [N, N_k] (held over the window) or [n, N, N_k], N_k the units before pooling."""
        delta = self.post(window).mul_(m.reshape(*m.shape[:-1], *self.state_shape))
        self.add_update(update, window, delta, steps)

    @abstractmethod
    def add_update(self, update: Update, window: LayerWindow, delta: torch.Tensor, steps: int) -> None:
        """grad_W += (1/T) sum_t delta(t) x pre(t), grad_b += (1/T) sum_t delta(t)."""

    @abstractmethod
    def differentiable_current(
        self, s: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, send_down: SendDown
    ) -> torch.Tensor:
        """I(t) of one step [N, *input_shape] for backpropagation through time: its input gradient
        is ``send_down(dJ/dI)``, the rule's third factor for the layer below."""

    @abstractmethod
    def carry(self, in_shape: torch.Size) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """carry(delta, M): dJ/dI of this layer sent to its input through M (W_k or F_k)."""

    def differentiable_spikes(self, spikes: torch.Tensor) -> torch.Tensor:
        """What the next layer receives, inside the BPTT graph."""
        return spikes


class _Current(torch.autograd.Function):
    """I = forward(s, W, b). Backward: dJ/dW and dJ/db from the layer's own formulas, dJ/ds =
    ``send_down(g)``, the rule's third factor for the layer below."""

    @staticmethod
    def forward(ctx: Any, s: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, layer: Any, send: Any) -> Any:
        ctx.save_for_backward(s)
        ctx.layer, ctx.send, ctx.weight_shape = layer, send, weight.shape
        return layer.linear(s, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (s,) = ctx.saved_tensors
        grad_w, grad_b = (
            ctx.layer.parameter_grads(s, grad, ctx.weight_shape) if ctx.needs_input_grad[1] else (None,) * 2
        )
        return ctx.send(grad) if ctx.needs_input_grad[0] else None, grad_w, grad_b, None, None


class DenseLIF(LIFLayer):
    """A fully connected LIF population: I_k(t) = W_k x_{k-1}(t) + b_k for every step of a window
    in one matrix product, or event-driven (work per non-zero input) when the input is sparse."""

    takes_dropout = True

    def _input_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(in_shape),)

    @property
    def units(self) -> int:
        return self.params.geometry.weight_shape[0]

    def events(self, s: torch.Tensor, run: LayerRun) -> SpikeEvents | None:
        """Events for inputs without dropout scaling that are sparse, into a wide layer, on the CPU."""
        if (
            not self.options.event_driven
            or run.mask is not None
            or self.units < EVENT_MIN_UNITS
            or s.device.type != "cpu"
        ):
            return None
        flat = s.reshape(-1, s.shape[-1])
        nonzero = flat != 0
        if int(nonzero.sum()) >= EVENT_DENSITY * nonzero.numel():
            return None
        return SpikeEvents(flat, nonzero)

    def current(self, s: torch.Tensor, events: SpikeEvents | None, run: LayerRun) -> torch.Tensor:
        n, batch = s.shape[:2]
        weight, bias = self.params.weight, self.params.bias
        if events is not None:
            if run.weight_t is None:
                run.weight_t = column_blocks(weight.t())
            return events.matmul(run.weight_t, bias).view(n, batch, -1)
        return torch.addmm(bias, s.reshape(n * batch, -1), weight.t()).view(n, batch, -1)

    def add_update(self, update: Update, window: LayerWindow, delta: torch.Tensor, steps: int) -> None:
        d = delta.reshape(-1, delta.shape[-1])
        if window.events is not None:
            window.events.add_outer_sum(update.weight_as(transposed=True), d, alpha=1.0 / steps)
        else:
            update.weight.addmm_(d.t(), window.pre.reshape(d.shape[0], -1), alpha=1.0 / steps)
        update.bias.add_(d.sum(0), alpha=1.0 / steps)

    def zero_eligibility(self, batch: int) -> Eligibility:
        """Zeroed per-example eligibilities [N, C, D] and [N, C] of the output layer."""
        weight, bias = self.params.weight, self.params.bias
        return Eligibility(
            torch.zeros(batch, *weight.shape, dtype=weight.dtype, device=weight.device),
            torch.zeros(batch, *bias.shape, dtype=bias.dtype, device=bias.device),
        )

    def eligibility(self, eligibility: Eligibility, window: LayerWindow, steps: int) -> None:
        """Per example, E[n] += (1/T) sum_t post(t) pre(t)^T: the output layer's update waits for
        its error, which exists when the presentation ends."""
        post = self.post(window)
        eligibility.weight.baddbmm_(post.permute(1, 2, 0), window.pre.transpose(0, 1), alpha=1.0 / steps)
        eligibility.bias.add_(post.sum(0) / steps)

    @staticmethod
    def linear(s: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return F.linear(s, weight, bias)

    @staticmethod
    def parameter_grads(s: torch.Tensor, grad: torch.Tensor, weight_shape: torch.Size) -> tuple[torch.Tensor, ...]:
        return grad.t() @ s, grad.sum(0)

    def differentiable_current(
        self, s: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, send_down: SendDown
    ) -> torch.Tensor:
        return _Current.apply(s.reshape(s.shape[0], -1), weight, bias, self, send_down)

    def carry(self, in_shape: torch.Size) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return lambda delta, M: delta @ M


def max_pool(x: torch.Tensor, pool: int) -> torch.Tensor:
    """Max-pooling of x [..., H, W] over pool x pool windows (rows and columns past the last whole
    window dropped): the largest of each window, as ``F.max_pool2d`` gives, taken as pool - 1
    elementwise maxima down the rows and pool - 1 across the columns (7x faster on the CPU for
    100 x 16 x 34 x 34 spikes). Not differentiable like max-pooling (which sends the gradient to one
    input of each window): backpropagation through time pools with ``F.max_pool2d``."""
    *lead, H, W = x.shape
    h, w = H // pool, W // pool
    rows = x[..., : h * pool, : w * pool].reshape(*lead, h, pool, w * pool)
    down = functools.reduce(torch.maximum, rows.unbind(-2))
    return functools.reduce(torch.maximum, down.reshape(*lead, h, w, pool).unbind(-1))


class ConvLIF(LIFLayer):
    """A convolutional LIF layer: I_k(t) = conv(x_{k-1}(t), W_k) + b_k, LIF neurons on every output
    position, then max-pooling of the spikes (a pooled unit spikes when any of its window does).
    The update is the convolutional form of delta^T pre: the correlation of delta(t) with the input."""

    @property
    def _conv(self) -> tuple[int, int]:
        spec = self.params.spec
        return spec.stride, spec.padding

    def current(self, s: torch.Tensor, events: SpikeEvents | None, run: LayerRun) -> torch.Tensor:
        n, batch = s.shape[:2]
        flat = s.reshape(n * batch, *self.input_shape)
        return self.linear(flat, self.params.weight, self.params.bias).view(n, batch, *self.state_shape)

    def linear(self, s: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        stride, padding = self._conv
        return F.conv2d(s, weight, bias, stride, padding)

    def spikes(self, window: LayerWindow) -> torch.Tensor:
        pool = self.params.spec.pool
        return window.out.spikes if pool <= 1 else max_pool(window.out.spikes, pool)

    def differentiable_spikes(self, spikes: torch.Tensor) -> torch.Tensor:
        pool = self.params.spec.pool
        if pool <= 1:
            return spikes
        lead = spikes.shape[: spikes.dim() - 3]
        pooled = F.max_pool2d(spikes.reshape(-1, *self.state_shape), pool)
        return pooled.view(*lead, *pooled.shape[1:])

    def parameter_grads(
        self, s: torch.Tensor, grad: torch.Tensor, weight_shape: torch.Size
    ) -> tuple[torch.Tensor, ...]:
        stride, padding = self._conv
        return conv2d_weight(s, weight_shape, grad, stride, padding), grad.sum((0, 2, 3))

    def add_update(self, update: Update, window: LayerWindow, delta: torch.Tensor, steps: int) -> None:
        d = delta.reshape(-1, *self.state_shape)
        pre = window.pre.reshape(-1, *self.input_shape)
        grad_w, grad_b = self.parameter_grads(pre, d, self.params.weight.shape)
        update.weight.add_(grad_w, alpha=1.0 / steps)
        update.bias.add_(grad_b, alpha=1.0 / steps)

    def differentiable_current(
        self, s: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, send_down: SendDown
    ) -> torch.Tensor:
        return _Current.apply(s.reshape(s.shape[0], *self.input_shape), weight, bias, self, send_down)

    def carry(self, in_shape: torch.Size) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        stride, padding = self._conv
        return lambda delta, M: conv2d_input(in_shape, M, delta, stride, padding)


SPIKING_LAYERS: dict[str, type[LIFLayer]] = {"dense": DenseLIF, "conv": ConvLIF}
"""The spiking layer class of each layer kind of a network spec."""
