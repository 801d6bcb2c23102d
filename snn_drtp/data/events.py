"""Event-camera and spike datasets as time-first frame tensors.

Sources of (events, label) pairs:

* ``nmnist-small``: the 1,000 + 100 real N-MNIST recordings in the original binary format with a
  ``labels.csv`` (:class:`~snn_drtp.data.event_folders.EventFolder`), from ``<data dir>/nmnist-small``
  or the repository's ``../shared/data/nmnist-small``;
* ``emulated-nmnist`` / ``emulated-nfashion``: MNIST / Fashion-MNIST recorded by the emulator
  (:mod:`snn_drtp.data.emulator`), generated on first use;
* ``events:<folder>`` (or ``events:<folder>:<W>x<H>x<P>``): a folder of labelled recordings of any
  supported format (:mod:`snn_drtp.data.formats`, mixed allowed), with train/ and test/ or one
  labels.csv split here (:mod:`snn_drtp.data.event_folders`), any sensor, 1-D included, its size
  given or inferred;
* ``nmnist``, ``dvsgesture``, ``shd``, ``pokerdvs`` and ``tonic:<ClassName>``: Tonic's dataset
  classes, reading the user's files in Tonic's layout under ``<data dir>/tonic``. Tonic would
  download missing files on construction; here a missing dataset raises
  :class:`MissingDatasetError` naming the folder, the files Tonic expects and where Tonic
  downloads them from, and no network is touched.

:func:`load_event_dataset` turns a source into frames with a :class:`~snn_drtp.data.frames.FrameSpec`
and caches them on disk, keyed by dataset, split, source and frame parameters (Tonic's
DiskCachedDataset does not notice a changed transform), with a progress bar while caching. An
event folder's key includes a hash of its ``labels.csv`` and of every recording's bytes, so an
edited label or a recording rewritten in place (same size, same time stamp) is framed again.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch

from snn_drtp.core.atomic import FolderInUseError, atomic_save_npy, clean_stale_temporaries, folder_lock
from snn_drtp.core.progress import progress as show_progress
from snn_drtp.data.download import default_cache_dir
from snn_drtp.data.emulator import SENSOR_SIZE, EmulatorParams, EventEmulator
from snn_drtp.data.event_folders import EventFolder
from snn_drtp.data.formats import normalise_polarity
from snn_drtp.data.frames import FRAME_DTYPE, FrameSpec, cache_key, cache_paths, read_cache
from snn_drtp.data.speech import emulated_shd_root, is_emulated_shd
from snn_drtp.data.static import load_idx_dataset

SHARED_NMNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nmnist-small"
CACHE_FORMAT = 2
"""2: counts above 255 kept (uint8 or int16), event folders keyed by content. Format-1 caches of
the same key whose counts stay below 255 (so none was clipped) are adopted as they are."""
EMULATION_CHUNK = 256


class MissingDatasetError(FileNotFoundError):
    """A dataset's files are not where they should be; the message says where and how to get them."""


class EventSource(Protocol):
    @property
    def sensor_size(self) -> tuple[int, int, int]: ...

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
    sensor: tuple[int, int, int] = tuple(cast(Any, cls).sensor_size)
    return _TonicAdapter(dataset, sensor)


class _TonicAdapter:
    def __init__(self, dataset: Any, sensor_size: tuple[int, int, int]):
        self.dataset, self.sensor_size = dataset, sensor_size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        events, target = self.dataset[index]
        return normalise_polarity(events), int(np.asarray(target))


class EmulatedSource:
    """Static images [N, 1, H, W] recorded by the emulator, image i from seeds (seed, i)."""

    sensor_size = SENSOR_SIZE

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, emulator: EventEmulator):
        self.images, self.labels, self.emulator = images, labels, emulator

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.emulator(self.images[index : index + 1, 0], first_index=index)[0], int(self.labels[index])

    def emulate(self, start: int, stop: int) -> tuple[list[np.ndarray], list[int]]:
        """The events and labels of images ``start`` to ``stop`` - 1, emulated in one batch."""
        return (
            self.emulator(self.images[start:stop, 0], first_index=start),
            self.labels[start:stop].tolist(),
        )


EMULATED = {"emulated-nmnist": "mnist", "emulated-nfashion": "fashion-mnist"}
EVENT_DATASETS = ("nmnist-small", *EMULATED, "emulated-shd", *TONIC_DATASETS)


def is_event_dataset(name: str) -> bool:
    return name in EVENT_DATASETS or name.startswith(("tonic:", "events:", "emulated-shd:"))


def event_folder_sensor(name: str) -> tuple[Path, tuple[int, int, int] | None]:
    """``events:<folder>`` or ``events:<folder>:<W>x<H>x<P>``: an event folder
    (:class:`~snn_drtp.data.event_folders.EventFolder`) and its sensor size, given or (None)
    inferred. A suffix is read as the sensor only when it is three positive integers joined by
    ``x`` and the whole name is not itself a folder; a folder and a sensor both possible is refused."""
    body = name[len("events:") :]
    head, _, tail = body.rpartition(":")
    if not head or not re.fullmatch(r"\d+x\d+x\d+", tail):
        if head and re.fullmatch(r"[\dx]+", tail) and not Path(body).is_dir():
            raise ValueError(
                f"dataset {name!r}: sensor {tail!r} is not W x H x P (three positive integers, e.g. 34x34x2 or "
                "700x1x1 for a 1-D sensor)"
            )
        return Path(body), None
    sensor = tuple(int(v) for v in tail.split("x"))
    if min(sensor) < 1:
        raise ValueError(f"dataset {name!r}: sensor {tail} has a zero size; W, H and P are >= 1")
    if Path(body).is_dir() and Path(head).is_dir():
        raise ValueError(
            f"dataset {name!r} is ambiguous: both {body} and {head} are folders; rename one, or give the sensor "
            f"explicitly as events:{body}:<W>x<H>x<P>"
        )
    if Path(body).is_dir():
        return Path(body), None
    return Path(head), (sensor[0], sensor[1], sensor[2])


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


def folder_content(folder: EventFolder, every_split: bool = False) -> str:
    """A SHA-256 over the folder's labels.csv files, the split and every recording's name and bytes
    (of this split, or of every split when the frames depend on them all, as with a sensor inferred
    over both), in order: a different label, file list or recording content gives a different
    value, whatever the files' sizes and time stamps. Hashing nmnist-small's 1,100 recordings
    (23 MB) takes about 65 ms with the files in the page cache, 200 ms from disk."""
    digest = hashlib.sha256(folder.split.encode())
    for labels in folder.listing.labels_files:
        digest.update(labels.read_bytes())
    files = [f for fs in folder.listing.files.values() for f in fs] if every_split else folder.files
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def event_source(
    name: str,
    split: str,
    data_dir: str | Path | None,
    emulator: EmulatorParams | None = None,
    emulator_seed: int = 0,
) -> tuple[EventSource, dict]:
    """The (events, label) source of a dataset split and a fingerprint of where it came from; an
    event folder's fingerprint covers its labels and recordings' content (:func:`folder_content`)."""
    if name == "nmnist-small":
        root = nmnist_small_root(data_dir)
        folder = EventFolder(root, split, SENSOR_SIZE)
        return folder, {"root": str(root.resolve()), "content": folder_content(folder)}
    if name.startswith("events:"):
        root, sensor = event_folder_sensor(name)
        folder = EventFolder(root, split, sensor)
        content = folder_content(folder, every_split=sensor is None)  # an inferred sensor depends on both
        return folder, {"root": str(root.resolve()), "content": content, "sensor": sensor}
    if name in EMULATED:
        params = emulator or EmulatorParams()
        train, test = load_idx_dataset(EMULATED[name], data_dir)
        images = train if split == "train" else test
        fingerprint = {"images": EMULATED[name], "emulator": params.to_dict(), "seed": emulator_seed}
        return EmulatedSource(images.x, images.y, EventEmulator(params, emulator_seed)), fingerprint
    if is_emulated_shd(name):
        cache = Path(data_dir) if data_dir is not None else default_cache_dir()
        root, speech = emulated_shd_root(name, cache, progress=True)
        return tonic_source("shd", root, split == "train"), {"emulated-shd": speech.fingerprint()}
    if is_event_dataset(name):
        root = _tonic_root(data_dir)
        tonic_split = tonic_source(name, root, split == "train")
        return tonic_split, {"root": str(root.resolve()), "samples": len(tonic_split)}
    raise ValueError(
        f"unknown event dataset {name!r}; choose one of {', '.join(EVENT_DATASETS)}, tonic:<Class> or events:<folder>"
    )


def _tonic_root(data_dir: str | Path | None) -> Path:
    return (Path(data_dir) if data_dir is not None else default_cache_dir()) / "tonic"


def frames_of(
    source: EventSource,
    spec: FrameSpec,
    desc: str = "",
    progress: bool = True,
    count: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames [N, T, P, H, W] and labels [N] of the first ``count`` samples (all when None), padded
    to the longest T; uint8 where every count fits, else int16 (the widest of the samples' frames).
    Only those samples are read or emulated."""
    total = len(source) if count is None else min(count, len(source))
    frames: list[np.ndarray] = []
    labels: list[int] = []
    bar = show_progress(total, desc, enabled=progress)
    if isinstance(source, EmulatedSource):
        for start in range(0, total, EMULATION_CHUNK):
            streams, targets = source.emulate(start, min(start + EMULATION_CHUNK, total))
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
    dtype = np.result_type(*(f.dtype for f in frames)) if frames else np.dtype(FRAME_DTYPE)
    out = np.zeros((total, longest, *frames[0].shape[1:]) if frames else (0,), dtype=dtype)
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
    rebuild: bool = True,
    count: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The frames and labels of a dataset split (its first ``count`` samples when given), from the
    cache or computed and cached (atomically). A subset is served from the whole split's entry
    when that is cached and every sample has ``n_time_bins`` frames (with ``time_window_us`` the
    padding to the longest sample would differ), else framed (or emulated) alone and cached as an
    entry of its own, so ``--train-subset 500`` of an emulated dataset emulates 500 images. Building an entry holds a
    lock on it (``.<entry>.lock`` in the cache folder): another process after the same entry
    waits, then reads what this one wrote, and the temporaries of an interrupted build of that
    entry are removed before writing."""
    source, fingerprint = event_source(name, split, data_dir, emulator)
    folder = _cache_folder(data_dir)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[-48:]
    whole = f"{slug}-{split}-{cache_key(name, split, fingerprint, spec.key(), CACHE_FORMAT)}"
    subset = count is not None and count < len(source)
    fixed_length = spec.time_window_us == 0  # every sample has n_time_bins frames: no padding to a longest
    if subset and fixed_length and all(p.exists() for p in cache_paths(folder, whole)):
        counting = replace(spec, binary=False, normalise=False)
        frames, labels = cached_frames(name, split, counting, data_dir, emulator, progress, rebuild)
        frames, labels = frames[:count], labels[:count]
        return (spec.finish_split(frames) if spec.binary or spec.normalise else frames), labels
    stem = f"{whole}-first{count}" if subset else whole
    frames_path, labels_path = cache_paths(folder, stem)
    if not (frames_path.exists() and labels_path.exists()):
        with _entry_lock(folder, stem, f"{name} {split}", progress):
            if not (frames_path.exists() and labels_path.exists()):
                clean_stale_temporaries(folder, {frames_path.name, labels_path.name})
                _clean_abandoned_entries(folder)
                legacy = f"{slug}-{split}-{cache_key(name, split, fingerprint, spec.key(), 1)}"
                if subset or not _adopt_unclipped(cache_paths(folder, legacy), (frames_path, labels_path)):
                    counting = replace(spec, binary=False, normalise=False)
                    desc = f"{name} {split} frames"
                    frames, labels = frames_of(source, counting, desc, progress, count if subset else None)
                    atomic_save_npy(labels_path, labels)
                    atomic_save_npy(frames_path, frames)
    cached = read_cache(frames_path, labels_path)
    if cached is None:  # a corrupt entry, deleted by read_cache (which says so): frame the split again, once
        if not rebuild:
            raise RuntimeError(f"frame cache {frames_path} is corrupt again right after it was rebuilt; check the disk")
        return cached_frames(name, split, spec, data_dir, emulator, progress, rebuild=False, count=count)
    frames, labels = cached
    return (spec.finish_split(frames) if spec.binary or spec.normalise else frames), labels


@contextmanager
def _entry_lock(folder: Path, stem: str, what: str, progress: bool) -> Iterator[None]:
    """Hold the lock of one cache entry (``.<stem>.lock``) while the block runs; if another process
    holds it, wait for it, saying so on stderr when ``progress``."""
    name = f".{stem}.lock"
    with ExitStack() as stack:
        try:
            stack.enter_context(folder_lock(folder, lock_name=name, kind="frame cache entry"))
        except FolderInUseError as exc:
            if progress:
                print(f"{what}: frames being cached by pid {exc.pid}; waiting for it", file=sys.stderr)
            stack.enter_context(folder_lock(folder, blocking=True, lock_name=name))
        yield


_ENTRY_TEMPORARY = re.compile(r"\.(?P<stem>.+)\.(frames|labels)\.npy\.[a-z0-9_]{8}\.tmp")


def _clean_abandoned_entries(folder: Path) -> list[Path]:
    """Remove the temporaries of every other cache entry that no process is building (its lock is
    free: the build that wrote them was killed) and return them; entries being built are left."""
    removed: list[Path] = []
    stems = {m["stem"] for m in map(_ENTRY_TEMPORARY.fullmatch, (p.name for p in folder.iterdir())) if m}
    for stem in sorted(stems):
        try:
            with folder_lock(folder, lock_name=f".{stem}.lock", kind="frame cache entry"):
                removed += clean_stale_temporaries(folder, {p.name for p in cache_paths(folder, stem)})
        except FolderInUseError:
            continue  # being built now (by another process, or by this call: its own were cleaned)
    return removed


def _adopt_unclipped(legacy: tuple[Path, Path], paths: tuple[Path, Path]) -> bool:
    """Move a format-1 cache entry (uint8 counts clipped at 255) to ``paths`` if none of its counts
    reached 255, so no event was lost and the frames equal this version's; True if it was adopted.
    An entry that may have been clipped is removed (it would be framed again anyway)."""
    old_frames, old_labels = legacy
    if not (old_frames.exists() and old_labels.exists()):
        return False
    stored = np.load(old_frames, mmap_mode="r")
    clipped = stored.dtype == FRAME_DTYPE and stored.size > 0 and int(stored.max()) >= np.iinfo(FRAME_DTYPE).max
    del stored
    if clipped:
        old_frames.unlink(missing_ok=True)
        old_labels.unlink(missing_ok=True)
        return False
    os.replace(old_labels, paths[1])
    os.replace(old_frames, paths[0])
    return True
