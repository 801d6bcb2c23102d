"""Experiments: a grid of training runs described by a TOML spec, run (and resumed) into a folder
next to the spec, summarised as JSON and a markdown table against the paper.

Spec format (``experiments/NAME/experiment.toml``)::

    name = "paper-mnist-fc1-500"
    [base]                    # TrainConfig fields shared by every run
    network = "fc1-500"
    epochs = 100
    [grid]                    # every combination is one run
    rule = ["drtp", "bp", "shallow"]
    seed = [0, 1]
    [evaluate]                # optional: also test every trained run on these datasets' test split
    datasets = ["nmnist-small"]
    [[override]]              # optional, repeatable: fields set for the grid's runs that match
    when = {rule = ["fa", "dfa"]}
    set = {zero_init = true}

Each run's folder is ``runs/<engine>-<network>-<rule>[-T<steps>]-seed<seed>-<hash>``, the hash
taken over the configuration fields that change its numbers (:meth:`TrainConfig.run_name`):
configs that differ in anything that matters get their own runs, and configs that cannot differ
(a rate run in a grid over the spiking engine's T) share one. Runs that differ only in their seed
form a group, summarised as mean +- std.
"""

from __future__ import annotations

import difflib
import json
import statistics
import tomllib
from collections.abc import Callable
from dataclasses import replace
from itertools import product
from pathlib import Path
from typing import Any

from snn_drtp.core.atomic import write_json_and_markdown
from snn_drtp.core.checks import check_field_types, type_error, unknown_keys
from snn_drtp.core.devices import device_kind, resolve_device
from snn_drtp.core.metrics import figure_of_merit
from snn_drtp.core.paper import paper_mnist
from snn_drtp.runs import plots
from snn_drtp.runs.config import TrainConfig
from snn_drtp.runs.training import check_network_unchanged, evaluate_run, first_epochs
from snn_drtp.studies.sweeps import run_sweep

LABEL_FIELDS = ("engine", "network", "rule", "steps", "seed")
SECTIONS = {"name": str, "description": str, "base": dict, "grid": dict, "evaluate": dict, "override": list}
"""The top-level keys and sections of an experiment.toml and their types."""
METRICS_KEYS = ("epoch", "test_error", "test_loss", "seconds", "angle_to_bp")
"""The keys of a run's metrics.json that a summary reads."""


def _spec_path(path: str | Path) -> Path:
    path = Path(path)
    return path / "experiment.toml" if path.is_dir() else path


def load_experiment(path: str | Path) -> tuple[dict[str, Any], list[TrainConfig]]:
    """The spec and the distinct configs its grid expands to."""
    path = _spec_path(path)
    if not path.exists():
        raise FileNotFoundError(f"no experiment spec at {path}")
    try:
        with path.open("rb") as handle:
            spec = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    where = f"experiment {path}: "
    _check_sections(spec, where)
    known = list(TrainConfig.__dataclass_fields__)
    raw_base = spec.get("base", {})
    unknown_keys(raw_base, known, f"{where}[base] ", "config keys")
    check_field_types(raw_base, TrainConfig, f"{where}[base] ")
    base = TrainConfig.from_dict(raw_base)
    grid = spec.get("grid", {})
    unknown_keys(grid, known, f"{where}[grid] has ", "config keys")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"{where}[grid] {key} = {values!r} is not a non-empty list; a grid gives each field a list of "
                f"values, e.g. {key} = [{values!r}] (or move {key} to [base])"
            )
        for value in values:
            check_field_types({key: value}, TrainConfig, f"{where}[grid] {key} holds a value that does not fit: ")
    overrides = _overrides(spec.get("override", []), known, where)
    configs: dict[str, TrainConfig] = {}
    for values in product(*grid.values()):
        fields = dict(zip(grid, values, strict=True))
        candidate = replace(base, **fields)
        for when, settings in overrides:
            if all(getattr(candidate, key) in allowed for key, allowed in when.items()):
                fields.update(settings)
        try:  # checked as on any machine: a GPU experiment is read (reported) where there is no GPU
            wanted = replace(base, **fields)
            device_kind(wanted.device)
            config = replace(replace(wanted, device="cpu").validate(), device=wanted.device)
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None
        configs.setdefault(config.run_name(), config)
    return spec, list(configs.values())


def _overrides(tables: list[Any], known: list[str], where: str) -> list[tuple[dict[str, list[Any]], dict[str, Any]]]:
    """The ``[[override]]`` tables: ``when`` (field -> the values it applies to) and ``set`` (field ->
    value), checked against the config's fields, e.g. ``when = {rule = ["fa", "dfa"]}`` and
    ``set = {zero_init = true}``: those runs of the grid start from zero weights."""
    parsed = []
    for i, table in enumerate(tables, start=1):
        at = f"{where}[[override]] number {i} "
        if not isinstance(table, dict) or set(table) != {"when", "set"}:
            raise ValueError(
                f"{at}must hold exactly when = {{FIELD = [VALUES]}} and set = {{FIELD = VALUE}}, got {table!r}"
            )
        when, settings = table["when"], table["set"]
        if not isinstance(when, dict) or not isinstance(settings, dict):
            raise ValueError(f'{at}when and set are tables (inline: when = {{rule = ["fa"]}}), got {table!r}')
        unknown_keys(when, known, f"{at}when has ", "config keys")
        unknown_keys(settings, known, f"{at}set has ", "config keys")
        check_field_types(settings, TrainConfig, f"{at}set ")
        for key, values in when.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"{at}when {key} = {values!r} is not a non-empty list; e.g. {key} = [{values!r}]")
        parsed.append((when, settings))
    return parsed


def _check_sections(spec: dict[str, Any], where: str) -> None:
    """Known top-level keys and sections of the right types: a misspelt ``[bsae]`` would otherwise
    leave ``[base]`` empty and launch runs of the default configuration."""
    shown = {
        key: f"[{key}]" if kind is dict else f"[[{key}]]" if kind is list else key for key, kind in SECTIONS.items()
    }
    unknown = sorted(set(spec) - set(SECTIONS))
    if unknown:
        names = [f"[{key}]" if isinstance(spec[key], dict) else key for key in unknown]
        near = difflib.get_close_matches(unknown[0], list(SECTIONS), n=1, cutoff=0.6)
        field = difflib.get_close_matches(unknown[0], list(TrainConfig.__dataclass_fields__), n=1, cutoff=0.8)
        if near:
            hint = f"; did you mean {shown[near[0]]}?"
        elif field:
            hint = f"; configuration fields such as {field[0]} go under [base] (or [grid])"
        else:
            hint = ""
        raise ValueError(
            f"{where}unknown {'section' if names[0].startswith('[') else 'key'} {', '.join(names)}{hint}"
            f" (known: {', '.join(shown.values())}); fix the spelling or remove it"
        )
    for key, kind in SECTIONS.items():
        if key in spec and not isinstance(spec[key], kind):
            raise ValueError(
                f"{where}{shown[key]} = {spec[key]!r} is not a "
                + {dict: "table", list: "list of tables", str: "string"}[kind]
                + "; "
                + {
                    dict: f"write it as a [{key}] section of NAME = VALUE lines",
                    list: f"write each as a [[{key}]] section with when = {{...}} and set = {{...}}",
                    str: f'write {key} = "..."',
                }[kind]
            )
    evaluate = spec.get("evaluate", {})
    unknown_keys(evaluate, ["datasets"], f"{where}[evaluate] ", "keys")
    datasets = evaluate.get("datasets", [])
    problem = type_error("datasets", datasets, list[str], ["nmnist-small"])
    if problem:
        raise ValueError(f"{where}[evaluate] {problem}")


def group_labels(configs: list[TrainConfig]) -> list[str]:
    """One label per config; runs that differ only in their seed share it. The label names the
    engine (and T), network and rule, then every other field that varies among the experiment's
    runs of that engine, network and rule."""
    keys = [config.numbers_key() for config in configs]
    bases = [tuple(key.get(f) for f in LABEL_FIELDS if f != "seed") for key in keys]
    labels = []
    for config, key, base in zip(configs, keys, bases, strict=True):
        peers = [k for k, b in zip(keys, bases, strict=True) if b == base]
        fields = sorted({f for k in peers for f in k} - set(LABEL_FIELDS))
        varying = [f for f in fields if len({json.dumps(k.get(f), default=str) for k in peers}) > 1]
        engine = config.engine if not config.spiking else f"{config.engine} T={config.steps}"
        extra = "".join(f" {f}={key[f]}" for f in varying if f in key)
        labels.append(f"{engine} {config.network} {config.rule}{extra}")
    return labels


def on_device(configs: list[TrainConfig], device: str | None) -> list[TrainConfig]:
    """An experiment's configs as ``--device`` runs them (unset: as the experiment names them)."""
    return configs if device is None else [replace(c, device=device) for c in configs]


def run_experiment(
    path: str | Path,
    jobs: int = 1,
    threads: int = 1,
    device: str | None = None,
    log: Callable[[str], None] | None = print,
    backend: str = "local",
    address: str | None = None,
) -> dict[str, Any]:
    """Run every config of the experiment (``jobs`` at a time, ``threads`` torch threads each, on
    ``device``, on the sweep ``backend``, local or ray at ``address``;
    :func:`~snn_drtp.studies.sweeps.run_sweep`): finished runs are read, stopped ones
    resume, failed ones are listed under ``failed`` in the summary (``summary.json``,
    ``summary.md``, plots), which covers the runs that have metrics. On Ctrl-C the workers stop
    at once; every run keeps its last finished epoch, and the same call resumes."""
    folder = _spec_path(path).parent.resolve()
    spec, configs = load_experiment(path)
    configs = on_device(configs, device)
    evaluations = spec.get("evaluate", {}).get("datasets", [])
    if backend == "local" or address is None or evaluations:  # this machine trains or evaluates the runs
        for kind in {c.device for c in configs}:  # (a Ray cluster's workers may have the GPU its driver lacks)
            resolve_device(kind)
    tasks = [(replace(c, threads=threads), str(folder / "runs" / c.run_name())) for c in configs]
    outcomes = run_sweep(tasks, jobs, log, backend, address)
    kept = [(c, r) for c, r in zip(configs, outcomes, strict=True) if r.metrics is not None]
    for dataset in evaluations:
        for _, result in kept:
            evaluate_run(result.out, dataset, progress=False)
    failed = {Path(r.out).name: r.error for r in outcomes if r.error is not None}
    return summarise_experiment(
        folder, spec, [c for c, _ in kept], [r.metrics for _, r in kept if r.metrics is not None], failed
    )


def summarise_existing(path: str | Path, device: str | None = None) -> dict[str, Any]:
    """Rewrite the summary from the run folders' ``metrics.json``, training nothing (``device``: the
    runs of ``snn-drtp experiment --device``, whether or not this machine has one)."""
    folder = _spec_path(path).parent
    spec, configs = load_experiment(path)
    configs = on_device(configs, device)
    results = []
    for config in configs:
        metrics = folder / "runs" / config.run_name() / "metrics.json"
        if not metrics.exists():
            raise FileNotFoundError(f"{metrics} does not exist: run `snn-drtp experiment {folder}` first")
        check_network_unchanged(metrics.parent, config)
        read = _read_metrics(metrics, folder)
        results.append(first_epochs(read, config.epochs))
    return summarise_experiment(folder, spec, configs, results)


def _read_metrics(path: Path, folder: Path) -> dict[str, Any]:
    """A run's ``metrics.json``, refused with its name when it is not JSON, lacks a key a summary
    reads or holds no finished epoch; running the experiment again rewrites it from the checkpoint."""
    again = f"run `snn-drtp experiment {folder}` to rewrite it from the run's checkpoint (or train the run)"
    try:
        metrics = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); it is corrupt: {again}") from None
    if isinstance(metrics, dict) and metrics.get("epoch") == []:
        raise ValueError(f"{path} holds no finished epoch: {again}")
    missing = [key for key in METRICS_KEYS if not isinstance(metrics, dict) or key not in metrics]
    if missing:
        raise ValueError(f"{path} is not a run's metrics file (it lacks {', '.join(missing)}): {again}")
    return dict(metrics)


def _evaluation(run: Path, dataset: str) -> dict[str, Any]:
    path = run / "evaluations.json"
    recorded = json.loads(path.read_text()) if path.exists() else {}
    if f"{dataset}/test" not in recorded:
        raise FileNotFoundError(
            f"{run} has no evaluation on {dataset}: run `snn-drtp evaluate {run} --dataset {dataset}`"
        )
    return recorded[f"{dataset}/test"]


def _measure(results: list[dict[str, Any]]) -> tuple[str, str]:
    """What an experiment's runs are summarised by, and its key in the metrics: the test error for
    classification, the test loss (mean squared error) when a run records no error (regression)."""
    if all(None not in m["test_error"] for m in results):
        return "test error (%)", "test_error"
    return "test loss (MSE)", "test_loss"


def summarise_experiment(
    folder: Path,
    spec: dict[str, Any],
    configs: list[TrainConfig],
    results: list[dict[str, Any]],
    failed: dict[str, str] | None = None,
) -> dict[str, Any]:
    """summary.json and summary.md of the runs' metrics (groups of runs that differ only in their
    seed), with the runs that ``failed`` (run folder name -> error) listed, and the plots."""
    groups: dict[str, list[tuple[TrainConfig, dict[str, Any]]]] = {}
    for label, config, metrics in zip(group_labels(configs), configs, results, strict=True):
        groups.setdefault(label, []).append((config, metrics))
    measure, key = _measure(results)
    fmt = ".2f" if key == "test_error" else ".3g"
    summary: dict[str, Any] = {"name": spec.get("name", folder.name), "measure": measure, "groups": {}}
    lines = [
        f"# {summary['name']}",
        "",
        spec.get("description", "").strip(),
        "",
        f"| runs | lr | seeds | epochs | {measure}, last epochs | final {measure} | per seed (final) | paper (%) "
        "| s/epoch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    extra = spec.get("evaluate", {}).get("datasets", [])
    if extra:
        lines[-2] = lines[-2] + "".join(f" {d} test accuracy (%) |" for d in extra)
        lines[-1] = lines[-1] + "---|" * len(extra)
    for label, members in groups.items():
        first = members[0][0]
        values = [figure_of_merit(m[key]) for _, m in members]
        finals = [m[key][-1] for _, m in members]
        mean = statistics.fmean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        paper = None
        if first.engine == "rate" and first.dataset == "mnist":
            paper = paper_mnist(first.network, first.rule, first.dropout)
        secs = statistics.median(s for _, m in members for s in m["seconds"])
        summary["groups"][label] = {
            "engine": first.engine,
            "network": first.network,
            "rule": first.rule,
            "steps": first.steps if first.spiking else None,
            "lr": first.lr,
            "runs": [c.run_name() for c, _ in members],
            "seeds": [c.seed for c, _ in members],
            "epochs": [len(m["epoch"]) for _, m in members],
            "figure_of_merit": values,
            "final": finals,
            "mean": mean,
            "std": std,
            "final_mean": statistics.fmean(finals),
            "paper": paper,
            "median_seconds_per_epoch": secs,
        }
        paper_txt = f"{paper[0]:.2f} +- {paper[1]:.2f}" if paper else "-"
        cells = []
        for dataset in extra:
            found = [_evaluation(folder / "runs" / c.run_name(), dataset) for c, _ in members]
            summary["groups"][label][f"{dataset}_test"] = found
            cells.append(
                ", ".join(f"{r['accuracy']:.1f} [{r['accuracy_95'][0]:.1f}, {r['accuracy_95'][1]:.1f}]" for r in found)
            )
        lines.append(
            f"| {label} | {first.lr:g} | {len(values)} | {len(members[0][1]['epoch'])} | "
            f"{mean:{fmt}} +- {std:{fmt}} | {statistics.fmean(finals):{fmt}} | "
            f"{', '.join(f'{v:{fmt}}' for v in finals)} | "
            f"{paper_txt} | {secs:.1f} |" + "".join(f" {c} |" for c in cells)
        )
    if failed:
        summary["failed"] = failed
        lines += ["", f"Failed runs ({len(failed)}), not in the table:", ""]
        lines += [f"- `{name}`: {error}" for name, error in failed.items()]
    lines += [
        "",
        f"{measure}, last epochs: the mean over the last k = max(1, min(10, n // 10)) of a run's n epochs "
        "(the paper's last 10 of 100; the final epoch for runs under 20 epochs), then over the seeds.",
    ]
    write_json_and_markdown(folder / "summary", summary, lines)
    curves = {f"{label} s{c.seed}": m for label, c, m in zip(group_labels(configs), configs, results, strict=True)}
    plots.learning_curves(curves, folder / "learning_curves.png", summary["name"])
    measured = {k: v for k, v in curves.items() if v["angle_to_bp"]}
    if measured:  # angle_batch = 0 measures none
        plots.alignment_angles(
            measured,
            folder / "angles.png",
            f"{summary['name']}: alignment with the exact gradient",
            "BP (rate) or BPTT (spiking)",
        )
    return summary
