"""One event recording in Tonic's convention, whatever file it came from.

Events are a NumPy structured array with int64 fields ``x``, ``y`` (absent for a 1-D sensor such as
a cochlea), ``t`` (microseconds from the recording's start) and ``p`` (polarity: 1 = ON, 0 = OFF;
or a channel index for sensors with P > 2), sorted by ``t``. The sensor size is (W, H, P), with
H = 1 for a 1-D sensor, as Tonic writes SHD's (700, 1, 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EVENT_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
"""Tonic's event layout for a 2-D sensor: x, y, t (microseconds), p (1 = ON, 0 = OFF)."""
EVENT_DTYPE_1D = np.dtype([("x", np.int64), ("t", np.int64), ("p", np.int64)])
"""Events of a 1-D sensor (x = channel), as Tonic gives SHD's."""


class EventFileError(ValueError):
    """An event file is truncated, corrupt, of an unsupported format or not an event recording."""


@dataclass(frozen=True)
class EventRecording:
    """The events of one file (:data:`EVENT_DTYPE` or :data:`EVENT_DTYPE_1D`), the sensor (W, H, P)
    its header gives (None where the format has no header), the format's name, and notes on what
    was skipped or changed while reading (frames, IMU packets, a rebased clock)."""

    path: Path
    format: str
    events: np.ndarray
    sensor_size: tuple[int, int, int] | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def one_dimensional(self) -> bool:
        return "y" not in (self.events.dtype.names or ())

    @property
    def duration_us(self) -> int:
        """t_last - t_first (0 for fewer than two events)."""
        t = self.events["t"]
        return int(t[-1] - t[0]) if len(t) > 1 else 0


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


def tonic_events(x: np.ndarray, t: np.ndarray, p: np.ndarray | None, y: np.ndarray | None = None) -> np.ndarray:
    """Columns as one structured array (:data:`EVENT_DTYPE`, or :data:`EVENT_DTYPE_1D` without
    ``y``); polarity as booleans or -1 / +1 becomes 0 / 1 (None: all 0)."""
    out = np.empty(len(t), dtype=EVENT_DTYPE if y is not None else EVENT_DTYPE_1D)
    out["x"], out["t"] = x, t
    if y is not None:
        out["y"] = y
    if p is None:
        out["p"] = 0
    else:
        p = np.asarray(p)
        out["p"] = p > 0 if p.dtype == np.bool_ or (len(p) and p.min() < 0) else p
    return out


def in_time_order(events: np.ndarray, notes: list[str]) -> np.ndarray:
    """``events`` sorted by t (stable) if they are not, with a note saying how many were out of
    order; camera clocks and multi-packet files are not always monotonic."""
    t = events["t"]
    backwards = int(np.count_nonzero(np.diff(t) < 0))
    if backwards:
        notes.append(f"{backwards} events were out of time order; sorted by t")
        events = events[np.argsort(t, kind="stable")]
    return events


def from_start(events: np.ndarray, notes: list[str], what: str = "the camera's clock") -> np.ndarray:
    """``events`` with t counted from the first event (t - t_0), noting the offset removed."""
    if len(events) and events["t"][0] != 0:
        notes.append(f"times rebased to the first event (t_0 = {int(events['t'][0])} us on {what})")
        events = events.copy()
        events["t"] -= events["t"][0]
    return events


def events_sensor(events: np.ndarray) -> tuple[int, int, int]:
    """The smallest sensor (W, H, P) that holds ``events``: W = largest x + 1, H = largest y + 1
    (1 for a 1-D sensor), P = largest p + 1, at least 2 (ON / OFF) on a 2-D sensor, at least 1 on a
    1-D one; zeros for W and H when there are no events."""
    one_dimensional = "y" not in (events.dtype.names or ())
    top = (lambda k: int(events[k].max()) + 1) if len(events) else (lambda k: 0)
    polarities = max(top("p"), 1 if one_dimensional else 2)
    return top("x"), 1 if one_dimensional else top("y"), polarities


def off_sensor(events: np.ndarray, sensor: tuple[int, int, int], polarity: bool = True) -> str | None:
    """The first event outside ``sensor`` (W, H, P) as ``x=.., y=.., p=..`` (``polarity``: p checked
    against P too), or None when every event lies on it."""
    width, height, polarities = sensor
    off = events["x"] >= width
    if "y" in (events.dtype.names or ()):
        off |= events["y"] >= height
    if polarity:
        off |= events["p"] >= polarities
    if not np.any(off):
        return None
    e = events[int(np.argmax(off))]
    return ", ".join(f"{k}={e[k]}" for k in events.dtype.names or () if k != "t")


def on_sensor(recording: EventRecording) -> EventRecording:
    """``recording`` after checking that every event lies on the sensor its header gives (if any)."""
    sensor = recording.sensor_size
    where = None if sensor is None else off_sensor(recording.events, sensor, polarity=False)
    if where is not None and sensor is not None:
        raise EventFileError(
            f"{recording.path}: event at {where} lies outside the {sensor[0]} x {sensor[1]} sensor its header "
            "gives; the file is corrupt or its header is wrong"
        )
    return recording
