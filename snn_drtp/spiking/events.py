"""Event-driven products with binary spike matrices: work proportional to the number of spikes,
not to the matrix size. Both are sums of weight rows selected by spike events, computed with
``embedding_bag`` (a gather-and-sum kernel)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _bags(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row and column indices of the nonzeros of a 2-D mask (row-major) and each row's offset."""
    rows, cols = mask.nonzero(as_tuple=True)
    offsets = torch.searchsorted(rows, torch.arange(mask.shape[0]))
    return rows, cols, offsets


def spike_matmul(spikes: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """I = S W^T for binary S [R, D] and W [N, D]: row r of I is sum_{j: S[r, j] = 1} W[:, j]."""
    _, cols, offsets = _bags(spikes)
    return F.embedding_bag(cols, weight.t().contiguous(), offsets, mode="sum")


def spike_outer_sum(delta: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
    """G = delta^T S for delta [R, N] and binary S [R, D]: column j of G is the sum of delta's
    rows at the events of input j, sum_{r: S[r, j] = 1} delta[r]."""
    _, rows, offsets = _bags(spikes.t().contiguous())
    return F.embedding_bag(rows, delta, offsets, mode="sum").t()
