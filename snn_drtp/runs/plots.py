"""Matplotlib figures of a run's metrics, written as PNG.

Every function saves its figure to ``path`` and returns the (closed) :class:`~matplotlib.figure.Figure`,
so that tests can read its axes, ticks and legends. Conventions shared by all figures: log axes
carry plain number labels (1, 2, 5, 10, not 10^0 or 9x10^0), epoch and time-step axes carry
integer ticks only, and legends with more than a few entries sit outside the axes so that they
never hide data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from snn_drtp.data.frames import BIN_US, event_image
from snn_drtp.spiking.engine import SpikingEngine
from snn_drtp.spiking.monitors import Recording, record
from snn_drtp.temporal.engine import TemporalEngine

_LOG_STEPS: tuple[tuple[float, ...], ...] = ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0))
"""Mantissas of the tick candidates of a log axis, coarsest first."""

_FEW_EPOCHS = 20
"""Runs with at most this many epochs get a dot per epoch on their curves."""

_INSIDE_LEGEND_MAX = 4
"""Legends with at most this many entries stay inside the axes (``loc="best"``); longer ones go outside."""


def plain_number(value: float, _position: object = None) -> str:
    """A tick label without powers of ten: 0.01, 0.5, 2, 10, 1000 (at most 6 significant digits)."""
    return str(np.format_float_positional(value, precision=6, unique=True, fractional=False, trim="-"))


def log_ticks(low: float, high: float, min_ticks: int = 4) -> list[float]:
    """Tick positions in [low, high] (both > 0) for a log axis: evenly spaced plain numbers when the
    range is under a factor of 5 (30, 40, ... 90), else powers of ten if that gives at least
    ``min_ticks``, else 1-2-5 per decade, else 1-2-3-4-5-6-8."""
    if high / low < 5:
        even = [float(t) for t in MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)]
        even = [t for t in even if low <= t <= high and t > 0]
        if len(even) >= 3:
            return even
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    ticks: list[float] = []
    for steps in _LOG_STEPS:
        ticks = [float(f"{m * 10.0**e:.6g}") for e in range(first, last + 1) for m in steps]
        ticks = [t for t in ticks if low <= t <= high]
        if len(ticks) >= min_ticks:
            return ticks
    return ticks


def plain_log_axis(ax: Axes, axis: str = "y") -> None:
    """Put ``ax``'s ``axis`` ("x" or "y") on a log scale labelled with plain numbers at the data's
    current limits (minor ticks unlabelled, kept for the grid)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    ax.autoscale_view()
    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
        return
    target.set_major_locator(FixedLocator(log_ticks(low, high)))
    target.set_major_formatter(FuncFormatter(plain_number))
    target.set_minor_formatter(NullFormatter())


def integer_axis(ax: Axes, axis: str = "x") -> None:
    """Ticks of ``ax``'s ``axis`` at integers only (epochs, time steps, neuron indices)."""
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def place_legend(ax: Axes, handles: Sequence[Any] | None = None, labels: Sequence[str] | None = None) -> None:
    """A legend that does not cover data: inside at the emptiest place (``loc="best"``, translucent)
    for a few entries, outside to the right of the axes for more. Nothing if there is nothing to name."""
    if handles is None or labels is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if len(handles) <= _INSIDE_LEGEND_MAX:
        ax.legend(handles, labels, fontsize=8, loc="best", framealpha=0.85)
    else:
        ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _save(fig: Figure, path: str | Path, dpi: int = 120) -> Figure:
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return fig


def _markers(m: dict[str, Any]) -> dict[str, Any]:
    """Dots on the points of a run with few epochs, so that a run of one epoch is still seen."""
    return {"marker": "o", "ms": 3} if len(m.get("epoch", [])) <= _FEW_EPOCHS else {}


def learning_curves(runs: dict[str, dict[str, Any]], path: str | Path, title: str = "") -> Figure:
    """Test (solid) and train (dashed) error in percent, or loss where a run has no error, per epoch
    on a log axis with plain number labels; one colour per run label, named in a legend outside the
    axes together with the two line styles (a run without epochs is named "no epochs yet"; values
    of 0, which a log axis cannot show, are noted in the legend)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    handles: list[Line2D] = []
    kinds: set[str] = set()
    zeros = False
    for i, (label, m) in enumerate(runs.items()):
        colour = f"C{i % 10}"
        kind = "error" if m.get("test_error") and m["test_error"][0] is not None else "loss"
        if not m.get("epoch"):
            handles.append(Line2D([], [], color=colour, label=f"{label} (no epochs yet)"))
            continue
        kinds.add(kind)
        styles: tuple[tuple[str, dict[str, Any]], ...] = (("test", {}), ("train", {"ls": "--", "alpha": 0.7}))
        for split, style in styles:
            values = m[f"{split}_{kind}"]
            zeros = zeros or any(v is not None and v <= 0 for v in values)
            ax.plot(m["epoch"], [np.nan if v is None else v for v in values], color=colour, **style, **_markers(m))
        handles.append(Line2D([], [], color=colour, label=label))
    handles += [
        Line2D([], [], color="k", label="test"),
        Line2D([], [], color="k", ls="--", alpha=0.7, label="train"),
    ]
    if zeros:
        handles.append(Line2D([], [], ls="none", label="(0 lies below the log axis)"))
    ax.set_ylabel({"error": "error (%)", "loss": "loss"}[next(iter(kinds))] if len(kinds) == 1 else "error (%) or loss")
    plain_log_axis(ax, "y")
    integer_axis(ax, "x")
    ax.set_xlabel("epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.set_title(title)
    return _save(fig, path)


def alignment_angles(runs: dict[str, dict[str, Any]], path: str | Path, title: str = "", exact: str = "BP") -> Figure:
    """Angle between each rule's learning signal and the exact gradient's (``exact``: BP in the
    rate engine, BPTT in the spiking one), per hidden layer (line style) and epoch; the grey line
    at 90 degrees, named in the legend, is no alignment at all (orthogonal updates)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    top = 90.0
    for i, (label, m) in enumerate(runs.items()):
        for j, (layer, values) in enumerate(sorted(m.get("angle_to_bp", {}).items())):
            style = {"color": f"C{i % 10}", "ls": ["-", "--", ":", "-."][j % 4], **_markers(m)}
            ax.plot(m["epoch"], values, label=f"{label} {layer}", **style)
            finite = [v for v in values if v is not None and math.isfinite(v)]
            top = max(top, *finite) if finite else top
    ax.axhline(90, color="grey", lw=0.8, label="90°: orthogonal, no alignment")
    ax.set_ylim(0, min(180.0, 10 * math.ceil(top / 10) + 10))
    ax.set_xlabel("epoch")
    integer_axis(ax, "x")
    ax.set_ylabel(f"angle to {exact} (deg)")
    ax.grid(True, alpha=0.3)
    place_legend(ax)
    ax.set_title(title)
    return _save(fig, path)


def _digit_caption(label: int | None, prediction: int | None) -> str:
    parts = [] if label is None else [f"label {label}"]
    if prediction is not None:
        parts.append(f"predicted {prediction}")
        if label is not None:
            parts.append("correct" if prediction == label else "wrong")
    return ", ".join(parts)


def spike_raster(
    rec: Recording,
    path: str | Path,
    example: int = 0,
    title: str = "",
    label: int | None = None,
    prediction: int | None = None,
) -> Figure:
    """Spike raster of one example: one panel per layer (input, every hidden layer, output), neuron
    index against time step, a tick per spike. The title names the digit's ``label`` and the
    network's ``prediction`` when given; on the output panel the label's row is shaded green and
    every class index is a tick, and a wrong prediction's row is shaded red."""
    keys = sorted(rec.spikes)
    fig, axes = plt.subplots(len(keys), 1, figsize=(6.4, 1.6 + 1.4 * len(keys)), sharex=True, squeeze=False)
    steps = rec.layer_spikes(keys[0]).shape[0]
    for ax, k in zip(axes[:, 0], keys, strict=True):
        s = rec.layer_spikes(k)[:, example]
        t, n = torch.nonzero(s, as_tuple=True)
        ax.scatter(t.numpy(), n.numpy(), s=2 if s.shape[1] > 50 else 12, marker="|", color="k")
        name = "input" if k == 0 else "output" if k == keys[-1] else f"layer {k}"
        ax.set_ylabel(f"{name}\nneuron index")
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
        integer_axis(ax, "y")
        if k == keys[-1] and s.shape[1] <= 20:
            ax.set_yticks(range(s.shape[1]))
            ax.tick_params(axis="y", labelsize=7)
            if label is not None and 0 <= label < s.shape[1]:
                ax.axhspan(label - 0.5, label + 0.5, color="tab:green", alpha=0.2, lw=0, label=f"label {label}")
            if prediction is not None and prediction != label and 0 <= prediction < s.shape[1]:
                span = (prediction - 0.5, prediction + 0.5)
                ax.axhspan(*span, color="tab:red", alpha=0.2, lw=0, label=f"predicted {prediction}")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    last = axes[-1, 0]
    last.set_xlabel("time step")
    last.set_xlim(-0.5, steps - 0.5)
    integer_axis(last, "x")
    caption = _digit_caption(label, prediction)
    fig.suptitle(f"{title}: {caption}" if title and caption else title or caption)
    fig.tight_layout()
    return _save(fig, path)


def _recorded_neurons(rec: Recording, width: int) -> list[int]:
    """The indices of the neurons whose membrane potentials ``rec`` kept in a layer of ``width``."""
    chosen = range(min(rec.neurons, width)) if isinstance(rec.neurons, int) else rec.neurons
    return [i for i in chosen if i < width]


def _winner(counts: torch.Tensor, v: torch.Tensor, neurons: list[int]) -> int:
    """The output neuron with most spikes; a tie goes, as in the readout, to the one with the larger
    summed membrane potential among the recorded tied neurons (the first tied one if none was recorded)."""
    tied = [int(i) for i in torch.nonzero(counts == counts.max()).flatten()]
    recorded = [i for i in tied if i in neurons]
    if not recorded:
        return tied[0]
    return max(recorded, key=lambda i: float(v[:, neurons.index(i)].sum()))


def membrane_traces(rec: Recording, path: str | Path, threshold: float, example: int = 0, title: str = "") -> Figure:
    """Pre-reset membrane potentials of the recorded neurons of every layer (one panel per layer,
    each with its own legend naming the neuron indices) and the firing threshold (dashed, in the
    legend). On the output panel the winning neuron, the one with most output spikes, is drawn
    thick and named with its spike count; if its potential was not recorded the legend says so."""
    layers = rec.layers
    fig, axes = plt.subplots(len(layers), 1, figsize=(7.6, 1.2 + 1.8 * len(layers)), sharex=True, squeeze=False)
    for ax, k in zip(axes[:, 0], layers, strict=True):
        v = rec.layer_v(k)[:, example]
        spikes = rec.layer_spikes(k)[:, example]
        neurons = _recorded_neurons(rec, spikes.shape[1])
        output = k == layers[-1]
        counts = spikes.sum(0)
        winner = _winner(counts, v, neurons) if output and float(counts.max()) > 0 else None
        for j, neuron in enumerate(neurons):
            style: dict[str, Any] = {"lw": 2.4, "zorder": 3} if neuron == winner else {"lw": 1, "alpha": 0.8}
            name = f"neuron {neuron}"
            if neuron == winner:
                name += f": most spikes ({int(counts[neuron])})"
            ax.plot(v[:, j].numpy(), color=f"C{j % 10}", label=name, **style)
        ax.axhline(threshold, color="k", ls="--", lw=0.8, label=f"threshold {threshold:g}")
        handles, names = ax.get_legend_handles_labels()
        if output and winner is None:
            handles.append(Line2D([], [], ls="none"))
            names.append("no output spikes")
        elif output and winner not in neurons:
            handles.append(Line2D([], [], ls="none"))
            names.append(f"most spikes: neuron {winner} ({int(counts[winner])}), v not recorded")
        ax.legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        ax.set_ylabel(f"v, {'output' if output else f'layer {k}'}")
        ax.grid(True, alpha=0.3)
    last = axes[-1, 0]
    last.set_xlabel("time step")
    integer_axis(last, "x")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def rate_bin_edges(steps: int) -> np.ndarray:
    """Histogram bin edges (k - 0.5) / T, k = 0 ... T + 1: one bin centred on each rate k / T a
    presentation of T steps can produce."""
    return (np.arange(steps + 2) - 0.5) / steps


def rate_histograms(rec: Recording, weights: list[torch.Tensor], path: str | Path, title: str = "") -> Figure:
    """Top: how many neurons fire at each rate (spikes per step, one bin per possible rate k/T,
    every neuron counted once per recorded example), per layer, log count axis; bottom: the
    distribution (probability density) of each layer's weights on shared bins."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.0))
    examples = 0
    for k in rec.layers:
        spikes = rec.layer_spikes(k)
        steps, examples, width = spikes.shape
        top.hist(
            rec.rates(k).reshape(-1).numpy(),
            bins=rate_bin_edges(steps),
            alpha=0.6,
            label=f"{'output' if k == rec.layers[-1] else f'layer {k}'} ({width} neurons)",
        )
    steps = rec.layer_spikes(rec.layers[0]).shape[0]
    top.set_xlabel(f"firing rate (spikes per step, T = {steps} steps)")
    top.set_ylabel(f"neurons, summed over\n{examples} examples" if examples > 1 else "neurons")
    plain_log_axis(top, "y")
    top.set_xlim(-0.5 / steps, 1 + 0.5 / steps)
    place_legend(top)
    flat = [w.detach().reshape(-1).cpu().numpy() for w in weights]
    edges = np.histogram_bin_edges(np.concatenate(flat), bins=80) if flat else 80
    for k, (w, values) in enumerate(zip(weights, flat, strict=True), start=1):
        bottom.hist(values, bins=edges, alpha=0.6, density=True, label=f"W_{k} ({' x '.join(map(str, w.shape))})")
    bottom.set_xlabel("weight")
    bottom.set_ylabel("probability density")
    place_legend(bottom)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def gap_versus_steps(rows: list[dict[str, Any]], path: str | Path) -> Figure:
    """Spiking test error (dots) after the sweep's epochs against the number of steps T (log axis,
    one tick per T), with the rate network's test error (dashed) as the T-free reference."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ts = [r["T"] for r in rows]
    ax.plot(ts, [r["spiking"] for r in rows], "o-", label="spiking DRTP")
    ax.plot(ts, [r["rate"] for r in rows], "k--", label="rate DRTP (tanh), no T")
    ax.set_xscale("log")
    ax.set_xticks(ts, [str(t) for t in ts])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("time steps per presentation T")
    ax.set_ylabel("test error (%)")
    ax.grid(True, alpha=0.3)
    place_legend(ax)
    ax.set_title("spiking DRTP against its rate reference, by T")
    fig.tight_layout()
    return _save(fig, path)


def emulator_comparison(real: list, emulated: list, comparison: dict[str, Any], path: str | Path) -> Figure:
    """Real and emulated recordings of the same images side by side (ON red, OFF blue; each pair's
    image correlation above it), the mean event rate over time and the events per sample, emulated
    against real, with the line of equal counts."""
    shown = min(6, len(real))
    fig = plt.figure(figsize=(11, 6.5))
    grid = fig.add_gridspec(3, max(shown, 2))
    half = max(shown, 2) // 2
    for column in range(shown):
        for row, (streams, name) in enumerate(((real, "real"), (emulated, "emulated"))):
            ax = fig.add_subplot(grid[row, column])
            on, off = event_image(streams[column], 1), event_image(streams[column], 0)
            scale = max(on.max(), off.max(), 1)
            ax.imshow(np.stack([on / scale, np.zeros_like(on), off / scale], axis=-1))
            ax.set_xticks([])
            ax.set_yticks([])
            if column == 0:
                ax.set_ylabel(name)
            if row == 0:
                ax.set_title(f"corr {comparison['correlation'][column]:.2f}", fontsize=9)
    curves = fig.add_subplot(grid[2, :half])
    t = np.arange(len(comparison["curves"][0])) * BIN_US / 1000
    curves.plot(t, comparison["curves"][0], label="real")
    curves.plot(t, comparison["curves"][1], label="emulated")
    curves.set_xlabel("time (ms)")
    curves.set_ylabel(f"events per {BIN_US // 1000} ms\n(mean per sample)")
    curves.legend(fontsize=8, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    counts = fig.add_subplot(grid[2, half:])
    counts.scatter(comparison["real"]["events"], comparison["emulated"]["events"], s=6, label="one sample")
    top = max(max(comparison["real"]["events"]), max(comparison["emulated"]["events"]))
    counts.plot([0, top], [0, top], color="grey", lw=0.8, label="equal counts")
    counts.set_xlabel("events per sample, real")
    counts.set_ylabel("events per sample,\nemulated")
    place_legend(counts)
    fig.suptitle("N-MNIST: real recordings (top) and the emulation of the same digits (ON red, OFF blue)")
    fig.tight_layout()
    return _save(fig, path, dpi=110)


def seed_bands(groups: dict[str, list[dict[str, Any]]], path: str | Path, title: str = "", exact: str = "BP") -> Figure:
    """The paper's Figures 2 and 3 layout: (A) train and (B) test error in percent (loss where the
    runs have no error), (C, D, ...) each hidden layer's angle to ``exact``; per group (a rule), the
    mean over its runs (seeds) per epoch with a band of one standard deviation, over the epochs all
    its runs have reached. Errors and losses on a log scale, as in the paper; one legend below."""
    first = next((m for runs in groups.values() for m in runs if m.get("epoch")), {})
    kind = "error" if first.get("test_error") and first["test_error"][0] is not None else "loss"
    layers = sorted({layer for runs in groups.values() for m in runs for layer in m.get("angle_to_bp", {})})
    panels = [f"train_{kind}", f"test_{kind}", *(f"angle {layer}" for layer in layers)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False, layout="constrained")
    for p, (ax, panel) in enumerate(zip(axes[0], panels, strict=True)):
        for i, (label, runs) in enumerate(groups.items()):
            epochs = min((len(m.get("epoch", [])) for m in runs), default=0)
            if epochs == 0:
                continue
            if panel.startswith("angle "):
                series = [m.get("angle_to_bp", {}).get(panel.removeprefix("angle "), [])[:epochs] for m in runs]
            else:
                series = [m[panel][:epochs] for m in runs]
            if any(len(s) < epochs for s in series):
                continue
            values = np.array(series, dtype=float)
            mean, std = values.mean(0), values.std(0, ddof=1) if len(series) > 1 else np.zeros(epochs)
            x = np.arange(1, epochs + 1)
            ax.plot(x, mean, color=f"C{i % 10}", label=f"{label} (n={len(series)})")
            ax.fill_between(x, mean - std, mean + std, color=f"C{i % 10}", alpha=0.2, lw=0)
        name = panel.replace("_", " ")
        unit = " (%)" if kind == "error" and not panel.startswith("angle") else ""
        ax.set_title(f"({chr(65 + p)}) {name}{unit}" if not panel.startswith("angle") else f"({chr(65 + p)}) {name}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"angle to {exact} (deg)" if panel.startswith("angle") else f"{name}{unit}")
        if panel.startswith("angle"):
            ax.axhline(90, color="grey", lw=0.8)
        elif ax.get_lines() and all(min(line.get_ydata()) > 0 for line in ax.get_lines()):
            ax.set_yscale("log")  # a band below zero is cut at half the lowest mean
            ax.set_ylim(bottom=min(min(line.get_ydata()) for line in ax.get_lines()) / 2)
        ax.grid(True, alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6), fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def spike_rate_gap(gaps: dict[tuple[str, ...], dict[int, list[float]]], path: str | Path, title: str = "") -> Figure:
    """The spike-versus-rate gap in percentage points against T: one line per key (dataset,
    network, epochs, encoder, rule), the mean over seeds with error bars of one standard deviation
    (none for a single seed); 0 (no gap) in grey."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    every_t: set[int] = set()
    for i, (key, by_steps) in enumerate(sorted(gaps.items())):
        steps = sorted(by_steps)
        means = [float(np.mean(by_steps[t])) for t in steps]
        stds = [float(np.std(by_steps[t], ddof=1)) if len(by_steps[t]) > 1 else 0.0 for t in steps]
        ax.errorbar(
            steps,
            means,
            yerr=stds,
            color=f"C{i % 10}",
            marker="o",
            ms=4,
            capsize=3,
            label=", ".join(key),
        )
        every_t.update(steps)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sorted(every_t)))
    ax.xaxis.set_major_formatter(FuncFormatter(plain_number))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("time steps T")
    ax.set_ylabel("spiking - rate test error (pp)")
    ax.grid(True, alpha=0.3)
    place_legend(ax)
    ax.set_title(title)
    return _save(fig, path)


def activation_density(
    densities: dict[str, list[float]], edges: list[float], path: str | Path, title: str = ""
) -> Figure:
    """Supplementary Figure 4: the estimated probability density of hidden activations (a
    histogram's density between ``edges``, one list per rule), one panel per rule, on a log axis."""
    fig, axes = plt.subplots(1, len(densities), figsize=(3.6 * len(densities), 3.2), squeeze=False, sharey=True)
    for p, (ax, (label, density)) in enumerate(zip(axes[0], densities.items(), strict=True)):
        ax.stairs(np.maximum(density, 1e-4), edges, fill=True, color=f"C{p % 10}", alpha=0.7)
        ax.set_yscale("log")
        ax.set_title(f"({chr(65 + p)}) {label}")
        ax.set_xlabel("hidden activation y")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("probability density")
    fig.suptitle(title, y=1.04)
    return _save(fig, path)


def activity_figures(engine: SpikingEngine, test: Any, out: Path) -> Recording:
    """The activity of a trained spiking network on 100 test digits (``test``: a split with
    ``x`` and ``y``), recorded as in evaluation: a spike raster and membrane traces of the first
    digit (the output neurons 0-3 and the predicted one), and firing-rate and weight histograms,
    written to ``out`` as raster.png, membrane.png and rates_weights.png. Returns the recording."""
    prediction = int(engine.predict(test.x[:1])[1][0])  # test digit 0, encoded as in record
    rec = record(engine, test.x[:100], neurons=sorted({0, 1, 2, 3, prediction}))
    out.mkdir(parents=True, exist_ok=True)
    spike_raster(
        rec,
        out / "raster.png",
        title="trained spiking DRTP network, one test digit",
        label=int(test.y[0]),
        prediction=prediction,
    )
    membrane_traces(rec, out / "membrane.png", engine.options.neuron.threshold, title="membrane potentials (pre-reset)")
    rate_histograms(
        rec,
        [layer.weight for layer in engine.params.layers],
        out / "rates_weights.png",
        title="firing rates on 100 test digits; trained weights",
    )
    return rec


def temporal_activity(engine: TemporalEngine, test: Any, path: str | Path) -> Figure:
    """One test example through a trained temporal network: its input spikes, a raster of each
    hidden (recurrent or feed-forward) layer, and the readout's membrane y_c(t) of every class with
    the loss window shaded, the true class drawn thick; written to ``path``."""
    x, label = test.inputs(slice(0, 1)), int(test.y[0])
    seen: dict[int, list[torch.Tensor]] = {}
    result = engine.simulate(x, lambda k, z, v: seen.setdefault(k, []).append(z[0].cpu()))
    spikes = x.spikes[:, 0].reshape(x.spikes.shape[0], -1).cpu()
    K = engine.params.n_layers
    rows = [("input", spikes)] + [
        (f"layer {k} ({engine.params.spec.layers[k - 1].kind})", torch.stack(seen[k])) for k in range(1, K)
    ]
    fig, axes = plt.subplots(len(rows) + 1, 1, figsize=(7, 2.0 * (len(rows) + 1)), sharex=True)
    for ax, (name, z) in zip(axes, rows, strict=False):
        t, n = torch.nonzero(z > 0, as_tuple=True) if engine.spiking or name == "input" else (None, None)
        if t is not None and n is not None:
            ax.scatter(t.numpy(), n.numpy(), s=2, c="k", marker="|")
        else:
            ax.imshow(z.T.numpy(), aspect="auto", cmap="coolwarm", vmin=-1, vmax=1, origin="lower")
        ax.set_ylabel(f"{name}\nunit")
        ax.set_ylim(-0.5, z.shape[1] - 0.5)
    y = torch.stack(seen[K])
    steps = y.shape[0]
    window = engine.options.readout.loss_steps or steps
    readout = axes[-1]
    readout.axvspan(steps - min(window, steps) - 0.5, steps - 0.5, color="0.9", label="loss window")
    for c in range(y.shape[1]):
        readout.plot(y[:, c].numpy(), lw=2.5 if c == label else 0.8, label=f"class {c}" if c == label else None)
    readout.set_ylabel("readout y_c(t)")
    readout.set_xlabel("time step")
    place_legend(readout)
    predicted = int(result.prediction[0])
    fig.suptitle(f"one test example: class {label}, predicted {predicted}")
    fig.tight_layout()
    return _save(fig, path)
