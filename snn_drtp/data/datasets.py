"""Datasets held as tensors in memory; minibatches are index slices, never per-sample loading."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from snn_drtp.data.download import DATASETS as IDX_DATASETS
from snn_drtp.data.download import fetch, fetch_command
from snn_drtp.data.emulator import EmulatorParams
from snn_drtp.data.events import EVENT_DATASETS, cached_frames, default_duration, is_event_dataset
from snn_drtp.data.frames import FrameSpec
from snn_drtp.data.idx import read_idx
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

    def inputs(self, index: torch.Tensor | slice) -> torch.Tensor | SpikeTrain:
        """A batch's inputs as float32: static [B, ...], or a time-first :class:`SpikeTrain` [T, B, ...]."""
        if self.layout == "time_first":
            return SpikeTrain(self.x[index].transpose(0, 1).float())
        return self.x[index].float()

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

    def targets(self, index: torch.Tensor | slice) -> torch.Tensor:
        """The target vectors y* of a batch: one-hot labels, or the regression targets."""
        if self.task == "regression":
            return self.y[index]
        if self._one_hot is None:
            self._one_hot = torch.nn.functional.one_hot(self.y, self.n_outputs).to(torch.float32)
        return self._one_hot[index]


def load_idx_dataset(name: str, cache_dir: str | Path | None = None) -> tuple[TensorData, TensorData]:
    """MNIST or Fashion-MNIST as (train, test): pixels scaled to [0, 1], shape [N, 1, 28, 28]."""
    root = fetch(name, cache_dir, quiet=True)
    fix = f"delete it and run `{fetch_command(name, cache_dir)}`"
    splits = []
    for prefix in ("train", "t10k"):
        images = read_idx(root / f"{prefix}-images-idx3-ubyte", fix)
        labels = read_idx(root / f"{prefix}-labels-idx1-ubyte", fix)
        x = torch.from_numpy(images).to(torch.float32).div_(255.0).unsqueeze(1)
        splits.append(TensorData(x, torch.from_numpy(labels.astype(np.int64)), 10))
    return splits[0], splits[1]


def synthetic_regression(
    seed: int = 0, n_train: int = 5000, n_test: int = 1000, dim: int = 256, n_outputs: int = 10
) -> tuple[TensorData, TensorData]:
    """The paper's regression task: x ~ N(m, 1)^dim with m ~ U(-pi, pi) per example, and
    targets t_j = cos(mean(x) + pi (j - 4.5) / 9), j = 0..9."""
    gen = torch.Generator().manual_seed(seed)
    splits = []
    for n in (n_train, n_test):
        means = math.pi * (torch.rand(n, generator=gen) * 2 - 1)
        x = means[:, None] + torch.randn(n, dim, generator=gen)
        phase = math.pi * (torch.arange(n_outputs, dtype=torch.float32) - 4.5) / 9
        t = torch.cos(x.mean(dim=1, keepdim=True) + phase)
        side = math.isqrt(dim)
        splits.append(TensorData(x.view(n, 1, side, side), t, n_outputs, "regression"))
    return splits[0], splits[1]


def synthetic_classification(
    seed: int = 0, n_train: int = 25000, n_test: int = 5000, dim: int = 256
) -> tuple[TensorData, TensorData]:
    """The paper's classification task: sklearn ``make_classification`` with 128 informative
    features of ``dim``, 10 classes, 5 clusters per class, class_sep 4.5."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=n_train + n_test,
        n_features=dim,
        n_informative=128,
        n_redundant=0,
        n_repeated=0,
        n_classes=10,
        n_clusters_per_class=5,
        class_sep=4.5,
        shuffle=True,
        random_state=seed,
    )
    side = math.isqrt(dim)
    xt = torch.as_tensor(x, dtype=torch.float32).view(-1, 1, side, side)
    yt = torch.as_tensor(y, dtype=torch.int64)
    return (TensorData(xt[:n_train], yt[:n_train], 10), TensorData(xt[n_train:], yt[n_train:], 10))


DATASET_NAMES = (*IDX_DATASETS, "synth-regression", "synth-classification", *EVENT_DATASETS)


def is_known_dataset(name: str) -> bool:
    return name in DATASET_NAMES or is_event_dataset(name)


def load_dataset(
    name: str,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    frames: FrameSpec | None = None,
    emulator: EmulatorParams | None = None,
    progress: bool = True,
) -> tuple[TensorData, TensorData]:
    """Load a dataset by name as (train, test) tensors. Event datasets come as time-first uint8
    frames built with ``frames`` (default: 25 bins over the dataset's default window)."""
    if name in IDX_DATASETS:
        return load_idx_dataset(name, cache_dir)
    if name == "synth-regression":
        return synthetic_regression(seed)
    if name == "synth-classification":
        return synthetic_classification(seed)
    if is_event_dataset(name):
        return load_event_dataset(name, cache_dir, frames, emulator, progress)
    raise ValueError(
        f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}, tonic:<Class> or events:<folder>"
    )


def load_event_dataset(
    name: str,
    cache_dir: str | Path | None = None,
    frames: FrameSpec | None = None,
    emulator: EmulatorParams | None = None,
    progress: bool = True,
) -> tuple[TensorData, TensorData]:
    """(train, test) frames of an event dataset, [N, T, P, H, W] uint8 counts, time-first layout."""
    spec = frames or FrameSpec(duration_us=default_duration(name))
    splits = [cached_frames(name, split, spec, cache_dir, emulator, progress) for split in ("train", "test")]
    n_classes = max((int(labels.max()) + 1 for _, labels in splits if len(labels)), default=0)
    return tuple(  # type: ignore[return-value]
        TensorData(torch.from_numpy(np.array(x)), torch.from_numpy(y), n_classes, layout="time_first")
        for x, y in splits
    )
