"""Spike encoders for static data; each returns a time-first tensor [T, *x.shape] of 0/1 spikes
and draws any randomness from the generator it is given. ``snn_drtp.spiking.inputs`` applies them
window by window."""

from __future__ import annotations

import torch

ENCODERS = ("rate", "latency")


def rate(x: torch.Tensor, steps: int, generator: torch.Generator | None = None, gain: float = 1.0) -> torch.Tensor:
    """Bernoulli rate code: s[t] ~ Bernoulli(clamp(gain x, 0, 1)) independently at every step."""
    p = (x * gain).clamp(0.0, 1.0)
    return (torch.rand((steps, *x.shape), generator=generator, dtype=x.dtype, device=x.device) < p).to(x.dtype)


def latency(
    x: torch.Tensor, steps: int, tau: float = 5.0, threshold: float = 0.01, start: int = 0, count: int | None = None
) -> torch.Tensor:
    """Time-to-first-spike code: one spike at t = round(tau ln(x / (x - threshold))) for
    x > threshold (an RC circuit charged by x reaching the threshold), none otherwise; strong
    inputs fire first. Times past the window are clipped to its last step. ``start`` and
    ``count`` return only steps [start, start + count) of the window."""
    count = steps - start if count is None else count
    fires = x > threshold
    t = tau * torch.log(x.clamp(min=threshold * (1 + 1e-6)) / (x - threshold).clamp(min=1e-12))
    t = t.round().clamp(0, steps - 1)
    window = torch.arange(start, start + count, dtype=x.dtype, device=x.device).view(-1, *([1] * x.dim()))
    return ((t.unsqueeze(0) == window) & fires.unsqueeze(0)).to(x.dtype)


def delta(x: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """Delta modulation of a sequence x [T, ...]: a spike where x[t] - x[t-1] >= threshold
    (x[-1] = 0). Off-changes are not signalled (use -x for them)."""
    previous = torch.cat([torch.zeros_like(x[:1]), x[:-1]])
    return ((x - previous) >= threshold).to(x.dtype)
