"""Matplotlib figures of a run's metrics, written as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


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


def alignment_angles(runs: dict[str, dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Angle between each rule's modulatory signal delta z_k and BP's, per hidden layer and epoch."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (label, m) in enumerate(runs.items()):
        for j, (layer, values) in enumerate(sorted(m.get("angle_to_bp", {}).items())):
            ax.plot(m["epoch"], values, color=f"C{i}", ls=["-", "--", ":", "-."][j % 4], label=f"{label} {layer}")
    ax.axhline(90, color="grey", lw=0.8)
    ax.set_ylim(0, 100)
    ax.set_xlabel("epoch")
    ax.set_ylabel("angle to BP's delta z (degrees)")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
