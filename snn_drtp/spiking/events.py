"""Event-driven products with binary spike matrices: work proportional to the number of spikes,
not to the matrix size. Both are sums of rows selected by spike events, computed with
``embedding_bag`` (a gather-and-sum kernel)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class SpikeEvents:
    """The events (r, j) of a binary spike matrix S [R, D], listed once and used for both the
    input current and the weight update of the layer S feeds."""

    def __init__(self, spikes: torch.Tensor):
        self.n_rows, self.n_cols = spikes.shape
        self.rows, self.cols = spikes.nonzero(as_tuple=True)

    def matmul(self, weight: torch.Tensor) -> torch.Tensor:
        """I = S W^T for W [N, D]: row r of I is sum_{j: S[r, j] = 1} W[:, j]."""
        offsets = torch.searchsorted(self.rows, torch.arange(self.n_rows))
        return F.embedding_bag(self.cols, weight.t().contiguous(), offsets, mode="sum")

    def outer_sum(self, delta: torch.Tensor) -> torch.Tensor:
        """G = delta^T S for delta [R, N]: column j of G is sum_{r: S[r, j] = 1} delta[r]."""
        cols, order = torch.sort(self.cols, stable=True)
        offsets = torch.searchsorted(cols, torch.arange(self.n_cols))
        return F.embedding_bag(self.rows[order], delta, offsets, mode="sum").t()
