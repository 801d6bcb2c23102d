"""Event streams to time-first frames with Tonic's transforms, and an on-disk cache of the result.

A :class:`FrameSpec` applies, in order, Tonic's ``Denoise`` (``denoise_us`` > 0), ``Downsample``
(``downsample`` != 1) and ``MergePolarities`` (``merge_polarity``), then ``ToFrame``, and returns
event counts per frame, polarity and pixel, [T, P, H, W] (or [T, P, W] for a sensor without a y
axis, such as SHD's 700 channels); with ``binary`` a frame holds 1 where any event fell (spikes);
with ``normalise`` each sample's counts are divided by their mean over the nonzero entries,
x / mean(x[x > 0]), so that a typical active pixel and bin drives the first layer with 1 whatever
the recording's event rate (float32 frames; a sample without events stays 0).
Frames cover either ``n_time_bins`` equal bins or frames of
``time_window_us``, from time 0 over ``duration_us`` when that is set (every sample on the same
clock) or over each sample's first to last event.

ToFrame's quirks, handled here and tested:

* with ``n_time_bins`` Tonic sizes bins as (t_last - t_first) // T, so a single-event stream gets
  bins of length 0 and loses its event, and the last events fall past the last bin; we call
  ToFrame with an explicit integer window ceil(span / T), start and end, which makes exactly T
  bins that hold every event of the span;
* with ``time_window`` Tonic drops the trailing partial slice unless ``include_incomplete``; we
  keep it (every event in the span is counted);
* an empty stream gives Tonic's zeros in (T, P, W, H) order and float64; we return zeros in
  (T, P, H, W), the order of every non-empty frame;
* polarity given as -1 / +1 or as booleans would all land in one channel; it is normalised to
  {0, 1} first (:func:`~snn_drtp.data.formats.recording.normalise_polarity`);
* ToFrame counts in int16 and wraps past 32,767 events per bin, pixel and polarity; a stream
  where that happened is refused, with the number of events miscounted.

Counts are returned (and cached) as uint8 where every count fits, else as int16: no count is
clipped.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tonic.transforms as T

from snn_drtp.data.formats import normalise_polarity

FRAME_DTYPE = np.uint8
"""Frames whose counts all fit (at most 255 events per bin, pixel and polarity), and spike frames,
are uint8; others are :data:`WIDE_FRAME_DTYPE`."""
WIDE_FRAME_DTYPE = np.int16
"""Frames with a count above 255: int16, the type Tonic's ToFrame counts in (at most 32,767)."""


def count_dtype(max_count: int) -> np.dtype:
    """The narrowest frame dtype that holds counts up to ``max_count``: uint8 up to 255, else int16
    up to 32,767; beyond that a ValueError (Tonic's ToFrame cannot count it)."""
    if max_count <= np.iinfo(FRAME_DTYPE).max:
        return np.dtype(FRAME_DTYPE)
    if max_count <= np.iinfo(WIDE_FRAME_DTYPE).max:
        return np.dtype(WIDE_FRAME_DTYPE)
    raise ValueError(
        f"frames: a count of {max_count} events per bin, pixel and polarity exceeds {np.iinfo(WIDE_FRAME_DTYPE).max}, "
        "the most Tonic's ToFrame counts; use shorter bins (more n_time_bins or a smaller time_window_us)"
    )


@dataclass(frozen=True)
class FrameSpec:
    """How an event stream becomes frames (times in microseconds)."""

    n_time_bins: int = 25
    time_window_us: float = 0.0
    duration_us: float = 0.0
    merge_polarity: bool = False
    denoise_us: float = 0.0
    downsample: float = 1.0
    binary: bool = False
    normalise: bool = False

    def __post_init__(self) -> None:
        for name in ("time_window_us", "duration_us", "denoise_us", "downsample"):
            object.__setattr__(self, name, float(getattr(self, name)))
        checks = [
            (self.n_time_bins >= 1, f"n_time_bins must be >= 1, got {self.n_time_bins}"),
            (
                self.time_window_us == 0 or self.time_window_us >= 1,
                f"time_window_us must be 0 (n_time_bins bins) or >= 1 microsecond, got {self.time_window_us}",
            ),
            (self.duration_us >= 0, f"duration_us must be >= 0 (0: each sample's own span), got {self.duration_us}"),
            (self.denoise_us >= 0, f"denoise_us must be >= 0 (0: off), got {self.denoise_us}"),
            (0 < self.downsample <= 1, f"downsample is a spatial factor in (0, 1], got {self.downsample}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"frames: {message}")

    def key(self) -> dict:
        """The fields that change the cached event counts (``binary`` and ``normalise`` are applied
        after the cache)."""
        key = asdict(self)
        del key["binary"], key["normalise"]
        return key

    def sensor_after(self, sensor_size: tuple[int, int, int]) -> tuple[int, int, int]:
        """(W, H, P) after downsampling and polarity merging."""
        width, height, polarities = sensor_size
        if self.downsample != 1:
            width, height = max(1, math.ceil(width * self.downsample)), max(1, math.ceil(height * self.downsample))
        return width, height, 1 if self.merge_polarity else polarities

    def frame_count(self, span_us: float) -> int:
        """Frames for a recording of ``span_us``: n_time_bins, or ceil(span / time_window)."""
        if self.time_window_us == 0:
            return self.n_time_bins
        return max(1, math.ceil(span_us / self.time_window_us))

    def frame_shape(self, sensor_size: tuple[int, int, int], has_y: bool = True) -> tuple[int, ...]:
        width, height, polarities = self.sensor_after(sensor_size)
        return (polarities, height, width) if has_y else (polarities, width)

    def __call__(self, events: np.ndarray, sensor_size: tuple[int, int, int]) -> np.ndarray:
        """Frames [T, P, H, W] (or [T, P, W]) of event counts, every event of the span counted:
        uint8 where all counts fit, else int16 (:func:`count_dtype`); polarity -1 / +1 or boolean is
        read as OFF / ON. A stream with more than 32,767 events in one bin, pixel and polarity
        raises ValueError naming how many were miscounted."""
        events = normalise_polarity(events)
        has_y = "y" in (events.dtype.names or ())
        sensor = self.sensor_after(sensor_size)
        if len(events) and self.denoise_us > 0 and has_y:
            events = T.Denoise(filter_time=self.denoise_us)(events)
        if len(events) and self.downsample != 1:
            events = T.Downsample(spatial_factor=self.downsample)(events)
        if self.merge_polarity:
            events = T.MergePolarities()(events)
        if len(events) == 0:
            count = self.frame_count(self.duration_us)
            return np.zeros((count, *self.frame_shape(sensor_size, has_y)), dtype=FRAME_DTYPE)
        t = events["t"]
        start = 0 if self.duration_us > 0 else int(t[0])
        span = self.duration_us if self.duration_us > 0 else int(t[-1]) - int(t[0]) + 1
        if self.time_window_us == 0:
            window = math.ceil(span / self.n_time_bins)
            count = self.n_time_bins
        else:
            window, count = round(self.time_window_us), self.frame_count(span)
        frames = T.ToFrame(
            sensor_size=sensor,
            time_window=window,
            start_time=start,
            end_time=start + count * window,
            include_incomplete=False,
        )(events)
        if frames.shape[0] != count:
            raise AssertionError(f"ToFrame made {frames.shape[0]} frames, expected {count}")
        if len(events) > np.iinfo(WIDE_FRAME_DTYPE).max:  # fewer events cannot overflow ToFrame's int16
            in_span = int(np.searchsorted(t, start + count * window) - np.searchsorted(t, start))
            counted = int(frames.sum(dtype=np.int64))
            if counted != in_span:
                raise ValueError(
                    f"frames: more than {np.iinfo(WIDE_FRAME_DTYPE).max} events fell in one bin, pixel and polarity, "
                    f"past what Tonic's ToFrame counts (int16): {in_span} events in the span, {counted} counted; "
                    "use shorter bins (more n_time_bins or a smaller time_window_us) or less downsampling"
                )
        return self.finish(frames)

    def finish(self, frames: np.ndarray) -> np.ndarray:
        """One sample's counts as they are, in the narrowest dtype that holds them
        (:func:`count_dtype`: uint8 or int16, never clipped), or 0/1 spikes (uint8) with ``binary``,
        or normalised (float32) with ``normalise``."""
        return self.finish_split(frames[None])[0]

    def finish_split(self, frames: np.ndarray) -> np.ndarray:
        """:meth:`finish` for a split's frames [N, T, ...], sample by sample."""
        if self.binary:
            frames = np.minimum(frames, 1).astype(FRAME_DTYPE)
        if self.normalise:
            out = np.zeros(frames.shape, dtype=np.float32)
            for i, sample in enumerate(frames):
                active = sample[sample > 0]
                if active.size:
                    out[i] = sample / np.float32(active.mean(dtype=np.float64))
            return out
        if self.binary:
            return frames
        return frames.astype(count_dtype(int(frames.max()) if frames.size else 0), copy=False)


def cache_key(*parts: object) -> str:
    """A short hash of JSON-serialisable parts (dataset, split, source, frame spec, format)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def cache_paths(folder: Path, stem: str) -> tuple[Path, Path]:
    return folder / f"{stem}.frames.npy", folder / f"{stem}.labels.npy"


def read_cache(frames_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """A cache entry's frames (memory-mapped) and labels; None when either file is corrupt
    (truncated, empty, not a .npy array, or frames and labels of different lengths), after deleting
    both and printing a note naming the file on stderr: the caller frames the split again."""
    broken = frames_path
    try:
        frames = np.load(frames_path, mmap_mode="r")
        broken = labels_path
        labels = np.load(labels_path)
        if frames.ndim == 0 or labels.ndim != 1 or len(frames) != len(labels):
            broken = frames_path
            raise ValueError(f"{frames.shape[:1]} frames but {labels.shape[:1]} labels")
    except (ValueError, EOFError) as exc:  # np.load's format errors; an OSError (permissions, memory, I/O) is raised
        print(
            f"snn-drtp: note: frame cache {broken} is corrupt ({type(exc).__name__}: {exc}); "
            "deleted it, rebuilding the frames of this split",
            file=sys.stderr,
        )
        frames_path.unlink(missing_ok=True)
        labels_path.unlink(missing_ok=True)
        return None
    return frames, labels


BIN_US = 5000
"""Width of the bins of :func:`rate_curve` (microseconds)."""
HISTOGRAM_BINS = 64


def event_image(
    events: np.ndarray, polarity: int | None = None, sensor_size: tuple[int, int, int] = (34, 34, 2)
) -> np.ndarray:
    """Accumulated events per pixel [H, W] (of one polarity, or both); N-MNIST's 34 x 34 sensor by default."""
    w, h, _ = sensor_size
    chosen = events if polarity is None else events[events["p"] == polarity]
    image = np.zeros((h, w))
    np.add.at(image, (chosen["y"], chosen["x"]), 1)
    return image


def rate_curve(streams: list[np.ndarray]) -> np.ndarray:
    """Events per 5 ms bin, averaged over samples (the first 320 ms)."""
    counts = np.zeros(HISTOGRAM_BINS)
    for events in streams:
        counts += np.histogram(events["t"], bins=HISTOGRAM_BINS, range=(0, HISTOGRAM_BINS * BIN_US))[0]
    return counts / max(len(streams), 1)
