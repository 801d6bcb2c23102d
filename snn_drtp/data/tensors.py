"""Datasets held as tensors in memory; minibatches are index slices, never per-sample loading."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from snn_drtp.spiking.inputs import SpikeTrain

Task = Literal["classification", "regression"]
Layout = Literal["static", "time_first"]


@dataclass
class TensorData:
    """One split: inputs ``x`` and targets ``y`` ([N] int64 labels, or [N, C] float32 regression
    targets). ``layout`` declares what the inputs are: ``"static"``, x [N, C, H, W] float32, which a
    spiking engine encodes into spikes; or ``"time_first"``, x [N, T, ...] spikes or event frames
    per example, whose batches are handed out time-first as a :class:`SpikeTrain` [T, B, ...]."""

    x: torch.Tensor
    y: torch.Tensor
    n_outputs: int
    task: Task = "classification"
    layout: Layout = "static"
    _one_hot: torch.Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"{self.x.shape[0]} inputs but {self.y.shape[0]} targets")
        if self.layout not in ("static", "time_first"):
            raise ValueError(f"layout must be 'static' or 'time_first', got {self.layout!r}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example's input at one time step."""
        return tuple(self.x.shape[2:] if self.layout == "time_first" else self.x.shape[1:])

    @staticmethod
    def _rows(values: torch.Tensor, index: torch.Tensor | slice) -> torch.Tensor:
        """values[index]; a 1-D tensor of row numbers through ``index_select`` (the same rows, 5x
        faster than advanced indexing for a batch of 60 MNIST images)."""
        if isinstance(index, torch.Tensor) and index.dim() == 1 and index.dtype in (torch.int32, torch.int64):
            return values.index_select(0, index)
        return values[index]

    def inputs(
        self, index: torch.Tensor | slice, device: torch.device | str | None = None
    ) -> torch.Tensor | SpikeTrain:
        """A batch's inputs as float32 on ``device`` (the data stay where they are; only the batch
        moves): static [B, ...], or a time-first :class:`SpikeTrain` [T, B, ...]."""
        batch = self._rows(self.x, index).to(device)
        if self.layout == "time_first":
            return SpikeTrain(batch.transpose(0, 1).float())
        return batch.float()

    def accumulated(self) -> TensorData:
        """The rate twin of time-first data: the mean frame (1/T) sum_t x[t], static [N, ...]."""
        if self.layout != "time_first":
            return self
        steps = self.x.shape[1]
        return TensorData(self.x.sum(1, dtype=torch.float32) / steps, self.y, self.n_outputs, self.task)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, n: int | None) -> TensorData:
        """The first ``n`` examples (all when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        return TensorData(self.x[:n], self.y[:n], self.n_outputs, self.task, self.layout)

    def targets(self, index: torch.Tensor | slice, device: torch.device | str | None = None) -> torch.Tensor:
        """The target vectors y* of a batch on ``device``: one-hot labels, or the regression targets."""
        if self.task == "regression":
            return self.y[index].to(device)
        if self._one_hot is None:
            self._one_hot = torch.nn.functional.one_hot(self.y, self.n_outputs).to(torch.float32)
        return self._rows(self._one_hot, index).to(device)
