"""The figures of ``snn_drtp.runs.plots`` on small synthetic inputs: plain log tick labels, integer
epochs and time steps, labelled axes, legends that name the references and do not cover data,
the raster's digit caption, the membrane plot's winner and rate bins centred on k/T."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from test_spiking_updates import engine_for

from snn_drtp.data.formats import EVENT_DTYPE
from snn_drtp.runs import plots
from snn_drtp.spiking.monitors import Recording, record
from snn_drtp.studies.emulator_fit import compare

STEPS = 10


def tick_texts(ax: Axes) -> list[str]:
    """Every non-empty tick label of both axes, major and minor."""
    labels: list[Text] = []
    for axis in (ax.xaxis, ax.yaxis):
        labels += axis.get_majorticklabels() + axis.get_minorticklabels()
    return [t.get_text() for t in labels if t.get_text()]


def assert_plain_ticks(ax: Axes) -> None:
    texts = tick_texts(ax)
    assert texts, "no tick labels at all"
    for text in texts:
        assert "times10" not in text and "^{" not in text and "$" not in text and "e-" not in text, text


def assert_integer_ticks(ax: Axes, axis: str = "x") -> None:
    target = ax.xaxis if axis == "x" else ax.yaxis
    low, high = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    shown = [t for t in target.get_majorticklocs() if low <= t <= high]
    assert len(shown) >= 2
    assert all(float(t).is_integer() for t in shown), shown
    labels = [t.get_text() for t in target.get_majorticklabels() if t.get_text()]
    assert all("." not in text for text in labels), labels


def legend_texts(legend: Legend | None) -> list[str]:
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def covered_points(fig: Figure, ax: Axes) -> int:
    """How many points of the axes' lines (densified along each segment) and scatter markers the
    legend's box covers, in display coordinates."""
    legend = ax.get_legend()
    assert legend is not None
    box = legend.get_window_extent(FigureCanvasAgg(fig).get_renderer())
    points = []
    for line in ax.get_lines():
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        xy = xy[np.isfinite(xy).all(1)]
        points += [a + s * (b - a) for a, b in itertools.pairwise(xy) for s in np.linspace(0, 1, 50)]
    for collection in ax.collections:
        points += list(collection.get_offset_transform().transform(collection.get_offsets()))
    return sum(int(box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1) for x, y in points)


def outside(fig: Figure, ax: Axes) -> bool:
    """Whether the axes' legend lies wholly outside the axes."""
    legend = ax.get_legend()
    assert legend is not None
    renderer = FigureCanvasAgg(fig).get_renderer()
    return not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def metrics(epochs: int, start: float, end: float, angles: bool = True) -> dict[str, Any]:
    """A run's metrics with errors falling geometrically from ``start`` to ``end`` percent."""
    test = np.geomspace(start, end, epochs).tolist()
    m: dict[str, Any] = {
        "epoch": list(range(1, epochs + 1)),
        "test_error": test,
        "train_error": [0.8 * e for e in test],
        "test_loss": [0.01 * e for e in test],
        "train_loss": [0.008 * e for e in test],
        "angle_to_bp": {},
    }
    if angles:
        m["angle_to_bp"] = {
            "layer1": np.linspace(55, 86, epochs).tolist(),
            "layer2": np.linspace(60, 88, epochs).tolist(),
        }
    return m


@pytest.fixture(scope="module")
def recording() -> tuple[Recording, torch.Tensor]:
    """A recording of 4 examples of a 5-4-5 LIF network over STEPS steps (every layer spikes), with
    the membranes of neurons 0 and 1, and the output spike counts of example 0."""
    engine = engine_for(n_out=5, steps=STEPS)
    x = torch.rand(4, 1, 1, 5, generator=torch.Generator().manual_seed(0))
    rec = record(engine, x, neurons=2)
    counts = rec.layer_spikes(2)[:, 0].sum(0)
    assert float(counts.max()) > 0 and all(float(rec.layer_spikes(k).sum()) > 0 for k in rec.layers)
    return rec, counts


def test_learning_curves_have_plain_log_ticks_integer_epochs_and_an_outside_legend(tmp_path: Path) -> None:
    runs = {f"run {i}": metrics(3, 15.0 - i, 3.0 + i / 4) for i in range(4)}
    fig = plots.learning_curves(runs, tmp_path / "curves.png", "three epochs")
    assert (tmp_path / "curves.png").stat().st_size > 0
    (ax,) = fig.axes
    assert_plain_ticks(ax)
    assert_integer_ticks(ax, "x")
    assert len([t for t in ax.yaxis.get_majorticklabels() if t.get_text()]) >= 3
    assert ax.get_ylabel() == "error (%)" and ax.get_xlabel() == "epoch"
    assert legend_texts(ax.get_legend()) == [*runs, "test", "train"]
    assert covered_points(fig, ax) == 0
    assert outside(fig, ax)


def test_learning_curves_legend_stays_off_curves_that_fill_the_axes(tmp_path: Path) -> None:
    runs = {f"run {i}": metrics(30, 30.0 - 5 * i, 0.05 * 3**i) for i in range(6)}
    runs |= {"rising": metrics(30, 0.04, 25.0), "low": metrics(30, 0.06, 0.05), "high": metrics(30, 25.0, 30.0)}
    fig = plots.learning_curves(runs, tmp_path / "many.png")
    (ax,) = fig.axes
    assert covered_points(fig, ax) == 0 and outside(fig, ax)


def test_learning_curves_of_losses_over_decades(tmp_path: Path) -> None:
    m = metrics(40, 30.0, 0.002)
    m["test_error"] = [None] * 40
    fig = plots.learning_curves({"regression": m}, tmp_path / "loss.png")
    (ax,) = fig.axes
    assert ax.get_ylabel() == "loss"
    assert_plain_ticks(ax)
    assert_integer_ticks(ax, "x")


def test_learning_curves_show_single_epochs_empty_runs_and_zeros(tmp_path: Path) -> None:
    long = metrics(30, 20.0, 0.5)
    long["train_error"][-5:] = [0.0] * 5
    runs = {"one epoch": metrics(1, 8.0, 8.0), "not started": {"epoch": [], "test_error": [], "train_error": []}}
    fig = plots.learning_curves({**runs, "long": long}, tmp_path / "few.png")
    (ax,) = fig.axes
    single = [line for line in ax.get_lines() if len(line.get_xdata()) == 1]
    assert len(single) == 2 and all(line.get_marker() == "o" for line in single)
    texts = legend_texts(ax.get_legend())
    assert "not started (no epochs yet)" in texts and "(0 lies below the log axis)" in texts
    assert ax.get_ylabel() == "error (%)"
    assert_plain_ticks(ax)
    assert_integer_ticks(ax, "x")


def test_alignment_angles_name_the_orthogonal_line_and_keep_data_visible(tmp_path: Path) -> None:
    runs = {"drtp s0": metrics(2, 10.0, 8.0)}
    fig = plots.alignment_angles(runs, tmp_path / "angles.png", "two epochs", "BPTT")
    (ax,) = fig.axes
    texts = legend_texts(ax.get_legend())
    assert any(t.startswith("90°") and "orthogonal" in t for t in texts), texts
    assert "drtp s0 layer1" in texts and "drtp s0 layer2" in texts
    assert_integer_ticks(ax, "x")
    assert ax.get_ylabel() == "angle to BPTT (deg)" and ax.get_ylim()[1] > 90
    assert covered_points(fig, ax) == 0


def test_spike_raster_names_the_digit_and_labels_neuron_and_time_axes(
    recording: tuple[Recording, torch.Tensor], tmp_path: Path
) -> None:
    rec, _ = recording
    fig = plots.spike_raster(rec, tmp_path / "raster.png", title="tiny network", label=3, prediction=1)
    assert fig._suptitle is not None
    caption = fig._suptitle.get_text()
    assert "tiny network" in caption and "label 3" in caption and "predicted 1" in caption and "wrong" in caption
    assert len(fig.axes) == 3
    assert all("neuron index" in ax.get_ylabel() for ax in fig.axes)
    assert fig.axes[0].get_ylabel().startswith("input") and fig.axes[-1].get_ylabel().startswith("output")
    assert fig.axes[-1].get_xlabel() == "time step"
    for ax in fig.axes:
        assert_integer_ticks(ax, "y")
    assert_integer_ticks(fig.axes[-1], "x")
    assert legend_texts(fig.axes[-1].get_legend()) == ["label 3", "predicted 1"]
    right = plots.spike_raster(rec, tmp_path / "right.png", label=2, prediction=2)
    assert right._suptitle is not None and right._suptitle.get_text() == "label 2, predicted 2, correct"
    assert legend_texts(right.axes[-1].get_legend()) == ["label 2"]
    plain = plots.spike_raster(rec, tmp_path / "plain.png", title="tiny network")
    assert plain._suptitle is not None and plain._suptitle.get_text() == "tiny network"


def test_membrane_traces_name_the_threshold_and_the_winning_output_neuron(
    recording: tuple[Recording, torch.Tensor], tmp_path: Path
) -> None:
    rec, counts = recording
    fig = plots.membrane_traces(rec, tmp_path / "membrane.png", 0.5, title="tiny network")
    for ax in fig.axes:
        assert "threshold 0.5" in legend_texts(ax.get_legend())
        assert [line.get_label() for line in ax.get_lines()][-1] == "threshold 0.5"
    assert fig.axes[-1].get_ylabel() == "v, output" and fig.axes[-1].get_xlabel() == "time step"
    assert fig.axes[0].get_ylabel() == "v, layer 1"
    assert_integer_ticks(fig.axes[-1], "x")
    winners = [t for t in legend_texts(fig.axes[-1].get_legend()) if "most spikes" in t]
    assert len(winners) == 1 and f"neuron {int(counts.argmax())}" in winners[0], winners
    assert f"({int(counts.max())})" in winners[0]


def test_membrane_traces_highlight_a_recorded_winner(tmp_path: Path) -> None:
    engine = engine_for(n_out=5, steps=STEPS)
    x = torch.rand(2, 1, 1, 5, generator=torch.Generator().manual_seed(0))
    winner = int(engine.predict(x)[1][0])
    others = [i for i in range(5) if i != winner][:2]
    rec = record(engine, x, neurons=sorted([*others, winner]))
    fig = plots.membrane_traces(rec, tmp_path / "winner.png", 0.5)
    output = fig.axes[-1]
    counts = rec.layer_spikes(2)[:, 0].sum(0)
    texts = legend_texts(output.get_legend())
    assert f"neuron {winner}: most spikes ({int(counts[winner])})" in texts, texts
    widths = {line.get_label(): line.get_linewidth() for line in output.get_lines()}
    assert widths[f"neuron {winner}: most spikes ({int(counts[winner])})"] > widths[f"neuron {others[0]}"]
    missing = record(engine, x, neurons=others)
    texts = legend_texts(plots.membrane_traces(missing, tmp_path / "missing.png", 0.5).axes[-1].get_legend())
    assert f"most spikes: neuron {winner} ({int(counts[winner])}), v not recorded" in texts, texts


def test_rate_histogram_bins_are_centred_on_the_rates_k_over_t(
    recording: tuple[Recording, torch.Tensor], tmp_path: Path
) -> None:
    rec, _ = recording
    weights = [torch.randn(4, 5), torch.randn(5, 4)]
    fig = plots.rate_histograms(rec, weights, tmp_path / "rates.png", "tiny network")
    top, bottom = fig.axes
    expected = (np.arange(STEPS + 2) - 0.5) / STEPS
    for patches in top.containers:
        edges = [p.get_x() for p in patches] + [patches[-1].get_x() + patches[-1].get_width()]
        np.testing.assert_allclose(edges, expected, atol=1e-12)
    heights = sum(np.array([p.get_height() for p in patches]) for patches in top.containers)
    rates = torch.cat([rec.rates(k).reshape(-1) for k in rec.layers])
    np.testing.assert_array_equal(heights, np.bincount(torch.round(rates * STEPS).long().numpy(), minlength=STEPS + 1))
    assert "neurons" in top.get_ylabel() and "T = 10" in top.get_xlabel()
    assert bottom.get_ylabel() == "probability density" and bottom.get_xlabel() == "weight"
    assert_plain_ticks(top)
    assert legend_texts(top.get_legend()) == ["layer 1 (4 neurons)", "output (5 neurons)"]
    assert legend_texts(bottom.get_legend()) == ["W_1 (4 x 5)", "W_2 (5 x 4)"]


def test_gap_versus_steps_ticks_each_t(tmp_path: Path) -> None:
    rows = [{"T": t, "spiking": 9.0 - t / 50, "rate": 8.3} for t in (5, 10, 25, 50, 100)]
    fig = plots.gap_versus_steps(rows, tmp_path / "gap.png")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.xaxis.get_majorticklabels()] == ["5", "10", "25", "50", "100"]
    assert_plain_ticks(ax)
    assert ax.get_xlabel() == "time steps per presentation T" and ax.get_ylabel() == "test error (%)"
    assert legend_texts(ax.get_legend()) == ["spiking DRTP", "rate DRTP (tanh), no T"]
    assert covered_points(fig, ax) == 0


def events(n: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    out = np.empty(n, dtype=EVENT_DTYPE)
    out["x"], out["y"] = g.integers(8, 26, n), g.integers(8, 26, n)
    out["t"], out["p"] = np.sort(g.integers(0, 300_000, n)), g.integers(0, 2, n)
    return out


def test_emulator_comparison_labels_both_count_axes_and_the_identity_line(tmp_path: Path) -> None:
    real = [events(400 + 50 * i, i) for i in range(4)]
    emulated = [events(380 + 60 * i, 10 + i) for i in range(4)]
    fig = plots.emulator_comparison(real, emulated, compare(real, emulated), tmp_path / "emulator.png")
    curves, counts = fig.axes[-2:]
    assert counts.get_xlabel() == "events per sample, real" and "emulated" in counts.get_ylabel()
    assert "equal counts" in legend_texts(counts.get_legend())
    assert legend_texts(curves.get_legend()) == ["real", "emulated"]
    assert curves.get_xlabel() == "time (ms)" and "events per 5 ms" in curves.get_ylabel()
    assert covered_points(fig, curves) == 0 and covered_points(fig, counts) == 0
