"""The main job: a spiking DRTP network trained next to its rate-coded reference on MNIST (same
784-500-10 topology, same initial weights and B_k), a comparison table printed and plots written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from snn_drtp.data.datasets import load_dataset
from snn_drtp.runs import plots
from snn_drtp.runs.config import TrainConfig
from snn_drtp.runs.training import load_trained, train
from snn_drtp.spiking.engine import SpikingEngine

DEMO = TrainConfig(network="fc1-500", rule="drtp", batch_size=100, lr=1e-3, steps=25)
"""The demo's network, rule and training settings (both engines; epochs, threads and device from the call)."""


def comparison_table(spiking: dict[str, Any], rate: dict[str, Any]) -> str:
    """A markdown table of both engines' test error per epoch, the gap and the time per epoch."""
    rows = [
        "| epoch | spiking DRTP test error (%) | rate DRTP test error (%) | gap (pp) | s/epoch, spiking | rate |",
        "|---|---|---|---|---|---|",
    ]
    for i, epoch in enumerate(spiking["epoch"]):
        s, r = spiking["test_error"][i], rate["test_error"][i]
        rows.append(
            f"| {epoch} | {s:.2f} | {r:.2f} | {s - r:+.2f} | {spiking['seconds'][i]:.1f} | {rate['seconds'][i]:.1f} |"
        )
    return "\n".join(rows)


def run_demo(
    epochs: int = 3,
    out: str | Path = "runs/demo",
    threads: int | None = 1,
    data_dir: str | None = None,
    device: str = "cpu",
) -> dict[str, dict[str, Any]]:
    """Train both engines for ``epochs`` epochs into ``out``/spiking and ``out``/rate (each
    resumable), then write comparison.md, learning curves, a raster, membrane traces and
    histograms of rates and weights of the trained spiking network."""
    out = Path(out)
    results = {}
    for name in ("spiking", "rate"):
        config = replace(DEMO, engine=name, epochs=epochs, threads=threads, data_dir=data_dir, device=device)
        results[name] = train(config, out / name)
    table = comparison_table(results["spiking"], results["rate"])
    (out / "comparison.md").write_text(table + "\n")
    plots.learning_curves(
        {"spiking DRTP": results["spiking"], "rate DRTP": results["rate"]},
        out / "learning_curves.png",
        f"MNIST {DEMO.network}, T = {DEMO.steps}",
    )
    trained = load_trained(out / "spiking")
    assert isinstance(trained, SpikingEngine)
    engine = trained
    _, test = load_dataset("mnist", data_dir)
    rec = plots.activity_figures(engine, test, out)
    print(table)
    for layer, a in rec.summary().items():
        print(f"{layer}: {a['mean_rate']:.3f} spikes/step on average, {100 * a['silent_fraction']:.0f} % silent")
    print(f"plots and run folders written to {out}/")
    return results
