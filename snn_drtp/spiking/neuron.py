"""Leaky integrate-and-fire (LIF) dynamics, batched, time-first.

For a drive I(t) held constant over a step of length dt, the membrane equation
tau_mem dv/dt = -v + I integrates exactly to

    v[t] = alpha v[t-1] + (1 - alpha) I[t],        alpha = exp(-dt / tau_mem),

so a constant drive I settles at v = I and a neuron fires when v[t] >= theta. With a synaptic
current (tau_syn > 0) the input first charges i[t] = beta i[t-1] + x[t], beta = exp(-dt / tau_syn),
and i[t] is the drive. After a spike the membrane is reset by subtraction (v -= theta) or to zero,
and for ``refractory`` steps it stays at zero and ignores its input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

Reset = Literal["subtract", "zero"]


@dataclass(frozen=True)
class LIFParams:
    """Neuron parameters; times in seconds, ``refractory`` in steps."""

    dt: float = 1e-3
    tau_mem: float = 20e-3
    tau_syn: float = 0.0
    threshold: float = 1.0
    reset: Reset = "subtract"
    refractory: int = 0

    def __post_init__(self) -> None:
        if self.dt <= 0 or self.tau_mem <= 0:
            raise ValueError(f"dt and tau_mem must be > 0, got dt={self.dt}, tau_mem={self.tau_mem}")
        if self.tau_syn < 0 or self.refractory < 0 or self.threshold <= 0:
            raise ValueError("tau_syn and refractory must be >= 0 and threshold > 0")
        if self.reset not in ("subtract", "zero"):
            raise ValueError(f"reset must be 'subtract' or 'zero', got {self.reset!r}")

    @property
    def alpha(self) -> float:
        return math.exp(-self.dt / self.tau_mem)

    @property
    def beta(self) -> float:
        return math.exp(-self.dt / self.tau_syn) if self.tau_syn > 0 else 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LIFParams:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown neuron parameters {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


@dataclass
class LIFState:
    """Membrane potential v, synaptic current i (tau_syn > 0) and refractory countdown."""

    v: torch.Tensor
    i: torch.Tensor | None = None
    refractory: torch.Tensor | None = None

    @classmethod
    def zeros(cls, shape: tuple[int, ...], params: LIFParams, dtype: torch.dtype = torch.float32) -> LIFState:
        return cls(
            v=torch.zeros(shape, dtype=dtype),
            i=torch.zeros(shape, dtype=dtype) if params.tau_syn > 0 else None,
            refractory=torch.zeros(shape, dtype=torch.int32) if params.refractory > 0 else None,
        )


def heaviside(v: torch.Tensor, threshold: float) -> torch.Tensor:
    """s = H(v - theta)."""
    return (v >= threshold).to(v.dtype)


def lif_step(
    x: torch.Tensor,
    state: LIFState,
    params: LIFParams,
    spike_fn: Callable[[torch.Tensor, float], torch.Tensor] = heaviside,
) -> tuple[torch.Tensor, torch.Tensor, LIFState]:
    """One step: input x[t] -> (spikes s[t], membrane v[t] before reset, new state).

    ``spike_fn`` makes the spikes; BPTT passes a Heaviside with a surrogate gradient, so the
    same dynamics serve the three-factor rule and backpropagation through time.
    """
    drive = x
    i = None
    if state.i is not None:
        i = params.beta * state.i + x
        drive = i
    v = params.alpha * state.v + (1.0 - params.alpha) * drive
    ref = state.refractory
    if ref is not None:
        v = torch.where(ref > 0, torch.zeros_like(v), v)
    spikes = spike_fn(v, params.threshold)
    v_after = v - spikes * params.threshold if params.reset == "subtract" else v * (1.0 - spikes)
    if ref is not None:
        ref = torch.where(spikes > 0, torch.full_like(ref, params.refractory), (ref - 1).clamp_(min=0))
    return spikes, v, LIFState(v_after, i, ref)


def lif_scan(x: torch.Tensor, state: LIFState, params: LIFParams) -> tuple[torch.Tensor, torch.Tensor, LIFState]:
    """Run :func:`lif_step` over the first (time) axis of x [T, B, N]: returns spikes and pre-reset
    membrane potentials, both [T, B, N], and the final state (to continue with the next window)."""
    spikes = torch.empty_like(x)
    v = torch.empty_like(x)
    for t in range(x.shape[0]):
        spikes[t], v[t], state = lif_step(x[t], state, params)
    return spikes, v, state


class LIF(nn.Module):
    """Module wrapper: ``LIF(params)(x)`` for x [T, B, N] returns the spikes [T, B, N]; the last
    window's membrane potentials and final state stay readable as ``.v`` and ``.state``."""

    def __init__(self, params: LIFParams | None = None):
        super().__init__()
        self.params = params or LIFParams()
        self.state: LIFState | None = None
        self.v: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, state: LIFState | None = None) -> torch.Tensor:
        if state is None:
            state = LIFState.zeros(tuple(x.shape[1:]), self.params, x.dtype)
        spikes, self.v, self.state = lif_scan(x, state, self.params)
        return spikes
