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
