"""Measures shared by engines, training and validation."""

from __future__ import annotations

import math

import torch


def angle_degrees(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle between two signals seen as flat vectors, arccos(<a, b> / (|a| |b|)), in degrees; NaN
    when either is zero."""
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return float("nan")
    cos = torch.clamp(torch.dot(a, b) / (na * nb), -1.0, 1.0)
    return math.degrees(math.acos(float(cos)))


def figure_of_merit(per_epoch: list[float]) -> float:
    """A run's figure of merit: the mean of its per-epoch values (test error or test loss) over the
    last k = max(1, min(10, n // 10)) of its n epochs; the paper's last 10 epochs for 100 epochs, the
    final epoch for runs shorter than 20 epochs, never an average reaching back to the first ones."""
    if not per_epoch:
        raise ValueError("a run with no finished epoch has no figure of merit")
    k = max(1, min(10, len(per_epoch) // 10))
    return math.fsum(per_epoch[-k:]) / k
