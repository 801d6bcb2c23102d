"""A look at event recordings before training: format, sensor, counts and rates.

For each recording: its format (from its first bytes), the sensor (W, H, P) from its header or,
without one, from its events (largest x + 1, y + 1), the event count N, the duration
D = t_last - t_first, the ON fraction (share of events with p = 1; 2-D sensors only) and the event
rate N / D. A folder (an event folder with labels.csv, or any folder of recordings) adds totals:
recordings per format and per split, all events, the mean duration and rate, the overall ON
fraction and, for an event folder, recordings per class.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from snn_drtp.data.event_folders import list_event_folder
from snn_drtp.data.formats import EventFileError, EventRecording, detect_format, read_recording
from snn_drtp.data.formats.recording import events_sensor
from snn_drtp.data.frames import event_image

SHOWN = 4
"""Recordings drawn by :func:`show_events` by default (the first of each class in a folder)."""
SLICES = 5


@dataclass(frozen=True)
class RecordingInfo:
    path: Path
    format: str
    sensor_size: tuple[int, int, int]
    sensor_from_header: bool
    events: int
    duration_s: float
    on_fraction: float | None
    notes: tuple[str, ...]
    split: str = ""
    label: int | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.duration_s if self.duration_s > 0 else float("nan")


@dataclass(frozen=True)
class Totals:
    """A folder's totals (see the module docstring); ``classes`` counts recordings per class."""

    recordings: int
    formats: dict[str, int]
    splits: dict[str, int]
    sensor: tuple[int, int, int]
    events: int
    mean_duration_s: float
    mean_events_per_s: float
    on_fraction: float | None
    classes: dict[str, int]


@dataclass(frozen=True)
class EventsInfo:
    """Per-recording facts and, for a folder, its class names (if any) and totals."""

    root: Path
    recordings: list[RecordingInfo]
    classes: tuple[str, ...] | None = None
    totals: Totals | None = None


def recording_info(recording: EventRecording, split: str = "", label: int | None = None) -> RecordingInfo:
    events = recording.events
    from_header = recording.sensor_size is not None
    sensor = recording.sensor_size or events_sensor(events)
    on = None if recording.one_dimensional or not len(events) else float(np.mean(events["p"] == 1))
    return RecordingInfo(
        recording.path,
        recording.format,
        sensor,
        from_header,
        len(events),
        recording.duration_us / 1e6,
        on,
        recording.notes,
        split,
        label,
    )


def _recordings_of(path: Path) -> tuple[list[tuple[Path, str, int | None]], tuple[str, ...] | None]:
    """(file, split, label) of every recording of a file or folder, and the folder's class names."""
    if path.is_file():
        return [(path, "", None)], None
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if (path / "labels.csv").is_file() or any((path / s / "labels.csv").is_file() for s in ("train", "test")):
        listing = list_event_folder(path)
        entries: list[tuple[Path, str, int | None]] = [
            (f, split, label)
            for split, files in listing.files.items()
            for f, label in zip(files, listing.labels[split], strict=True)
        ]
        return entries, listing.classes
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".") and p.suffix != ".csv")
    recordings = []
    for f in files:
        try:
            detect_format(f)
        except EventFileError:  # a README, a notes file, an archive: not a recording of a supported format
            continue
        recordings.append(f)
    if not recordings:
        raise FileNotFoundError(f"{path}: the folder holds no recordings of a supported format ({len(files)} files)")
    return [(f, "", None) for f in recordings], None


def events_info(path: str | Path) -> EventsInfo:
    """The facts of one recording, or of every recording in a folder with the folder's totals."""
    path = Path(path)
    entries, classes = _recordings_of(path)
    infos = [recording_info(read_recording(f), split, label) for f, split, label in entries]
    return EventsInfo(path, infos, classes, folder_totals(infos, classes) if path.is_dir() else None)


def folder_totals(infos: list[RecordingInfo], classes: tuple[str, ...] | None) -> Totals:
    """A folder's totals (see the module docstring)."""
    events = sum(i.events for i in infos)
    ons = [(i.on_fraction or 0.0) * i.events for i in infos if i.on_fraction is not None]
    counted = sum(i.events for i in infos if i.on_fraction is not None)
    labelled = Counter(i.label for i in infos if i.label is not None)
    names = {k: (classes[k] if classes and k < len(classes) else str(k)) for k in labelled}
    width, height, polarities = (max(i.sensor_size[k] for i in infos) for k in range(3))
    rates = [i.events_per_s for i in infos if i.duration_s > 0]
    return Totals(
        recordings=len(infos),
        formats=dict(Counter(i.format for i in infos)),
        splits=dict(Counter(i.split for i in infos if i.split)),
        sensor=(width, height, polarities),
        events=events,
        mean_duration_s=float(np.mean([i.duration_s for i in infos])),
        mean_events_per_s=float(np.mean(rates)) if rates else float("nan"),
        on_fraction=sum(ons) / counted if counted else None,
        classes={names[k]: labelled[k] for k in sorted(labelled)},
    )


def format_info(info: EventsInfo, limit: int = 20) -> str:
    """``info`` as text: a table of the recordings (the first ``limit``) and the totals."""
    rows = [
        "| recording | split | label | format | sensor (W x H x P) | events | duration (s) | ON fraction | events/s |",
        "|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for i in info.recordings[:limit]:
        label = "" if i.label is None else (info.classes[i.label] if info.classes else str(i.label))
        sensor = "x".join(map(str, i.sensor_size)) + ("" if i.sensor_from_header else " (from events)")
        on = "" if i.on_fraction is None else f"{i.on_fraction:.3f}"
        name = i.path.relative_to(info.root) if info.totals and i.path.is_relative_to(info.root) else i.path
        rows.append(
            f"| {name} | {i.split} | {label} | {i.format} | {sensor} | {i.events} | {i.duration_s:.3f} | {on} | "
            f"{i.events_per_s:,.0f} |"
        )
    if len(info.recordings) > limit:
        rows.append(f"| ... {len(info.recordings) - limit} more | | | | | | | | |")
    notes = [f"note: {i.path.name}: {n}" for i in info.recordings[:limit] for n in i.notes]
    t = info.totals
    if t is None:
        return "\n".join(rows + notes)
    lines = [
        f"{t.recordings} recordings ({', '.join(f'{n} {f}' for f, n in t.formats.items())})"
        + (f"; splits: {', '.join(f'{s} {n}' for s, n in t.splits.items())}" if t.splits else ""),
        f"sensor: {'x'.join(map(str, t.sensor))} (the largest over the recordings)",
        f"events: {t.events:,} in all; mean duration {t.mean_duration_s:.3f} s, "
        f"mean rate {t.mean_events_per_s:,.0f} events/s"
        + ("" if t.on_fraction is None else f", ON fraction {t.on_fraction:.3f}"),
    ]
    if t.classes:
        lines.append("classes: " + ", ".join(f"{k} {n}" for k, n in t.classes.items()))
    return "\n".join([*rows, *notes, "", *lines])


def _on_off_image(events: np.ndarray, sensor_size: tuple[int, int, int]) -> np.ndarray:
    """An RGB image [H, W, 3] of accumulated events: ON in red, OFF in blue, each scaled by the
    brighter channel's 99th percentile of nonzero pixels (so a few hot pixels do not black it out)."""
    on, off = event_image(events, 1, sensor_size), event_image(events, 0, sensor_size)
    nonzero = np.concatenate([on[on > 0], off[off > 0]])
    scale = float(np.percentile(nonzero, 99)) if nonzero.size else 1.0
    return np.clip(np.stack([on, np.zeros_like(on), off], axis=-1) / max(scale, 1.0), 0, 1)


def event_overview(
    recordings: Sequence[tuple[str, np.ndarray]], sensor_size: tuple[int, int, int], path: str | Path, slices: int = 5
) -> Figure:
    """One row per recording (name, events): for a 2-D sensor the accumulated image and ``slices``
    equal time slices of it (ON red, OFF blue; each slice titled with its time span in ms); for a
    1-D sensor (events without y) a raster of channel against time, coloured by polarity."""
    one_d = any("y" not in (ev.dtype.names or ()) for _, ev in recordings)
    rows = max(len(recordings), 1)
    columns = 1 if one_d else slices + 1
    fig, axes = plt.subplots(rows, columns, figsize=(9 if one_d else 1.7 * columns, 2.2 * rows), squeeze=False)
    for row, (name, events) in enumerate(recordings):
        t = events["t"] / 1000.0
        if one_d:
            ax = axes[row, 0]
            for polarity, colour in ((0, "tab:blue"), (1, "tab:red")):
                chosen = events["p"] == polarity
                if np.any(chosen):
                    ax.scatter(t[chosen], events["x"][chosen], s=2, c=colour, label=f"p = {polarity}", linewidths=0)
            ax.set_ylim(-0.5, sensor_size[0] - 0.5)
            ax.set_ylabel("channel")
            ax.set_title(f"{name}: {len(events):,} events", fontsize=9)
            if row == rows - 1:
                ax.set_xlabel("time (ms)")
            continue
        axes[row, 0].imshow(_on_off_image(events, sensor_size), interpolation="nearest")
        axes[row, 0].set_title(f"{name}\n{len(events):,} events", fontsize=8)
        start, end = (float(t[0]), float(t[-1])) if len(t) else (0.0, 0.0)
        edges = np.linspace(start, end, slices + 1)
        for k in range(slices):
            ax = axes[row, k + 1]
            inside = (t >= edges[k]) & ((t < edges[k + 1]) | (k == slices - 1))
            ax.imshow(_on_off_image(events[inside], sensor_size), interpolation="nearest")
            ax.set_title(f"{edges[k]:.0f}-{edges[k + 1]:.0f} ms", fontsize=8)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    kind = "channel raster (p = 1 red, p = 0 blue)" if one_d else "accumulated events, time slices (ON red, OFF blue)"
    fig.suptitle(f"{kind}; sensor {'x'.join(map(str, sensor_size))}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return fig


def show_events(path: str | Path, out: str | Path, recordings: int = SHOWN, slices: int = SLICES) -> Figure:
    """Draw a file, or the first ``recordings`` of a folder (one per class first, for an event
    folder), with :func:`event_overview` into the PNG ``out``; the sensor is the largest the
    recordings' headers or events give."""
    path, out = Path(path), Path(out)
    if recordings < 1 or slices < 1:
        raise ValueError(f"events show draws at least 1 recording and 1 slice; got {recordings} and {slices}")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give the PNG file to write, e.g. {out / 'overview.png'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    entries, classes = _recordings_of(path)
    first: dict[int | None, int] = {}  # one per class first (in order), then the rest in order
    for index, (_, _, label) in enumerate(entries):
        first.setdefault(label, index)
    picked = sorted(first.values()) if len(first) > 1 else []
    taken = set(picked)
    chosen = [entries[i] for i in picked] + [e for i, e in enumerate(entries) if i not in taken]
    shown = []
    for file, _, label in chosen[:recordings]:
        recording = read_recording(file)
        name = file.name if label is None else f"{file.name} ({classes[label] if classes else label})"
        shown.append((name, recording_info(recording), recording.events))
    sensor = tuple(max(1, *(info.sensor_size[k] for _, info, _ in shown)) for k in range(3))
    return event_overview([(n, ev) for n, _, ev in shown], (sensor[0], sensor[1], sensor[2]), out, slices)
