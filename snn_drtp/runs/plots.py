"""Matplotlib figures of a run's metrics, written as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from snn_drtp.data.frames import BIN_US, event_image
from snn_drtp.spiking.monitors import Recording


def learning_curves(runs: dict[str, dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Train (dashed) and test (solid) error in percent per epoch, one colour per run label."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (label, m) in enumerate(runs.items()):
        colour = f"C{i}"
        if m.get("test_error") and m["test_error"][0] is not None:
            ax.plot(m["epoch"], m["test_error"], color=colour, label=f"{label} test")
            ax.plot(m["epoch"], m["train_error"], color=colour, ls="--", alpha=0.7, label=f"{label} train")
            ax.set_ylabel("error (%)")
        else:
            ax.plot(m["epoch"], m["test_loss"], color=colour, label=f"{label} test")
            ax.plot(m["epoch"], m["train_loss"], color=colour, ls="--", alpha=0.7, label=f"{label} train")
            ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def alignment_angles(runs: dict[str, dict[str, Any]], path: str | Path, title: str = "", exact: str = "BP") -> None:
    """Angle between each rule's learning signal and the exact gradient's (``exact``: BP in the
    rate engine, BPTT in the spiking one), per hidden layer and epoch."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (label, m) in enumerate(runs.items()):
        for j, (layer, values) in enumerate(sorted(m.get("angle_to_bp", {}).items())):
            ax.plot(m["epoch"], values, color=f"C{i}", ls=["-", "--", ":", "-."][j % 4], label=f"{label} {layer}")
    ax.axhline(90, color="grey", lw=0.8)
    ax.set_ylim(0, 100)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"angle to {exact} (deg)")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def spike_raster(rec: Recording, path: str | Path, example: int = 0, title: str = "") -> None:
    """Spike raster of one example: input, every hidden layer and the output, time on x."""
    keys = sorted(rec.spikes)
    fig, axes = plt.subplots(len(keys), 1, figsize=(6.4, 1.6 + 1.4 * len(keys)), sharex=True)
    for ax, k in zip(axes, keys, strict=True):
        s = rec.layer_spikes(k)[:, example]
        t, n = torch.nonzero(s, as_tuple=True)
        ax.scatter(t.numpy(), n.numpy(), s=2 if s.shape[1] > 50 else 12, marker="|", color="k")
        ax.set_ylabel("input" if k == 0 else f"layer {k}")
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
    axes[-1].set_xlabel("time step")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def membrane_traces(rec: Recording, path: str | Path, threshold: float, example: int = 0, title: str = "") -> None:
    """Pre-reset membrane potentials of the recorded neurons of every layer, threshold dashed."""
    layers = rec.layers
    fig, axes = plt.subplots(len(layers), 1, figsize=(6.4, 1.2 + 1.8 * len(layers)), sharex=True)
    for ax, k in zip(axes, layers, strict=True):
        v = rec.layer_v(k)[:, example]
        for j in range(v.shape[1]):
            ax.plot(v[:, j].numpy(), lw=1, label=f"neuron {j}")
        ax.axhline(threshold, color="k", ls="--", lw=0.8)
        ax.set_ylabel(f"v, layer {k}")
    axes[0].legend(fontsize=7, ncol=3)
    axes[-1].set_xlabel("time step")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def rate_histograms(rec: Recording, weights: list[torch.Tensor], path: str | Path, title: str = "") -> None:
    """Top: histogram of firing rates (spikes/step) per layer; bottom: of the weights per layer."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.0))
    for k in rec.layers:
        top.hist(rec.rates(k).reshape(-1).numpy(), bins=40, range=(0, 1), alpha=0.6, label=f"layer {k}")
    top.set_xlabel("firing rate (spikes per step)")
    top.set_yscale("log")
    top.legend(fontsize=8)
    for k, w in enumerate(weights, start=1):
        bottom.hist(w.detach().reshape(-1).numpy(), bins=80, alpha=0.6, density=True, label=f"W_{k}")
    bottom.set_xlabel("weight")
    bottom.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def gap_versus_steps(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Spiking and rate test error after the sweep's epochs against the number of steps T."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ts = [r["T"] for r in rows]
    ax.plot(ts, [r["spiking"] for r in rows], "o-", label="spiking DRTP")
    ax.plot(ts, [r["rate"] for r in rows], "k--", label="rate DRTP (tanh)")
    ax.set_xscale("log")
    ax.set_xticks(ts, [str(t) for t in ts])
    ax.set_xlabel("time steps per presentation T")
    ax.set_ylabel("test error (%)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def emulator_comparison(real: list, emulated: list, comparison: dict[str, Any], path: str | Path) -> None:
    """Real and emulated recordings of the same images side by side (ON red, OFF blue), the event
    rate over time and the events per sample."""
    shown = min(6, len(real))
    fig = plt.figure(figsize=(11, 6.5))
    grid = fig.add_gridspec(3, shown)
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
    curves = fig.add_subplot(grid[2, : shown // 2])
    t = np.arange(len(comparison["curves"][0])) * BIN_US / 1000
    curves.plot(t, comparison["curves"][0], label="real")
    curves.plot(t, comparison["curves"][1], label="emulated")
    curves.set_xlabel("time (ms)")
    curves.set_ylabel(f"events per {BIN_US // 1000} ms")
    curves.legend(fontsize=8)
    counts = fig.add_subplot(grid[2, shown // 2 :])
    counts.scatter(comparison["real"]["events"], comparison["emulated"]["events"], s=6)
    top = max(max(comparison["real"]["events"]), max(comparison["emulated"]["events"]))
    counts.plot([0, top], [0, top], color="grey", lw=0.8)
    counts.set_xlabel("events per sample, real")
    counts.set_ylabel("emulated")
    fig.suptitle("N-MNIST: real recordings (top) and the emulation of the same digits (ON red, OFF blue)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
