"""Event recordings on disk: the original N-MNIST binary format, validated, and folders of such
recordings with a ``labels.csv``.

N-MNIST binary (Orchard et al. 2015): 5 bytes per event, big-endian bit fields
x (8 bits) | y (8 bits) | polarity (1 bit) | timestamp (23 bits, microseconds). An event with
y = 240 marks a timestamp overflow. Files are parsed by ``tonic.io.read_mnist_file`` after the
checks here, so that a truncated or corrupt file gives an error naming it instead of silently
wrong events.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from tonic.io import read_mnist_file

EVENT_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
"""Tonic's N-MNIST event layout: x, y, t (microseconds), p (1 = ON, 0 = OFF)."""


class EventFileError(ValueError):
    """An event file is truncated, corrupt or not in the expected format."""


def normalise_polarity(events: np.ndarray) -> np.ndarray:
    """``events`` with polarity in Tonic's convention, 1 = ON and 0 = OFF: a stream whose ``p`` is
    boolean or takes negative values (-1 / +1, as some sensors and libraries write it) gets
    ``p = (p > 0)`` as int64, in a copy; a stream already in {0, 1} (or P > 2 channels numbered
    from 0), or without a ``p`` field, is returned as it is. Without this, Tonic's ToFrame
    indexes channel -1, the last, and every event lands in the ON channel."""
    names = events.dtype.names or ()
    if "p" not in names:
        return events
    p = events["p"]
    if p.dtype != np.bool_ and (len(p) == 0 or p.min() >= 0):
        return events
    out = np.empty(len(events), dtype=[(n, np.int64 if n == "p" else events.dtype[n]) for n in names])
    for n in names:
        out[n] = events[n]
    out["p"] = p > 0
    return out


def read_nmnist_bin(path: str | Path, sensor_size: tuple[int, int, int] | None = None) -> np.ndarray:
    """The events of one N-MNIST-format recording as a Tonic structured array, after checking that
    the file is whole (5 bytes per event, at least one), that timestamps never decrease and, given
    ``sensor_size`` (W, H, P), that every event lies on the sensor."""
    path = Path(path)
    fix = "the file is truncated or not an N-MNIST-format recording; copy it again"
    size = path.stat().st_size
    if size == 0:
        raise EventFileError(f"{path}: empty file (0 bytes); {fix}")
    if size % 5:
        raise EventFileError(
            f"{path}: {size} bytes is not a whole number of 5-byte events ({size % 5} bytes left over); {fix}"
        )
    events = read_mnist_file(str(path), dtype=EVENT_DTYPE)
    backwards = np.diff(events["t"]) < 0
    if np.any(backwards):
        first = int(np.argmax(backwards)) + 1
        raise EventFileError(f"{path}: timestamps go backwards at event {first}; the file is corrupt")
    if sensor_size is not None:
        width, height, polarities = sensor_size
        off = (events["x"] >= width) | (events["y"] >= height) | (events["p"] >= polarities)
        if np.any(off):
            e = events[int(np.argmax(off))]
            raise EventFileError(
                f"{path}: event at x={e['x']}, y={e['y']}, p={e['p']} lies outside the sensor "
                f"(W, H, P) = {sensor_size}; the file is corrupt or the sensor size is wrong"
            )
    return events


def write_nmnist_bin(path: str | Path, events: np.ndarray) -> None:
    """Write events (x, y < 256, t < 2^23 microseconds, p in {0, 1}) in the N-MNIST binary format."""
    x, y, t, p = (np.asarray(events[k], dtype=np.int64) for k in ("x", "y", "t", "p"))
    if len(t) and (x.max() > 255 or y.max() > 255 or t.max() >= 2**23 or t.min() < 0):
        raise ValueError("N-MNIST format holds x, y < 256 and 0 <= t < 2^23 microseconds")
    raw = np.empty((len(t), 5), dtype=np.uint8)
    raw[:, 0] = x
    raw[:, 1] = y
    raw[:, 2] = ((p & 1) << 7) | ((t >> 16) & 127)
    raw[:, 3] = (t >> 8) & 255
    raw[:, 4] = t & 255
    Path(path).write_bytes(raw.tobytes())


class EventFolder:
    """A folder of labelled recordings in the N-MNIST binary format: ``<root>/<split>/labels.csv``
    (columns ``file,label``) and the files it names, as in ``shared/data/nmnist-small``. The sensor
    size (W, H, P) is given, or inferred as the largest x and y + 1 over all recordings, 2 polarities."""

    def __init__(self, root: str | Path, split: str, sensor_size: tuple[int, int, int] | None = None):
        self.root, self.split = Path(root), split
        folder = self.root / self.split
        labels = folder / "labels.csv"
        if not labels.is_file():
            raise FileNotFoundError(
                f"no {labels}: an event folder holds <root>/{self.split}/labels.csv (columns file,label) and the "
                "N-MNIST-format .bin files it names"
            )
        with labels.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or set(rows[0]) != {"file", "label"}:
            raise EventFileError(f"{labels}: expected a header 'file,label' and one row per recording")
        self.files = [folder / row["file"] for row in rows]
        missing = [f.name for f in self.files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{labels} names {len(missing)} missing file(s) in {folder}: {missing[:5]}")
        self.labels = [int(row["label"]) for row in rows]
        self._events: list[np.ndarray | None] = [None] * len(self.files)
        self.sensor_size: tuple[int, int, int] = sensor_size or self._inferred_sensor()

    def _inferred_sensor(self) -> tuple[int, int, int]:
        """(largest x + 1, largest y + 1, 2) over every recording, read without a sensor check."""
        width = height = 0
        for i, path in enumerate(self.files):
            events = read_nmnist_bin(path)
            self._events[i] = events
            if len(events):
                width, height = max(width, int(events["x"].max()) + 1), max(height, int(events["y"].max()) + 1)
        return (width, height, 2)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        events = self._events[index]
        if events is None:
            events = self._events[index] = read_nmnist_bin(self.files[index], self.sensor_size)
        return events, self.labels[index]
