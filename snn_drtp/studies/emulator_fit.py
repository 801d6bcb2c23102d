"""The emulator against reality: real N-MNIST recordings next to the emulation of the same MNIST
images, and a fit of the emulator's parameters to them.

nmnist-small's training file N is MNIST training image N - 1 and test file 60001 + i is test image
i (checked against the labels). For every pair this compares the events per sample, the ON
fraction, the duration (last minus first event) and the Pearson correlation of the accumulated
event images (34 x 34 counts, both polarities summed; per polarity too), plus the event rate over
time averaged over samples.

A time-accumulated image hides where and when each polarity fires, so the fit scores the frame
correlation: 15.5 ms frames of one recording against the other's, ON and OFF kept apart. On
training recordings only (the 100 test recordings stay held out) it goes in stages, each a search
over a few parameters with the others fixed: the contrast threshold, by bisection, to match the
mean number of events per sample; the display's polarity; each saccade's amplitude (a fraction of
the protocol's displacement), then its start and duration; the image offset; the optics blur and
display black level; the background noise rate from the real
rate in the sensor's corners; and the threshold again.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snn_drtp.core.atomic import atomic_write_json, write_json_and_markdown
from snn_drtp.data.emulator import SENSOR_SIZE, EmulatorParams, EventEmulator
from snn_drtp.data.events import nmnist_small_root
from snn_drtp.data.formats.nmnist import read_nmnist_bin
from snn_drtp.data.frames import BIN_US, FrameSpec, event_image, rate_curve
from snn_drtp.data.static import load_idx_dataset
from snn_drtp.runs import plots

INITIAL_GUESS = EmulatorParams(
    threshold=0.3,
    noise_hz=0.1,
    blur=0.6,
    offset=(0.5, 2.0),
    saccade_starts_us=(5000.0, 107500.0, 210000.0),
    saccade_durations_us=(85000.0, 85000.0, 85000.0),
)
"""Where the fit starts: a DVS-like threshold, the N-MNIST timing read off the event-rate curve."""


@dataclass
class Recordings:
    """Real recordings of one nmnist-small split and the MNIST images they were recorded from."""

    events: list[np.ndarray]
    images: torch.Tensor
    labels: list[int]


def real_recordings(split: str, data_dir: str | Path | None = None, limit: int | None = None) -> Recordings:
    root = nmnist_small_root(data_dir) / split
    train, test = load_idx_dataset("mnist", data_dir)
    mnist, offset = (train, 1) if split == "train" else (test, 60001)
    with (root / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:limit]
    index = [int(row["file"].split(".")[0]) - offset for row in rows]
    labels = [int(row["label"]) for row in rows]
    if labels != mnist.y[index].tolist():
        raise ValueError(f"{root}: labels do not match MNIST images file - {offset}; not the nmnist-small layout")
    events = [read_nmnist_bin(root / row["file"], SENSOR_SIZE) for row in rows]
    return Recordings(events, mnist.x[index, 0], labels)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def corner_rate(streams: list[np.ndarray]) -> float:
    """Background events per pixel per second: the rate in the sensor's four 4 x 4 corners, where
    no digit passes."""
    w, h, _ = SENSOR_SIZE
    count = 0
    for e in streams:
        count += int((((e["x"] < 4) | (e["x"] >= w - 4)) & ((e["y"] < 4) | (e["y"] >= h - 4))).sum())
    seconds = statistics.fmean(float(e["t"][-1] - e["t"][0]) * 1e-6 if len(e) else 0.0 for e in streams)
    return count / max(len(streams), 1) / 64 / max(seconds, 1e-9)


FRAMES = FrameSpec(n_time_bins=20, duration_us=310_000)
"""Frames of 15.5 ms for the per-frame comparison."""


def frame_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames with events of the correlation of the two recordings' frames (ON and OFF
    kept apart): agreement in space, time and polarity at once."""
    fa, fb = FRAMES(a, SENSOR_SIZE), FRAMES(b, SENSOR_SIZE)
    values = [correlation(x, y) for x, y in zip(fa.astype(float), fb.astype(float), strict=True) if x.any() and y.any()]
    return statistics.fmean(values) if values else 0.0


def compare(real: list[np.ndarray], emulated: list[np.ndarray]) -> dict[str, Any]:
    """Per-sample statistics of real and emulated recordings of the same images, and their agreement."""

    def stats(streams: list[np.ndarray]) -> dict[str, list[float]]:
        return {
            "events": [float(len(e)) for e in streams],
            "on_fraction": [float(e["p"].mean()) if len(e) else 0.0 for e in streams],
            "duration_us": [float(e["t"][-1] - e["t"][0]) if len(e) else 0.0 for e in streams],
        }

    r, e = stats(real), stats(emulated)
    corr = [correlation(event_image(a), event_image(b)) for a, b in zip(real, emulated, strict=True)]
    corr_polarity = [
        statistics.fmean(correlation(event_image(a, p), event_image(b, p)) for p in (0, 1))
        for a, b in zip(real, emulated, strict=True)
    ]
    framewise = [frame_correlation(a, b) for a, b in zip(real, emulated, strict=True)]
    curve_r, curve_e = rate_curve(real), rate_curve(emulated)
    summary = {
        f"{key}_{side}": statistics.fmean(values)
        for side, s in (("real", r), ("emulated", e))
        for key, values in s.items()
    }
    summary.update(
        events_ratio=summary["events_emulated"] / summary["events_real"],
        median_correlation=statistics.median(corr),
        median_correlation_per_polarity=statistics.median(corr_polarity),
        median_frame_correlation=statistics.median(framewise),
        rate_curve_distance=float(np.abs(curve_r / curve_r.sum() - curve_e / curve_e.sum()).sum()),
        corner_rate_real=corner_rate(real),
        corner_rate_emulated=corner_rate(emulated),
    )
    return {"summary": summary, "correlation": corr, "real": r, "emulated": e, "curves": [curve_r, curve_e]}


def emulate(recordings: Recordings, params: EmulatorParams, seed: int = 0) -> list[np.ndarray]:
    emulator = EventEmulator(params, seed)
    streams: list[np.ndarray] = []
    for start in range(0, len(recordings.images), 256):
        streams += emulator(recordings.images[start : start + 256], first_index=start)
    return streams


def fit(recordings: Recordings, start: EmulatorParams | None = None, log: Any = print) -> EmulatorParams:
    """Emulator parameters fitted to real recordings, stage by stage (see the module docstring)."""
    params = start or INITIAL_GUESS

    def summary(p: EmulatorParams) -> dict[str, float]:
        return compare(recordings.events, emulate(recordings, p))["summary"]

    def best(candidates: list[EmulatorParams], score: Any, stage: str) -> EmulatorParams:
        scored = [(score(summary(c)), c) for c in candidates]
        value, chosen = min(scored, key=lambda pair: pair[0])
        log(f"fit {stage}: {value:.4f}")
        return chosen

    params = _match_counts(params, summary)
    params = best(
        [replace(params, negative=n) for n in (False, True)],
        lambda s: -s["median_frame_correlation"],
        "display polarity, -median frame correlation",
    )
    nominal = params.saccades
    for k in range(len(params.saccades)):
        params = best(
            [
                replace(
                    params,
                    saccades=(*params.saccades[:k], (a * nominal[k][0], a * nominal[k][1]), *params.saccades[k + 1 :]),
                )
                for a in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
            ],
            lambda s: -s["median_frame_correlation"],
            f"saccade {k + 1} amplitude, -median frame correlation",
        )
        starts, spans = params.saccade_starts_us, params.saccade_durations_us
        params = best(
            [
                replace(
                    params,
                    saccade_starts_us=(*starts[:k], starts[k] + shift, *starts[k + 1 :]),
                    saccade_durations_us=(*spans[:k], span, *spans[k + 1 :]),
                )
                for shift in (-10000.0, -5000.0, -2500.0, 0.0, 2500.0, 5000.0, 10000.0)
                for span in (70000.0, 80000.0, 90000.0, 100000.0, 110000.0, 120000.0)
            ],
            lambda s: -s["median_frame_correlation"],
            f"saccade {k + 1} start and duration, -median frame correlation",
        )
    params = best(
        [
            replace(params, offset=(float(x), float(y)))
            for x in np.arange(-1.5, 2.01, 0.5)
            for y in np.arange(-0.5, 3.01, 0.5)
        ],
        lambda s: -s["median_frame_correlation"],
        "offset, -median frame correlation",
    )
    params = best(
        [replace(params, blur=b, dark=d) for b in (0.0, 0.3, 0.6, 0.9) for d in (0.02, 0.05, 0.1, 0.2)],
        lambda s: -s["median_frame_correlation"],
        "blur and black level, -median frame correlation",
    )
    params = replace(params, noise_hz=round(corner_rate(recordings.events), 3))
    log(f"fit noise: {params.noise_hz} Hz per pixel (the real recordings' rate in the sensor's corners)")
    params = _match_counts(params, summary)
    log(f"fit threshold: {params.threshold}")
    return params


def _match_counts(params: EmulatorParams, summary: Any) -> EmulatorParams:
    """The contrast threshold, by bisection, at which emulated and real mean event counts agree."""
    low, high = 0.05, 3.0
    for _ in range(12):
        middle = (low + high) / 2
        if summary(replace(params, threshold=middle))["events_ratio"] > 1:
            low = middle
        else:
            high = middle
    return replace(params, threshold=round((low + high) / 2, 4))


REPORT = Path(__file__).resolve().parents[2] / "experiments" / "emulator-vs-real"


def run_fit(
    out: str | Path = REPORT, data_dir: str | Path | None = None, fit_on: int = 300, log: Any = print
) -> dict[str, Any]:
    """Fit on the first ``fit_on`` training recordings, then compare the initial and the fitted
    emulator with all 1,000 training and the 100 held-out test recordings; write
    ``report.{md,json}``, ``fitted_params.json`` and ``comparison.png`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = real_recordings("train", data_dir), real_recordings("test", data_dir)
    subset = Recordings(train.events[:fit_on], train.images[:fit_on], train.labels[:fit_on])
    initial = INITIAL_GUESS
    fitted = fit(subset, initial, log)
    results: dict[str, Any] = {"fit_on": fit_on, "initial": initial.to_dict(), "fitted": fitted.to_dict()}
    for name, params in (("initial", initial), ("fitted", fitted)):
        for split, recs in (("train", train), ("test", test)):
            emulated = emulate(recs, params)
            comparison = compare(recs.events, emulated)
            results[f"{name}_{split}"] = comparison["summary"]
            if name == "fitted" and split == "test":
                plots.emulator_comparison(recs.events, emulated, comparison, out / "comparison.png")
    atomic_write_json(out / "fitted_params.json", fitted.to_dict())
    print(write_json_and_markdown(out / "report", results, _markdown(results)))
    return results


def _markdown(results: dict[str, Any]) -> list[str]:
    lines = [
        "# The N-MNIST emulator against real recordings",
        "",
        f"Produced by `snn-drtp emulator-fit`: parameters fitted on the first {results['fit_on']} of the 1,000 real "
        "training recordings of nmnist-small; compared on all 1,000 and on the 100 held-out test recordings, each "
        "real recording next to the emulation of the same MNIST image.",
        "",
        "| emulator | split | events/sample real | emulated | ratio | median image correlation | per polarity "
        "| median frame correlation | ON fraction real / emulated | duration real / emulated (ms) "
        "| rate-curve distance |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("initial", "fitted"):
        for split in ("train", "test"):
            s = results[f"{name}_{split}"]
            lines.append(
                f"| {name} | {split} | {s['events_real']:.0f} | {s['events_emulated']:.0f} | {s['events_ratio']:.3f} | "
                f"{s['median_correlation']:.3f} | {s['median_correlation_per_polarity']:.3f} | "
                f"{s['median_frame_correlation']:.3f} | "
                f"{s['on_fraction_real']:.3f} / {s['on_fraction_emulated']:.3f} | "
                f"{s['duration_us_real'] / 1000:.1f} / {s['duration_us_emulated'] / 1000:.1f} | "
                f"{s['rate_curve_distance']:.3f} |"
            )
    same = EmulatorParams.from_dict(results["fitted"]) == EmulatorParams()
    lines += [
        "",
        f"Fitted parameters (initial guess in brackets); the emulator's defaults are {'' if same else 'NOT '}these:",
        "",
    ]
    for key, value in results["fitted"].items():
        lines.append(f"- `{key}` = {value} ({results['initial'][key]})")
    lines += [
        "",
        "Image correlation: of the events accumulated over the whole recording (34 x 34, both polarities summed; "
        "per polarity: ON and OFF images apart). Frame correlation: of 15.5 ms frames, ON and OFF apart, averaged "
        "over the frames of a recording (what a spiking network sees step by step). The rate-curve distance is the "
        "L1 distance between the real and emulated event-rate curves, each normalised to sum 1 "
        f"({BIN_US // 1000} ms bins); 0 is identical, 2 disjoint.",
        "",
        "![real and emulated](comparison.png)",
    ]
    return lines
