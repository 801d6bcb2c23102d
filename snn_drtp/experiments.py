"""Experiments: a grid of training runs described by a TOML spec, run (and resumed) into a folder
next to the spec, summarised as JSON and a markdown table against the paper.

Spec format (``experiments/NAME/experiment.toml``)::

    name = "paper-mnist-fc1-500"
    [base]                    # TrainConfig fields shared by every run
    network = "fc1-500"
    epochs = 100
    [grid]                    # every combination becomes one run folder runs/RULE-seedSEED
    rule = ["drtp", "bp", "shallow"]
    seed = [0, 1]
"""

from __future__ import annotations

import itertools
import statistics
import tomllib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from snn_drtp import plots
from snn_drtp.config import TrainConfig
from snn_drtp.io import atomic_write_bytes, atomic_write_json
from snn_drtp.paper import MNIST_RESULTS
from snn_drtp.training import train


def load_experiment(path: str | Path) -> tuple[dict[str, Any], list[TrainConfig]]:
    """The spec and the list of configs its grid expands to."""
    path = Path(path)
    if path.is_dir():
        path = path / "experiment.toml"
    if not path.exists():
        raise FileNotFoundError(f"no experiment spec at {path}")
    with path.open("rb") as handle:
        spec = tomllib.load(handle)
    base = TrainConfig.from_dict(spec.get("base", {}))
    grid = spec.get("grid", {})
    keys = list(grid)
    configs: dict[str, TrainConfig] = {}
    for values in itertools.product(*(grid[k] for k in keys)):
        config = replace(base, **dict(zip(keys, values, strict=True)))
        configs.setdefault(run_name(config), config)  # e.g. a rate run is the same for every T
    return spec, list(configs.values())


def run_name(config: TrainConfig) -> str:
    """runs/NETWORK-RULE-seedS (rate engine) or runs/spiking-NETWORK-RULE-T<steps>-seedS."""
    if config.engine == "rate":
        return f"{config.network}-{config.rule}-seed{config.seed}"
    return f"{config.engine}-{config.network}-{config.rule}-T{config.steps}-seed{config.seed}"


def group_label(config: TrainConfig) -> str:
    """Runs that differ only in their seed share a label."""
    engine = config.engine if config.engine == "rate" else f"{config.engine} T={config.steps}"
    return f"{engine} {config.network} {config.rule}"


def _run_one(args: tuple[TrainConfig, str]) -> dict[str, Any]:
    config, out = args
    return train(config, out, progress=False)


def run_experiment(path: str | Path, jobs: int = 1, threads: int = 1) -> dict[str, Any]:
    """Run every config of the experiment (``jobs`` at a time, ``threads`` torch threads each),
    resuming any that stopped part-way; write ``summary.json``, ``summary.md`` and plots."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    spec, configs = load_experiment(path)
    tasks = [(replace(c, threads=threads), str(folder / "runs" / run_name(c))) for c in configs]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_run_one, tasks))
    else:
        results = [_run_one(t) for t in tasks]
    return summarise_experiment(folder, spec, configs, results)


def summarise_experiment(
    folder: Path, spec: dict[str, Any], configs: list[TrainConfig], results: list[dict[str, Any]]
) -> dict[str, Any]:
    groups: dict[str, list[tuple[TrainConfig, dict[str, Any]]]] = {}
    for config, metrics in zip(configs, results, strict=True):
        groups.setdefault(group_label(config), []).append((config, metrics))
    summary: dict[str, Any] = {"name": spec.get("name", folder.name), "groups": {}}
    lines = [
        f"# {summary['name']}",
        "",
        spec.get("description", "").strip(),
        "",
        "| engine | network | rule | lr | seeds | epochs | last-10 test error (%) | final test error (%) | "
        "per seed (final) | paper (%) | s/epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, members in groups.items():
        first = members[0][0]
        values = [m["last10_test_error"] for _, m in members]
        finals = [m["final_test_error"] for _, m in members]
        mean = statistics.fmean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        paper = None
        if first.engine == "rate" and first.dataset == "mnist":
            paper = MNIST_RESULTS.get(first.network, {}).get(first.rule)
        secs = statistics.median(s for _, m in members for s in m["seconds"])
        lr = first.validate().lr
        summary["groups"][label] = {
            "engine": first.engine,
            "network": first.network,
            "rule": first.rule,
            "steps": first.steps if first.engine == "spiking" else None,
            "lr": lr,
            "seeds": [c.seed for c, _ in members],
            "epochs": [len(m["epoch"]) for _, m in members],
            "last10_test_error": values,
            "final_test_error": finals,
            "mean": mean,
            "std": std,
            "final_mean": statistics.fmean(finals),
            "paper": paper,
            "median_seconds_per_epoch": secs,
        }
        paper_txt = f"{paper[0]:.2f} +- {paper[1]:.2f}" if paper else "-"
        engine = first.engine if first.engine == "rate" else f"spiking T={first.steps}"
        lines.append(
            f"| {engine} | {first.network} | {first.rule} | {lr:g} | {len(values)} | {len(members[0][1]['epoch'])} | "
            f"{mean:.2f} +- {std:.2f} | {statistics.fmean(finals):.2f} | {', '.join(f'{v:.2f}' for v in finals)} | "
            f"{paper_txt} | {secs:.1f} |"
        )
    atomic_write_json(folder / "summary.json", summary)
    atomic_write_bytes(folder / "summary.md", ("\n".join(lines) + "\n").encode())
    curves = {f"{group_label(c)} s{c.seed}": m for c, m in zip(configs, results, strict=True)}
    plots.learning_curves(curves, folder / "learning_curves.png", summary["name"])
    plots.alignment_angles(
        {k: v for k, v in curves.items() if v["angle_to_bp"]},
        folder / "angles.png",
        f"{summary['name']}: alignment with BP",
    )
    return summary
