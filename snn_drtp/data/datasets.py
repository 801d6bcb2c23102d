"""Datasets by name: the static ones (``snn_drtp.data.static``) and the event datasets
(``snn_drtp.data.events``), each loaded as (train, test) :class:`~snn_drtp.data.tensors.TensorData`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from snn_drtp.data.download import DATASETS as IDX_DATASETS
from snn_drtp.data.emulator import EmulatorParams
from snn_drtp.data.events import EVENT_DATASETS, cached_frames, default_duration, is_event_dataset
from snn_drtp.data.frames import FrameSpec
from snn_drtp.data.randman import is_randman, randman
from snn_drtp.data.static import load_idx_dataset, synthetic_classification, synthetic_regression
from snn_drtp.data.tensors import TensorData

DATASET_NAMES = (*IDX_DATASETS, "synth-regression", "synth-classification", "randman", *EVENT_DATASETS)


def is_known_dataset(name: str) -> bool:
    return name in DATASET_NAMES or is_event_dataset(name) or is_randman(name)


def load_dataset(
    name: str,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    frames: FrameSpec | None = None,
    emulator: EmulatorParams | None = None,
    progress: bool = True,
    subsets: tuple[int | None, int | None] = (None, None),
) -> tuple[TensorData, TensorData]:
    """Load a dataset by name as (train, test) tensors. Event datasets come as time-first uint8
    frames built with ``frames`` (default: 25 bins over the dataset's default window); with
    ``subsets`` = (N_train, N_test) only the first N examples of an event split are framed (or
    emulated) and returned (None: all)."""
    if name in IDX_DATASETS:
        return load_idx_dataset(name, cache_dir)
    if name == "synth-regression":
        return synthetic_regression(seed)
    if name == "synth-classification":
        return synthetic_classification(seed)
    if is_randman(name):
        return randman(name, frames.n_time_bins if frames is not None else 50)
    if is_event_dataset(name):
        return load_event_dataset(name, cache_dir, frames, emulator, progress, subsets)
    raise ValueError(
        f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}, tonic:<Class> or events:<folder>"
    )


def load_event_dataset(
    name: str,
    cache_dir: str | Path | None = None,
    frames: FrameSpec | None = None,
    emulator: EmulatorParams | None = None,
    progress: bool = True,
    subsets: tuple[int | None, int | None] = (None, None),
) -> tuple[TensorData, TensorData]:
    """(train, test) frames of an event dataset, [N, T, P, H, W] uint8 counts, time-first layout;
    the first ``subsets`` = (N_train, N_test) examples of each split (None: all)."""
    spec = frames or FrameSpec(duration_us=default_duration(name))
    splits = [
        cached_frames(name, split, spec, cache_dir, emulator, progress, count=count)
        for split, count in zip(("train", "test"), subsets, strict=True)
    ]
    n_classes = max((int(labels.max()) + 1 for _, labels in splits if len(labels)), default=0)
    return tuple(  # type: ignore[return-value]
        TensorData(torch.from_numpy(np.array(x)), torch.from_numpy(y), n_classes, layout="time_first")
        for x, y in splits
    )
