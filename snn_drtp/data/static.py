"""Static datasets as tensors: MNIST and Fashion-MNIST from their IDX files, and the paper's
synthetic regression and classification tasks generated from a seed."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from snn_drtp.data.download import fetch, fetch_command
from snn_drtp.data.idx import read_idx
from snn_drtp.data.tensors import TensorData


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


@lru_cache(maxsize=4)  # generated once per process and seed (tensors are only read, never written)
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


@lru_cache(maxsize=4)  # 0.3 s a call: runs in one process share it
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
