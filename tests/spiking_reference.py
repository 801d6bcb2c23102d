"""An independent reference for the spiking three-factor update: a 2-layer LIF network written out
step by step in float64, with no time windows, no event-driven products and no engine code."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

ThirdFactor = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]


def fast_sigmoid(v: torch.Tensor, theta: float, k: float) -> torch.Tensor:
    return 1.0 / (1.0 + k * (v - theta).abs()) ** 2


def reference_update(
    weights: list[tuple[torch.Tensor, torch.Tensor]],
    spikes_in: torch.Tensor,
    y_star: torch.Tensor,
    m_hidden: ThirdFactor,
    dt: float,
    tau_mem: float,
    theta: float,
    slope: float,
    tau_pre: float = 0.0,
    refractory: int = 0,
    masks: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """[dW1, db1, dW2, db2] of the three-factor rule and the output spike counts, for input spikes
    [T, N, D] into hidden (W1, b1) and output (W2, b2) LIF layers with reset by subtraction.

    dW1 = (1/T) sum_t (m1(t) * psi(v1(t)) * r1(t))^T x0(t), m1(t) = m_hidden(t, counts(t), y*);
    dW2 = sum_n e[n] (1/T) sum_t (psi(v2(t)) * r2(t))^T x1(t), e = (counts / T - y*) / (N C);
    x(t) = gamma x(t-1) + s(t) (gamma = exp(-dt / tau_pre), or x = s), r(t) = 0 while refractory;
    each layer's input multiplied by its dropout mask.
    """
    (W1, b1), (W2, b2) = [(w.detach().double(), b.detach().double()) for w, b in weights]
    T, N = spikes_in.shape[:2]
    s0_all = spikes_in.reshape(T, N, -1).double()
    y = y_star.double()
    alpha = math.exp(-dt / tau_mem)
    gamma = math.exp(-dt / tau_pre) if tau_pre > 0 else 0.0
    v1, v2 = torch.zeros(N, W1.shape[0], dtype=torch.float64), torch.zeros(N, W2.shape[0], dtype=torch.float64)
    ref1, ref2 = torch.zeros_like(v1), torch.zeros_like(v2)
    x0, x1 = torch.zeros(N, W1.shape[1], dtype=torch.float64), torch.zeros(N, W2.shape[1], dtype=torch.float64)
    g1, gb1 = torch.zeros_like(W1), torch.zeros_like(b1)
    E, Eb = torch.zeros(N, *W2.shape, dtype=torch.float64), torch.zeros(N, W2.shape[0], dtype=torch.float64)
    counts = torch.zeros_like(v2)
    for t in range(T):
        s0 = s0_all[t] if masks[0] is None else s0_all[t] * masks[0].double()
        x0 = gamma * x0 + s0 if gamma else s0
        r1 = (ref1 == 0).double()
        v1 = (alpha * v1 + (1 - alpha) * (s0 @ W1.T + b1)) * r1
        s1 = (v1 >= theta).double()
        psi1 = fast_sigmoid(v1, theta, slope) * r1
        v1 = v1 - theta * s1
        ref1 = torch.where(s1 > 0, float(refractory), (ref1 - 1).clamp(min=0))
        h = s1 if masks[1] is None else s1 * masks[1].double()
        x1 = gamma * x1 + h if gamma else h
        r2 = (ref2 == 0).double()
        v2 = (alpha * v2 + (1 - alpha) * (h @ W2.T + b2)) * r2
        s2 = (v2 >= theta).double()
        psi2 = fast_sigmoid(v2, theta, slope) * r2
        v2 = v2 - theta * s2
        ref2 = torch.where(s2 > 0, float(refractory), (ref2 - 1).clamp(min=0))
        counts = counts + s2
        d1 = m_hidden(t, counts, y) * psi1
        g1 += d1.T @ x0 / T
        gb1 += d1.sum(0) / T
        E += torch.einsum("nc,nd->ncd", psi2, x1) / T
        Eb += psi2 / T
    e = (counts / T - y) / y.numel()
    return [g1, gb1, torch.einsum("nc,ncd->cd", e, E), (e * Eb).sum(0)], counts
