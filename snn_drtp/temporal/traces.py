"""Eligibility traces: for every synapse ji of a layer, e_ji(t) = dz_j(t)/dW_ji along the paths that
stay inside neuron j (its membrane, its adaptation, its reset), computed forward in time with
memory that does not depend on T (Bellec et al. 2020, eq. 13; OSTL, Bohnstingl et al. 2022).

A layer's synapses are W (pre-synaptic x_i(t)), R (z_l(t-1)) and b (1), concatenated along the
pre-synaptic axis into p(t) of P = I + N + 1 entries. With the cell of ``cells.py``:

    eps_v(t) = alpha (eps_v(t-1) - r e(t-1)) + p(t)                   dv_j(t)/dW_ji
    eps_a(t) = rho eps_a(t-1) + e(t-1)                                 da_j(t)/dW_ji (ALIF)
    e(t)     = psi_j(t) (eps_v(t) - beta eps_a(t))                     dz_j(t)/dW_ji

(r = theta when the reset is kept in the derivatives, 0 when detached). Without reset term and
adaptation, eps_v(t) = pbar(t) = alpha pbar(t-1) + p(t) is the same for every neuron
j: the trace is factorised, e_ji(t) = psi_j(t) pbar_i(t), and is kept as two vectors. e-prop also
folds the readout's leak into the trace: ebar(t) = kappa ebar(t-1) + e(t).
The ``INSTANT`` eligibility keeps only the present step: psi_j(t) p_i(t).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snn_drtp.rules import Eligibility
from snn_drtp.temporal.cells import Cell


@dataclass
class Factorised:
    """e_ji = post_j pre_i for every example: post [B, N], pre [B, P]."""

    post: torch.Tensor
    pre: torch.Tensor

    def full(self) -> torch.Tensor:
        return self.post.unsqueeze(2) * self.pre.unsqueeze(1)

    def weighted_sum(self, signal: torch.Tensor) -> torch.Tensor:
        """sum_b L_bj e_bji = (L * post)^T pre: [N, P]."""
        return (signal * self.post).T @ self.pre


@dataclass
class Full:
    """e_bji for every example, synapse by synapse: [B, N, P]."""

    e: torch.Tensor

    def full(self) -> torch.Tensor:
        return self.e

    def weighted_sum(self, signal: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bj,bjp->jp", signal, self.e)


class Trace:
    """One layer's eligibility, stepped forward once per time step (:meth:`step`)."""

    def __init__(self, cell: Cell, kind: Eligibility, kappa: float, batch: int, units: int, pre: int):
        self.cell, self.kind, self.kappa = cell, kind, kappa
        self.shape = (batch, units, pre)
        self.factorised = cell.reset_in_derivative == 0.0 and not cell.adaptive
        self.pbar: torch.Tensor | None = None
        self.eps_v: torch.Tensor | None = None
        self.eps_a: torch.Tensor | None = None
        self.e: torch.Tensor | None = None
        self.ebar: torch.Tensor | None = None

    def step(self, pre: torch.Tensor, psi: torch.Tensor) -> Factorised | Full:
        """The eligibility at step t from p(t) [B, P] and psi(t) [B, N]: e(t) (``TRACE``), ebar(t)
        (``FILTERED``) or the present step's psi p (``INSTANT``). ebar is updated in place: a
        caller that keeps it past the next step copies it."""
        cell = self.cell
        if self.kind is Eligibility.INSTANT:
            return Factorised(psi, pre)
        if self.factorised:
            pbar = pre if self.pbar is None else cell.alpha * self.pbar + pre
            self.pbar = pbar
            trace: Factorised | Full = Factorised(psi, pbar)
        else:
            fresh = pre.unsqueeze(1).expand(self.shape)
            if self.eps_v is None or self.e is None:
                eps_v = fresh.clone()
                eps_a = torch.zeros(self.shape, dtype=pre.dtype, device=pre.device) if cell.adaptive else None
            else:
                eps_v = cell.alpha * (self.eps_v - cell.reset_in_derivative * self.e) + fresh
                eps_a = cell.rho * self.eps_a + self.e if self.eps_a is not None else None
            self.eps_v, self.eps_a = eps_v, eps_a
            inside = eps_v - cell.beta * eps_a if eps_a is not None else eps_v
            self.e = psi.unsqueeze(2) * inside
            trace = Full(self.e)
        if self.kind is Eligibility.TRACE:
            return trace
        if self.ebar is None:
            self.ebar = torch.zeros(self.shape, dtype=pre.dtype, device=pre.device)
        if isinstance(trace, Factorised):  # ebar = kappa ebar + post pre^T, in place, no temporary
            self.ebar.mul_(self.kappa).addcmul_(trace.post.unsqueeze(2), trace.pre.unsqueeze(1))
        else:
            self.ebar.mul_(self.kappa).add_(trace.e)
        return Full(self.ebar)
