"""The N-MNIST binary format (Orchard et al. 2015): 5 bytes per event, big-endian bit fields
x (8 bits) | y (8 bits) | polarity (1 bit) | timestamp (23 bits, microseconds). An event with
y = 240 marks a timestamp overflow. Files are parsed by ``tonic.io.read_mnist_file`` after the
checks here, so that a truncated or corrupt file gives an error naming it instead of silently
wrong events. The format holds x, y < 256 and t < 2^23 us (8.4 s); it has no header, so no
sensor size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tonic.io import read_mnist_file

from snn_drtp.data.formats.recording import EVENT_DTYPE, EventFileError, EventRecording


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


def read(path: Path) -> EventRecording:
    """An N-MNIST-format file as a :class:`EventRecording` (times as stored: N-MNIST's clock starts at
    the first saccade, and a dataset's recordings share it)."""
    return EventRecording(path, "nmnist", read_nmnist_bin(path))


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
