"""Spike versus rate: the spiking three-factor DRTP network validated against its rate reference.

One call (``snn-drtp validate``) runs, or resumes, two experiments and reports

(a) the accuracy gap between spiking DRTP and the rate DRTP reference at equal epochs
    (``experiments/spiking-vs-rate-mnist``, same topology, initial weights and B_k);
(b) per hidden layer, the angle between the spiking network's accumulated update dJ/dW_k and
    (i) the rate DRTP update with tanh units, (ii) the rate DRTP update with units following the
    LIF rate curve (:class:`~snn_drtp.rate.layers.SoftLIF`), (iii) the surrogate-gradient BPTT
    gradient, all for the same weights and batch (pixel intensities for the rate networks, their
    Bernoulli spikes for the spiking ones), at initialisation and after training;
(c) the gap after one epoch for T in {5, 10, 25, 50, 100} (``experiments/spiking-T-sweep``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from snn_drtp.core.atomic import write_json_and_markdown
from snn_drtp.core.metrics import angle_degrees
from snn_drtp.data.datasets import load_dataset
from snn_drtp.rate.engine import RateEngine
from snn_drtp.rules import get_rule
from snn_drtp.runs import plots
from snn_drtp.runs.build import build_engine
from snn_drtp.runs.training import load_trained, summed_over_batches
from snn_drtp.spiking.engine import SpikingEngine
from snn_drtp.studies.experiments import load_experiment, run_experiment

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
VERSUS = EXPERIMENTS / "spiking-vs-rate-mnist"
SWEEP = EXPERIMENTS / "spiking-T-sweep"
REPORT = EXPERIMENTS / "spiking-validation"


def _rate_update(twin: RateEngine, x: torch.Tensor, y_star: torch.Tensor) -> list[torch.Tensor]:
    """dJ/dW_k of the hidden layers of a rate DRTP step (written into, then read from, ``.grad``)."""
    twin.train_step(x, y_star, get_rule("drtp"))
    return [_grad(layer.params.weight).clone() for layer in twin.hidden]


def _grad(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.grad is None:
        raise RuntimeError("the rate DRTP step wrote no update into a hidden layer")
    return tensor.grad


def update_angles(engine: SpikingEngine, x: torch.Tensor, y_star: torch.Tensor) -> dict[str, dict[str, float]]:
    """Per hidden layer: angles (degrees) between the spiking DRTP update and the rate DRTP
    updates (tanh units; units on the LIF rate curve) and the BPTT gradient, all over the same
    parameter set and batch (pixel intensities for the rate engines, their spikes for the spiking
    one, example i encoded from its own seed), summed over sub-batches of 100 examples."""
    tanh = RateEngine(engine.params, hidden_activation="tanh")
    lif = RateEngine(engine.params, hidden_activation="lif", neuron=engine.options.neuron)
    n, sub = x.shape[0], SpikingEngine.signal_batch
    drtp, bptt = get_rule("drtp"), get_rule("bp")
    spiking = summed_over_batches(lambda i, ids: engine.learning_signals(x[i], y_star[i], drtp, ids), n, sub)
    others = {
        "rate_tanh": summed_over_batches(lambda i, ids: _rate_update(tanh, x[i], y_star[i]), n, sub),
        "rate_lif": summed_over_batches(lambda i, ids: _rate_update(lif, x[i], y_star[i]), n, sub),
        "bptt": summed_over_batches(lambda i, ids: engine.learning_signals(x[i], y_star[i], bptt, ids), n, sub),
    }
    return {
        f"layer{k}": {name: angle_degrees(ours, ref[k - 1]) for name, ref in others.items()}
        for k, ours in enumerate(spiking, start=1)
    }


def _spiking_run(folder: Path, seed: int = 0, device: str = "cpu") -> tuple[SpikingEngine, Path]:
    """The untrained spiking engine of an experiment's run (on ``device``) and that run's folder."""
    _, configs = load_experiment(folder)
    config = replace(next(c for c in configs if c.engine == "spiking" and c.seed == seed), device=device)
    engine = build_engine(config)
    assert isinstance(engine, SpikingEngine)
    return engine, folder / "runs" / config.run_name()


def run_validation(
    out: str | Path = REPORT, jobs: int = 2, threads: int = 1, n_angle: int = 1000, device: str = "cpu"
) -> dict[str, Any]:
    """Run (or resume) both experiments on ``device``, measure the angles, write
    ``report.md``/``report.json`` and figures into ``out``."""
    out = Path(out)
    versus = run_experiment(VERSUS, jobs=jobs, threads=threads, device=device)
    sweep = run_experiment(SWEEP, jobs=jobs, threads=threads, device=device)
    torch.set_num_threads(threads)
    train, test = load_dataset("mnist")
    x, y_star = train.x[:n_angle], train.targets(slice(0, n_angle))
    engine, run_dir = _spiking_run(VERSUS, device=device)
    angles = {"initial": update_angles(engine, x, y_star)}
    trained = load_trained(run_dir, device=device)
    assert isinstance(trained, SpikingEngine)
    engine = trained
    angles["trained"] = update_angles(engine, x, y_star)

    rec = plots.activity_figures(engine, test, out)
    gap = _gaps(versus)
    sweep_rows = _sweep_rows(sweep)
    plots.gap_versus_steps(sweep_rows, out / "gap_vs_T.png")
    report = {"gap": gap, "angles": angles, "activity": rec.summary(), "T_sweep": sweep_rows}
    print(write_json_and_markdown(out / "report", report, _markdown(report)))
    return report


def _gaps(summary: dict[str, Any]) -> dict[str, Any]:
    groups = summary["groups"]
    spiking = next(g for g in groups.values() if g["engine"] == "spiking")
    rate = next(g for g in groups.values() if g["engine"] == "rate")
    return {
        "steps": spiking["steps"],
        "epochs": spiking["epochs"],
        "spiking_final": spiking["final"],
        "rate_final": rate["final"],
        "gap_final": [s - r for s, r in zip(spiking["final"], rate["final"], strict=True)],
        "spiking_seconds_per_epoch": spiking["median_seconds_per_epoch"],
        "rate_seconds_per_epoch": rate["median_seconds_per_epoch"],
    }


def _sweep_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    groups = summary["groups"].values()
    rate = next(g for g in groups if g["engine"] == "rate")
    rows = []
    for g in sorted((g for g in groups if g["engine"] == "spiking"), key=lambda g: g["steps"]):
        rows.append(
            {
                "T": g["steps"],
                "spiking": g["final_mean"],
                "rate": rate["final_mean"],
                "gap": g["final_mean"] - rate["final_mean"],
                "seconds_per_epoch": g["median_seconds_per_epoch"],
            }
        )
    return rows


def _markdown(report: dict[str, Any]) -> list[str]:
    g = report["gap"]
    lines = [
        "# Spiking DRTP versus its rate reference (MNIST, 784-1000-10)",
        "",
        "Produced by `snn-drtp validate --jobs 2 --threads 1`.",
        "",
        f"## (a) Accuracy at equal epochs ({g['epochs'][0]} epochs, T = {g['steps']})",
        "",
        "| seed | spiking DRTP test error (%) | rate DRTP test error (%) | gap (pp) |",
        "|---|---|---|---|",
    ]
    for seed, (s, r, d) in enumerate(zip(g["spiking_final"], g["rate_final"], g["gap_final"], strict=True)):
        lines.append(f"| {seed} | {s:.2f} | {r:.2f} | {d:+.2f} |")
    lines += [
        "",
        f"Seconds per epoch (median, 1 thread, two runs sharing the 2 cores): spiking "
        f"{g['spiking_seconds_per_epoch']:.1f}, rate {g['rate_seconds_per_epoch']:.1f}.",
        "",
        "## (b) Angles between the spiking DRTP update and three references (degrees, 1000 training examples)",
        "",
        "| weights | layer | rate DRTP, tanh | rate DRTP, LIF rate curve | BPTT gradient |",
        "|---|---|---|---|---|",
    ]
    for when, layers in report["angles"].items():
        for layer, a in layers.items():
            lines.append(f"| {when} | {layer} | {a['rate_tanh']:.1f} | {a['rate_lif']:.1f} | {a['bptt']:.1f} |")
    lines += [
        "",
        "## (c) Gap after one epoch against the number of steps T",
        "",
        "(s/epoch: two runs shared the 2 cores, so the times are indicative only.)",
        "",
        "| T | spiking test error (%) | rate test error (%) | gap (pp) | s/epoch |",
        "|---|---|---|---|---|",
    ]
    for row in report["T_sweep"]:
        lines.append(
            f"| {row['T']} | {row['spiking']:.2f} | {row['rate']:.2f} | {row['gap']:+.2f} | "
            f"{row['seconds_per_epoch']:.1f} |"
        )
    lines += ["", "## Activity of the trained network (100 test digits)", ""]
    for layer, a in report["activity"].items():
        lines.append(
            f"- {layer}: mean rate {a['mean_rate']:.3f} spikes/step, {a['spikes_per_example']:.1f} spikes per "
            f"digit, {100 * a['silent_fraction']:.1f} % of neurons silent"
        )
    return lines
