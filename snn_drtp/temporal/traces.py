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

e-prop's update sum_t L(t) ebar(t) with a factorised trace is computed a chunk of K steps at a
time (:class:`FilteredChunks`), exactly, with GEMMs instead of K passes over the [B, N, P] ebar.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snn_drtp.rules import Eligibility
from snn_drtp.temporal.cells import Cell


def accumulate(total: torch.Tensor | None, part: torch.Tensor) -> torch.Tensor:
    """total + part, in place once there is a total (``part`` is a fresh tensor)."""
    return part if total is None else total.add_(part)


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


class FilteredChunks:
    """e-prop's filtered factorised trace, ebar_bji(t) = kappa ebar_bji(t-1) + psi_bj(t) pbar_bi(t),
    and its update U_ji = sum_t sum_b L_bj(t) ebar_bji(t), a chunk of K steps at a time. With E_0
    the ebar before a chunk and s = 1..K its steps,

        U      += sum_b A_bj E_0,bji + sum_{s,b} psi_bj(s) Lt_bj(s) pbar_bi(s)
        E_K     = kappa^K E_0 + sum_s kappa^(K-s) psi(s) pbar(s)^T       (per example)

    with A = sum_s kappa^s L(s) and Lt(s) = L(s) + kappa Lt(s+1), Lt(K) = L(K): the same sums,
    regrouped. Memory: E_0 [B, N, P] and the chunk's psi, pbar and L, K [B, N + P + N], whatever T."""

    def __init__(self, kappa: float, shape: tuple[int, int, int], chunk: int):
        self.kappa, self.shape, self.chunk = kappa, shape, chunk
        self.ebar: torch.Tensor | None = None
        self.update: torch.Tensor | None = None
        self.psi: list[torch.Tensor] = []
        self.pbar: list[torch.Tensor] = []
        self.signal: list[torch.Tensor | None] = []

    def step(self, psi: torch.Tensor, pbar: torch.Tensor) -> None:
        if len(self.psi) == self.chunk:
            self.flush()
        self.psi.append(psi)
        self.pbar.append(pbar)
        self.signal.append(None)

    def learn(self, signal: torch.Tensor) -> None:
        """L(t) [B, N] of the latest step (a step without one has L = 0; signals given twice in a
        step add up). When that step is already folded into ebar (:meth:`flush` after it),
        U += sum_b L_bj(t) ebar_bji(t) at once."""
        if self.signal:
            previous = self.signal[-1]
            self.signal[-1] = signal if previous is None else previous + signal  # not in place: the caller's
            return
        assert self.ebar is not None  # a step was taken and folded
        self.update = accumulate(self.update, Full(self.ebar).weighted_sum(signal))

    def flush(self) -> None:
        """Fold the buffered steps into U and E_0."""
        if not self.psi:
            return
        K, kappa = len(self.psi), self.kappa
        psi, pbar = torch.stack(self.psi), torch.stack(self.pbar)  # [K, B, N], [K, B, P]
        if any(signal is not None for signal in self.signal):
            L = torch.stack([torch.zeros_like(psi[0]) if s is None else s for s in self.signal])
            Lt = L.clone()
            for s in range(K - 2, -1, -1):
                Lt[s] += kappa * Lt[s + 1]
            self.update = accumulate(self.update, (psi * Lt).flatten(0, 1).T @ pbar.flatten(0, 1))
            if self.ebar is not None:
                powers = kappa ** torch.arange(1, K + 1, dtype=psi.dtype, device=psi.device)
                A = torch.einsum("s,sbj->bj", powers, L)
                self.update.add_(Full(self.ebar).weighted_sum(A))
        decay = kappa ** torch.arange(K - 1, -1, -1, dtype=psi.dtype, device=psi.device)
        weighted = (psi * decay[:, None, None]).permute(1, 2, 0)  # [B, N, K]
        if self.ebar is None:
            self.ebar = torch.bmm(weighted, pbar.transpose(0, 1))
        else:
            self.ebar.mul_(kappa**K).baddbmm_(weighted, pbar.transpose(0, 1))
        self.psi, self.pbar, self.signal = [], [], []


class Trace:
    """One layer's eligibility, stepped forward once per time step (:meth:`step`), and the update
    sum_t sum_b L_bj(t) elig_bji(t) it accumulates (:meth:`learn`, :meth:`total`). ``chunk``: the
    steps e-prop's filtered factorised trace buffers (:class:`FilteredChunks`); 1 materialises
    ebar(t) at every step (:meth:`current`)."""

    def __init__(
        self,
        cell: Cell,
        kind: Eligibility,
        kappa: float,
        shape: tuple[int, int, int],
        like: torch.Tensor,
        chunk: int = 1,
    ):
        self.cell, self.kind, self.kappa = cell, kind, kappa
        self.shape = shape  # [B, N, P]
        self.like = like
        self.factorised = cell.reset_in_derivative == 0.0 and not cell.adaptive
        self.pbar: torch.Tensor | None = None
        self.eps_v: torch.Tensor | None = None
        self.eps_a: torch.Tensor | None = None
        self.e: torch.Tensor | None = None
        self.ebar: torch.Tensor | None = None
        chunked = kind is Eligibility.FILTERED and self.factorised
        self.chunks = FilteredChunks(kappa, self.shape, chunk) if chunked else None
        self.eligibility: Factorised | Full | None = None
        self.update: torch.Tensor | None = None

    def step(self, pre: torch.Tensor, psi: torch.Tensor) -> None:
        """Advance to step t with p(t) [B, P] and psi(t) [B, N]: e(t) (``TRACE``), ebar(t)
        (``FILTERED``) or the present step's psi p (``INSTANT``)."""
        cell = self.cell
        if self.kind is Eligibility.INSTANT:
            self.eligibility = Factorised(psi, pre)
            return
        if self.factorised:
            pbar = pre if self.pbar is None else cell.alpha * self.pbar + pre
            self.pbar = pbar
            if self.chunks is not None:
                self.chunks.step(psi, pbar)
                return
            self.eligibility = Factorised(psi, pbar)
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
            e = psi.unsqueeze(2) * inside
            self.e = e
            self.eligibility = Full(e)
            if self.kind is Eligibility.FILTERED:  # ebar = kappa ebar + e, in place
                self.ebar = e.clone() if self.ebar is None else self.ebar.mul_(self.kappa).add_(e)
                self.eligibility = Full(self.ebar)

    def learn(self, signal: torch.Tensor) -> None:
        """Add sum_b L_bj(t) elig_bji(t) for the present step's L(t) [B, N]."""
        if self.chunks is not None:
            self.chunks.learn(signal)
            return
        assert self.eligibility is not None  # step() comes first
        self.update = accumulate(self.update, self.eligibility.weighted_sum(signal))

    def current(self) -> torch.Tensor:
        """The present step's eligibility [B, N, P] (ebar(t) is materialised chunk by chunk)."""
        if self.chunks is not None:
            self.chunks.flush()
            assert self.chunks.ebar is not None
            return self.chunks.ebar
        assert self.eligibility is not None
        return self.eligibility.full()

    def total(self) -> torch.Tensor:
        """The update accumulated over every step so far, [N, P]."""
        if self.chunks is not None:
            self.chunks.flush()
            update = self.chunks.update
        else:
            update = self.update
        if update is None:  # no step carried a learning signal
            return torch.zeros(self.shape[1:], dtype=self.like.dtype, device=self.like.device)
        return update
