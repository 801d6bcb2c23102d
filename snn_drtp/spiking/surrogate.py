"""Surrogate derivatives psi(v) of the spike nonlinearity, the ``post`` factor of the spiking
three-factor rule (and the pseudo-derivative of BPTT). All peak at psi(theta) = 1."""

from __future__ import annotations

from collections.abc import Callable

import torch

Surrogate = Callable[[torch.Tensor, float, float], torch.Tensor]


def fast_sigmoid(v: torch.Tensor, threshold: float, slope: float) -> torch.Tensor:
    """SuperSpike (Zenke & Ganguli 2018): psi(v) = 1 / (1 + slope |v - theta|)^2."""
    a = v - threshold
    return a.abs_().mul_(slope).add_(1.0).square_().reciprocal_()


def triangle(v: torch.Tensor, threshold: float, slope: float) -> torch.Tensor:
    """Piecewise linear (Bellec et al. 2018): psi(v) = max(0, 1 - slope |v - theta|)."""
    a = v - threshold
    return a.abs_().mul_(-slope).add_(1.0).clamp_(min=0.0)


SURROGATES: dict[str, Surrogate] = {"fast_sigmoid": fast_sigmoid, "triangle": triangle}

SURROGATE_EXPRESSIONS: dict[str, str] = {
    "fast_sigmoid": "1 / (1 + slope * abs(v - theta))**2",
    "triangle": "clip(1 - slope * abs(v - theta), 0, 1)",
}
"""The same psi(v) as equation strings (Brian2's syntax, with ``theta`` and ``slope`` constants)."""


def get_surrogate(name: str) -> Surrogate:
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {', '.join(SURROGATES)}")
    return SURROGATES[name]


class SpikeFunction(torch.autograd.Function):
    """Heaviside step s = H(v - theta) forward, psi(v) backward (for the BPTT baseline)."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, threshold: float, slope: float, surrogate: str) -> torch.Tensor:
        ctx.save_for_backward(v)
        ctx.args = (threshold, slope, surrogate)
        return (v >= threshold).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        (v,) = ctx.saved_tensors
        threshold, slope, surrogate = ctx.args
        return grad * get_surrogate(surrogate)(v, threshold, slope), None, None, None
