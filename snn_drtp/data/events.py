"""Event-camera and spike datasets as time-first frame tensors.

Sources of (events, label) pairs:

* ``nmnist-small``: the 1,000 + 100 real N-MNIST recordings in the original binary format with a
  ``labels.csv`` (:class:`~snn_drtp.data.event_files.EventFolder`), from ``<data dir>/nmnist-small``
  or the repository's ``../shared/data/nmnist-small``;
* ``emulated-nmnist`` / ``emulated-nfashion``: MNIST / Fashion-MNIST recorded by the emulator
  (:mod:`snn_drtp.data.emulator`), generated on first use;
* ``events:<folder>`` (or ``events:<folder>:<W>x<H>x<P>``): any folder laid out as nmnist-small,
  recordings of any sensor in the N-MNIST binary format, the sensor size given or inferred;
* ``nmnist``, ``dvsgesture``, ``shd``, ``pokerdvs`` and ``tonic:<ClassName>``: Tonic's dataset
  classes, reading the user's files in Tonic's layout under ``<data dir>/tonic``. Tonic would
  download missing files on construction; here a missing dataset raises
  :class:`MissingDatasetError` naming the folder, the files Tonic expects and where Tonic
  downloads them from, and no network is touched.

:func:`load_event_dataset` turns a source into frames with a :class:`~snn_drtp.data.frames.FrameSpec`
and caches them on disk, keyed by dataset, split, source and frame parameters (Tonic's
DiskCachedDataset does not notice a changed transform), with a progress bar while caching.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from snn_drtp.core.atomic import atomic_save_npy
from snn_drtp.data.download import default_cache_dir
from snn_drtp.data.emulator import SENSOR_SIZE, EmulatorParams, EventEmulator
from snn_drtp.data.event_files import EventFolder
from snn_drtp.data.frames import FRAME_DTYPE, FrameSpec, cache_key, cache_paths
from snn_drtp.data.static import load_idx_dataset

SHARED_NMNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nmnist-small"
CACHE_FORMAT = 1
EMULATION_CHUNK = 256


class MissingDatasetError(FileNotFoundError):
    """A dataset's files are not where they should be; the message says where and how to get them."""


class EventSource(Protocol):
    sensor_size: tuple[int, int, int]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]: ...


@dataclass(frozen=True)
class TonicEntry:
    """A Tonic dataset class and how its files are laid out (for the error when they are missing)."""

    class_name: str
    layout: str
    duration_us: float = 0.0
    split_argument: str = "train"


TONIC_DATASETS = {
    "nmnist": TonicEntry(
        "NMNIST",
        "NMNIST/train.zip and its extracted NMNIST/Train/<digit>/<id>.bin (test: test.zip, Test/)",
        duration_us=310_000,
    ),
    "dvsgesture": TonicEntry(
        "DVSGesture",
        "DVSGesture/ibmGestureTrain.tar.gz and its extracted "
        "DVSGesture/ibmGestureTrain/user<NN>_<lighting>/<label>.npy (test: ibmGestureTest)",
    ),
    "shd": TonicEntry("SHD", "SHD/shd_train.h5.zip and the unzipped SHD/shd_train.h5 (test: shd_test.h5)"),
    "pokerdvs": TonicEntry(
        "POKERDVS",
        "POKERDVS/pips_train.tar.gz and its extracted POKERDVS/pips_train/<cl|he|di|sp>/*.npy (test: pips_test)",
    ),
}


def _offline(cls: type, name: str, layout: str) -> type:
    """A subclass of a Tonic dataset class that raises :class:`MissingDatasetError` where Tonic would
    download (or copy) its files."""

    def refuse(self: Any) -> None:
        url = getattr(self, "url", None) or getattr(cls, "base_url", None) or "no public URL in Tonic"
        raise MissingDatasetError(
            f"dataset {name} ({cls.__name__}) is not in {self.location_on_system}: put Tonic's files there, "
            f"laid out as {layout}. Tonic downloads them from {url}; snn-drtp does not download them."
        )

    # same class name: Tonic keeps a dataset's files under save_to/<class name>
    return type(cls.__name__, (cls,), {"download": refuse, "_copy_and_extract_local_data": refuse})


def tonic_source(name: str, root: Path, train: bool) -> EventSource:
    """A Tonic dataset, read from ``root`` (Tonic's ``save_to``) without downloading."""
    import tonic.datasets

    if name.startswith("tonic:"):
        class_name = name.split(":", 1)[1]
        entry = TonicEntry(class_name, f"{class_name}/ as Tonic's {class_name} class expects it")
    else:
        entry = TONIC_DATASETS[name]
    cls = getattr(tonic.datasets, entry.class_name, None)
    if not inspect.isclass(cls):
        raise ValueError(f"Tonic has no dataset class {entry.class_name!r} (tonic.datasets lists the classes)")
    offline = _offline(cls, name, entry.layout)
    parameters = inspect.signature(cls.__init__).parameters
    if "train" in parameters:
        dataset = offline(save_to=str(root), train=train)
    elif "split" in parameters:
        dataset = offline(save_to=str(root), split="train" if train else "test")
    else:
        dataset = offline(save_to=str(root))
    return _TonicAdapter(dataset, tuple(cls.sensor_size))


class _TonicAdapter:
    def __init__(self, dataset: Any, sensor_size: tuple[int, int, int]):
        self.dataset, self.sensor_size = dataset, sensor_size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        events, target = self.dataset[index]
        return events, int(np.asarray(target))


class EmulatedSource:
    """Static images [N, 1, H, W] recorded by the emulator, image i from seeds (seed, i)."""

    sensor_size = SENSOR_SIZE

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, emulator: EventEmulator):
        self.images, self.labels, self.emulator = images, labels, emulator

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.emulator(self.images[index : index + 1, 0], first_index=index)[0], int(self.labels[index])

    def chunks(self, size: int) -> Callable[[int], tuple[int, list[np.ndarray], list[int]]]:
        return lambda start: (
            start,
            self.emulator(self.images[start : start + size, 0], first_index=start),
            self.labels[start : start + size].tolist(),
        )


UNCHECKED_SENSOR = (256, 256, 2)  # the N-MNIST format's range: lists files without reading them
EMULATED = {"emulated-nmnist": "mnist", "emulated-nfashion": "fashion-mnist"}
EVENT_DATASETS = ("nmnist-small", *EMULATED, *TONIC_DATASETS)


def is_event_dataset(name: str) -> bool:
    return name in EVENT_DATASETS or name.startswith(("tonic:", "events:"))


def event_folder_sensor(name: str) -> tuple[Path, tuple[int, int, int] | None]:
    """``events:<folder>`` or ``events:<folder>:<W>x<H>x<P>``: a folder of N-MNIST-format recordings
    (:class:`~snn_drtp.data.event_files.EventFolder`) and its sensor size, given or (None) inferred."""
    body = name[len("events:") :]
    head, _, tail = body.rpartition(":")
    if head and re.fullmatch(r"\d+x\d+x\d+", tail):
        width, height, polarities = (int(v) for v in tail.split("x"))
        return Path(head), (width, height, polarities)
    return Path(body), None


def default_duration(name: str) -> float:
    """The frame window of a dataset when the config gives none: N-MNIST's 310 ms recordings share
    one clock; other datasets use each sample's own span."""
    if name == "nmnist-small" or name in EMULATED:
        return EmulatorParams().duration_us
    entry = TONIC_DATASETS.get(name)
    return entry.duration_us if entry else 0.0


def nmnist_small_root(data_dir: str | Path | None) -> Path:
    candidates = [Path(data_dir) / "nmnist-small"] if data_dir is not None else []
    env = os.environ.get("SNN_DRTP_DATA")
    if env:
        candidates.append(Path(env) / "nmnist-small")
    candidates.append(SHARED_NMNIST)
    for path in candidates:
        if (path / "train" / "labels.csv").is_file():
            return path
    raise MissingDatasetError(
        "dataset nmnist-small not found; looked in " + ", ".join(str(p) for p in candidates) + ". It is a folder with "
        "train/ and test/ subfolders, each holding N-MNIST-format .bin recordings and a labels.csv (file,label)"
    )


def event_source(
    name: str,
    split: str,
    data_dir: str | Path | None,
    emulator: EmulatorParams | None = None,
    emulator_seed: int = 0,
) -> tuple[EventSource, dict]:
    """The (events, label) source of a dataset split and a fingerprint of where it came from."""
    if name == "nmnist-small":
        root = nmnist_small_root(data_dir)
        source = EventFolder(root, split, SENSOR_SIZE)
        stats = [(f.name, f.stat().st_size) for f in source.files]
        return source, {"root": str(root.resolve()), "files": cache_key(stats)}
    if name.startswith("events:"):
        root, sensor = event_folder_sensor(name)
        source = EventFolder(root, split, sensor) if sensor else _InferredSensorFolder(root, split)
        stats = [(f.name, f.stat().st_size) for f in source.files]
        return source, {"root": str(root.resolve()), "files": cache_key(stats), "sensor": sensor}
    if name in EMULATED:
        params = emulator or EmulatorParams()
        train, test = load_idx_dataset(EMULATED[name], data_dir)
        images = train if split == "train" else test
        fingerprint = {"images": EMULATED[name], "emulator": params.to_dict(), "seed": emulator_seed}
        return EmulatedSource(images.x, images.y, EventEmulator(params, emulator_seed)), fingerprint
    if is_event_dataset(name):
        root = _tonic_root(data_dir)
        source = tonic_source(name, root, split == "train")
        return source, {"root": str(root.resolve()), "samples": len(source)}
    raise ValueError(
        f"unknown event dataset {name!r}; choose one of {', '.join(EVENT_DATASETS)}, tonic:<Class> or events:<folder>"
    )


class _InferredSensorFolder:
    """A split of an event folder on the sensor inferred over both splits (so that train and test
    frames match), read only when its events are asked for: a cached dataset reads no recording."""

    def __init__(self, root: Path, split: str):
        self.root, self.split = root, split
        self.files = EventFolder(root, split, UNCHECKED_SENSOR).files
        self._folder: EventFolder | None = None

    @property
    def folder(self) -> EventFolder:
        if self._folder is None:
            splits = {s: EventFolder(self.root, s) for s in ("train", "test")}
            sizes = zip(*(f.sensor_size for f in splits.values()), strict=True)
            self._folder = splits[self.split]
            self._folder.sensor_size = tuple(max(size) for size in sizes)  # type: ignore[assignment]
        return self._folder

    @property
    def sensor_size(self) -> tuple[int, int, int]:
        return self.folder.sensor_size  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.folder[index]


def _tonic_root(data_dir: str | Path | None) -> Path:
    return (Path(data_dir) if data_dir is not None else default_cache_dir()) / "tonic"


def frames_of(
    source: EventSource,
    spec: FrameSpec,
    desc: str = "",
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames [N, T, P, H, W] (uint8) and labels [N] of every sample, padded to the longest T."""
    total = len(source)
    frames: list[np.ndarray] = []
    labels: list[int] = []
    bar = tqdm(total=total, desc=desc, unit="sample", disable=None if progress else True, leave=False)
    chunks = getattr(source, "chunks", None)
    if chunks is not None:
        emulate = chunks(EMULATION_CHUNK)
        for start in range(0, total, EMULATION_CHUNK):
            _, streams, targets = emulate(start)
            frames += [spec(events, source.sensor_size) for events in streams]
            labels += targets
            bar.update(len(streams))
    else:
        for index in range(total):
            events, label = source[index]
            frames.append(spec(events, source.sensor_size))
            labels.append(label)
            bar.update(1)
    bar.close()
    longest = max((f.shape[0] for f in frames), default=spec.n_time_bins)
    out = np.zeros((total, longest, *frames[0].shape[1:]) if frames else (0,), dtype=FRAME_DTYPE)
    for i, f in enumerate(frames):
        out[i, : f.shape[0]] = f
    return out, np.asarray(labels, dtype=np.int64)


def _cache_folder(data_dir: str | Path | None) -> Path:
    return (Path(data_dir) if data_dir is not None else default_cache_dir()) / "frames"


def cached_frames(
    name: str,
    split: str,
    spec: FrameSpec,
    data_dir: str | Path | None = None,
    emulator: EmulatorParams | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The frames and labels of a dataset split, from the cache or computed and cached (atomically)."""
    source, fingerprint = event_source(name, split, data_dir, emulator)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[-48:]
    stem = f"{slug}-{split}-{cache_key(name, split, fingerprint, spec.key(), CACHE_FORMAT)}"
    frames_path, labels_path = cache_paths(_cache_folder(data_dir), stem)
    counting = replace(spec, binary=False)
    if not (frames_path.exists() and labels_path.exists()):
        frames, labels = frames_of(source, counting, desc=f"{name} {split}: frames", progress=progress)
        atomic_save_npy(labels_path, labels)
        atomic_save_npy(frames_path, frames)
    frames = np.load(frames_path, mmap_mode="r")
    return (spec.finish(frames) if spec.binary else frames), np.load(labels_path)
