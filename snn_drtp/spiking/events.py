"""Event-driven products with sparse spike (or event-count) matrices: work proportional to the
number of non-zero entries, not to the matrix size. Both products are sums of rows selected by
the events, weighted by the entries' values when they are not all 1, computed with
``embedding_bag`` (a gather-and-sum kernel).

The spiking layers use them on the CPU only: on a GPU, listing the events would make the host
wait for the device every window, while the dense product is one kernel (``benchmarks/gpu.py``
measures both engines' products there). The gathered table is cut into column blocks that fit
in the core's cache (:data:`CPU_BLOCK_BYTES`): each block is one ``embedding_bag`` over the same events, whose rows
then stay in cache from one event to the next. Every entry is still the sum of the same terms in
the same order, so the result is the same to the bit (1.6x faster for 784 x 1,000 weights and
rate-coded MNIST on this project's 2-core test machine; ``benchmarks/results/profile.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

CPU_BLOCK_BYTES = 512 * 1024
"""The size aimed at for a column block of a gathered table: half of a 1 MiB L2 cache."""
CPU_BLOCK_COLUMNS = (64, 128)
"""The fewest and most columns of a block (a row slice of 256-512 bytes per event; the widths
measured fastest for rate-coded MNIST into 1,000 units)."""


def block_width(rows: int, cols: int, element_size: int) -> int:
    """Columns per block of a [rows, cols] table: as many as fit in :data:`CPU_BLOCK_BYTES`, within
    :data:`CPU_BLOCK_COLUMNS`, and at most all of them."""
    low, high = CPU_BLOCK_COLUMNS
    return min(cols, max(low, min(high, CPU_BLOCK_BYTES // (rows * element_size))))


def column_blocks(table: torch.Tensor) -> list[torch.Tensor]:
    """A table [R, C] as contiguous column blocks [R, c] (see :func:`block_width`)."""
    width = block_width(table.shape[0], table.shape[1], table.element_size())
    if width == table.shape[1]:
        return [table.contiguous()]
    return [block.contiguous() for block in table.split(width, dim=1)]


def gather_sum(
    indices: torch.Tensor,
    blocks: Sequence[torch.Tensor],
    offsets: torch.Tensor,
    weights: torch.Tensor | None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """out[b] = sum_{e in bag b} weights[e] table[indices[e]] (+ bias), the table given as column
    blocks; bag b holds events offsets[b] ... offsets[b + 1] - 1."""
    parts = (F.embedding_bag(indices, block, offsets, mode="sum", per_sample_weights=weights) for block in blocks)
    if len(blocks) == 1:
        out = next(parts)
        return out if bias is None else out.add_(bias)
    table = blocks[0]
    out = torch.empty(offsets.shape[0], sum(block.shape[1] for block in blocks), dtype=table.dtype, device=table.device)
    start = 0
    for part in parts:
        width = part.shape[1]
        if bias is None:
            out[:, start : start + width].copy_(part)
        else:
            torch.add(part, bias[start : start + width], out=out[:, start : start + width])
        start += width
    return out


def sort_key_dtype(n: int) -> torch.dtype:
    """The narrowest integer type that holds 0 ... n - 1 (a stable sort of int16 keys runs ~3x
    faster than of int64 ones, with the same order)."""
    return torch.int16 if n <= 2**15 else torch.int32 if n <= 2**31 else torch.int64


class SpikeEvents:
    """The events (r, j, value) of a sparse matrix S [R, D], listed once and used for both the
    input current and the weight update of the layer S feeds. ``nonzero`` is S != 0 when the
    caller has it already (to measure the density)."""

    def __init__(self, spikes: torch.Tensor, nonzero: torch.Tensor | None = None):
        self.n_rows, self.n_cols = spikes.shape
        mask = spikes != 0 if nonzero is None else nonzero
        self.rows, self.cols = mask.nonzero(as_tuple=True)
        values = spikes.reshape(-1).index_select(0, self.rows * self.n_cols + self.cols)
        self.values = None if bool((values == 1).all()) else values

    def matmul(self, weight_t: Sequence[torch.Tensor], bias: torch.Tensor | None = None) -> torch.Tensor:
        """I = S W^T (+ b) for W [N, D] given as the column blocks of W^T [D, N]
        (:func:`column_blocks`): row r of I is sum_{j: S[r, j] != 0} S[r, j] W[:, j]."""
        offsets = torch.searchsorted(self.rows, torch.arange(self.n_rows, device=self.rows.device))
        return gather_sum(self.cols, weight_t, offsets, self.values, bias)

    def add_outer_sum(self, out_t: torch.Tensor, delta: torch.Tensor, alpha: float = 1.0) -> None:
        """out_t += alpha G^T, G = delta^T S for delta [R, N], into out_t [D, N]: row j of G^T is
        sum_{r: S[r, j] != 0} S[r, j] delta[r], added block by block of delta's columns."""
        cols, order = torch.sort(self.cols.to(sort_key_dtype(self.n_cols)), stable=True)
        offsets = torch.searchsorted(cols, torch.arange(self.n_cols, dtype=cols.dtype, device=cols.device))
        weights = None if self.values is None else self.values.index_select(0, order)
        rows = self.rows.index_select(0, order)
        start = 0
        for block in column_blocks(delta):
            part = F.embedding_bag(rows, block, offsets, mode="sum", per_sample_weights=weights)
            out_t[:, start : start + part.shape[1]].add_(part, alpha=alpha)
            start += part.shape[1]
