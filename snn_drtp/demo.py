"""The main job: DRTP, BP and shallow learning side by side on MNIST (FC1-500), a comparison
table printed and plots written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snn_drtp import plots
from snn_drtp.config import TrainConfig
from snn_drtp.paper import MNIST_RESULTS
from snn_drtp.training import train

DEMO_RULES = ("drtp", "bp", "shallow")


def comparison_table(results: dict[str, dict[str, Any]], epochs: int) -> str:
    """A markdown table: test error after ``epochs`` epochs next to the paper's 100-epoch figure."""
    rows = [
        f"| rule | test error after {epochs} epoch(s) (%) | paper, 100 epochs (%) | mean angle to BP | s/epoch |",
        "|---|---|---|---|---|",
    ]
    for rule, m in results.items():
        paper = MNIST_RESULTS["fc1-500"][rule]
        angles = [v[-1] for v in m["angle_to_bp"].values()]
        angle = f"{sum(angles) / len(angles):.1f} deg" if angles else "-"
        rows.append(
            f"| {rule} | {m['test_error'][-1]:.2f} | {paper[0]:.2f} +- {paper[1]:.2f} | {angle} | "
            f"{m['median_seconds_per_epoch']:.1f} |"
        )
    return "\n".join(rows)


def run_demo(
    epochs: int = 3, out: str | Path = "runs/demo", threads: int | None = None, data_dir: str | None = None
) -> dict[str, dict[str, Any]]:
    out = Path(out)
    results = {}
    for rule in DEMO_RULES:
        config = TrainConfig(network="fc1-500", rule=rule, epochs=epochs, threads=threads, data_dir=data_dir)
        results[rule] = train(config, out / rule)
    table = comparison_table(results, epochs)
    (out / "comparison.md").write_text(table + "\n")
    plots.learning_curves(results, out / "learning_curves.png", f"MNIST FC1-500, {epochs} epoch(s)")
    plots.alignment_angles(results, out / "angles.png", "MNIST FC1-500: alignment with BP")
    print(table)
    print(f"plots and run folders written to {out}/")
    return results
