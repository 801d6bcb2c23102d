"""Event-driven products with sparse spike (or event-count) matrices: work proportional to the
number of non-zero entries, not to the matrix size. Both products are sums of rows selected by
the events, weighted by the entries' values when they are not all 1, computed with
``embedding_bag`` (a gather-and-sum kernel)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class SpikeEvents:
    """The events (r, j, value) of a sparse matrix S [R, D], listed once and used for both the
    input current and the weight update of the layer S feeds."""

    def __init__(self, spikes: torch.Tensor):
        self.n_rows, self.n_cols = spikes.shape
        self.rows, self.cols = spikes.nonzero(as_tuple=True)
        values = spikes[self.rows, self.cols]
        self.values = None if bool((values == 1).all()) else values

    def matmul(self, weight: torch.Tensor) -> torch.Tensor:
        """I = S W^T for W [N, D]: row r of I is sum_{j: S[r, j] != 0} S[r, j] W[:, j]."""
        offsets = torch.searchsorted(self.rows, torch.arange(self.n_rows, device=self.rows.device))
        return F.embedding_bag(self.cols, weight.t().contiguous(), offsets, mode="sum", per_sample_weights=self.values)

    def outer_sum(self, delta: torch.Tensor) -> torch.Tensor:
        """G = delta^T S for delta [R, N]: column j of G is sum_{r: S[r, j] != 0} S[r, j] delta[r]."""
        cols, order = torch.sort(self.cols, stable=True)
        offsets = torch.searchsorted(cols, torch.arange(self.n_cols, device=cols.device))
        weights = None if self.values is None else self.values[order]
        return F.embedding_bag(self.rows[order], delta, offsets, mode="sum", per_sample_weights=weights).t()
