"""Random-manifold spike patterns (after Zenke & Vogels 2021, Neural Computation 33:899, "randman"):
a temporal classification task generated here, seeded, offline.

Each class c is a smooth random manifold of dimension D in the space of the C channels' spike
times. A point x in [0, 1]^D of class c gives channel u the value

    g_cu(x) = sum_{d=1}^{D} sum_{k=1}^{F} a_cudk k^(-alpha) sin(2 pi (k x_d + phi_cudk)),

a_cudk uniform in [-1, 1], phi_cudk in [0, 1), F = 5 frequencies; the smoothness alpha damps the
higher ones. g_cu is rescaled to [0, 1] by its range over 256 reference points of the class
(clipped outside), and channel u fires once, at step round(g_cu(x) (T - 1)). Samples draw x
uniformly: the classes differ only in how their channels' spike times vary together, so the task
needs the timing of the spikes, not their counts (every channel fires exactly once).

The name ``randman`` takes the defaults; ``randman:classes=10,channels=50,dim=1,smoothness=1,
samples=500,seed=0`` sets them (samples per class, 20 % of them the test split).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from snn_drtp.data.names import name_parameters
from snn_drtp.data.tensors import TensorData

FREQUENCIES = 5
REFERENCE_POINTS = 256


@dataclass(frozen=True)
class RandmanParams:
    """classes, channels, manifold dimension D, smoothness alpha, samples per class, seed."""

    classes: int = 10
    channels: int = 50
    dim: int = 1
    smoothness: float = 1.0
    samples: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("classes", "channels", "dim", "samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"randman: {name} must be >= 1, got {getattr(self, name)}")
        if self.classes < 2:
            raise ValueError(f"randman: classes must be >= 2, got {self.classes}")
        if self.samples < 5:
            raise ValueError(f"randman: samples (per class) must be >= 5 for a test split, got {self.samples}")
        if not (math.isfinite(self.smoothness) and self.smoothness >= 0):
            raise ValueError(f"randman: smoothness must be a finite number >= 0, got {self.smoothness}")

    @classmethod
    def from_name(cls, name: str) -> RandmanParams:
        """``randman`` or ``randman:key=value,...`` (keys: the fields)."""
        fields = {"classes": int, "channels": int, "dim": int, "smoothness": float, "samples": int, "seed": int}
        values = name_parameters(name, fields, "randman:classes=10,channels=50,dim=1,smoothness=1,samples=500,seed=0")
        return cls(**values)  # type: ignore[arg-type]


def is_randman(name: str) -> bool:
    return name == "randman" or name.startswith("randman:")


def _manifolds(p: RandmanParams, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """a_cudk k^(-alpha) [c, u, d, k] and phi_cudk, drawn in that order."""
    shape = (p.classes, p.channels, p.dim, FREQUENCIES)
    k = torch.arange(1, FREQUENCIES + 1, dtype=torch.float64)
    amplitude = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * k.pow(-p.smoothness)
    phase = torch.rand(shape, generator=gen, dtype=torch.float64)
    return amplitude, phase


def _values(amplitude: torch.Tensor, phase: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """g_cu(x) for points [c, n, d] of each class: [c, n, u]."""
    k = torch.arange(1, FREQUENCIES + 1, dtype=torch.float64)
    angle = 2 * math.pi * (points[:, :, None, :, None] * k + phase[:, None])  # [c, n, u, d, k]
    return (amplitude[:, None] * torch.sin(angle)).sum(dim=(3, 4))


def spike_times(p: RandmanParams) -> tuple[torch.Tensor, torch.Tensor]:
    """(times in [0, 1] [classes * samples, channels], labels), class by class."""
    gen = torch.Generator().manual_seed(p.seed)
    amplitude, phase = _manifolds(p, gen)
    reference = _values(
        amplitude, phase, torch.rand(p.classes, REFERENCE_POINTS, p.dim, generator=gen, dtype=torch.float64)
    )
    low, high = reference.amin(1, keepdim=True), reference.amax(1, keepdim=True)
    points = torch.rand(p.classes, p.samples, p.dim, generator=gen, dtype=torch.float64)
    times = ((_values(amplitude, phase, points) - low) / (high - low).clamp(min=1e-12)).clamp(0.0, 1.0)
    labels = torch.arange(p.classes).repeat_interleave(p.samples)
    return times.reshape(-1, p.channels), labels


def randman(name: str, steps: int) -> tuple[TensorData, TensorData]:
    """(train, test) of the task ``name`` as time-first spikes [N, T, channels] (uint8), one spike per
    channel and example; the test split is the last 20 % of each class's samples."""
    p = RandmanParams.from_name(name)
    if steps < 2:
        raise ValueError(f"randman needs at least 2 steps (T), got {steps}; e.g. --steps 50")
    times, labels = spike_times(p)
    bins = torch.round(times * (steps - 1)).long()
    spikes = torch.zeros(len(labels), steps, p.channels, dtype=torch.uint8)
    spikes.scatter_(1, bins.unsqueeze(1), 1)
    n_test = max(1, p.samples // 5)
    is_test = (torch.arange(len(labels)) % p.samples) >= p.samples - n_test
    split = [(~is_test).nonzero().squeeze(1), is_test.nonzero().squeeze(1)]
    return tuple(  # type: ignore[return-value]
        TensorData(spikes[i], labels[i], p.classes, layout="time_first") for i in split
    )
