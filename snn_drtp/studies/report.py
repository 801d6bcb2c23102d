"""One report from experiment folders: the paper's MNIST tables with our runs beside its numbers.

``snn-drtp report EXPERIMENT... --out DIR`` reads every finished rate-engine MNIST run of the
experiments (runs still training are counted as pending) and writes into DIR:

* ``table1.md`` and ``table1.csv``: Table 1 with Supplementary Table 1's sDFA column, one row per
  network and dropout, each cell our mean +- std over seeds beside the paper's, and whether ours
  falls in the band paper mean +- (2 x paper std + 0.3) percentage points;
* each experiment's learning curves and alignment angles (PNG), and for the synthetic tasks the
  paper's Figures 2 and 3 (train and test error or loss, each hidden layer's angle to BP, mean +-
  std over seeds per epoch) and ``figure3.md``, Figure 3's final errors beside the paper's;
* Supplementary Figure 4 where trained FC1-1000 runs of BP, DFA and DRTP have their checkpoints
  here: the distribution of the hidden tanh activations of 10,000 training images (the final
  network; the paper samples them over the course of training), its histograms kept in
  ``supp-fig4-activations.json`` so that the figure is drawn again where the checkpoints are not
  (a clean clone: checkpoints are not committed);
* where experiments hold spiking runs and their rate twins, the spike-versus-rate gap (spiking
  minus rate test error) against T per dataset, encoder and rule;
* ``index.md``, linking them, with the runs pending.

Figures and tables pool a configuration's seeds within one experiment: runs of two experiments
(another optimizer or rate) are shown apart, named by their experiment where two show the same
network. A run two experiments share (the same numbers: they may differ in length alone) is one
run, read from the first folder that finished it. ``device``: the runs of an experiment run with
``--device`` (their own folders).

A run's figure of merit is its test error averaged over its last k epochs, k = min(10, n // 10)
and at least 1: the paper's last 10 of 100 epochs, while a short run is summarised by its final
epochs rather than by a mean that reaches back to its first ones.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from snn_drtp.core.atomic import atomic_write_bytes, atomic_write_json
from snn_drtp.core.metrics import figure_of_merit
from snn_drtp.core.networks import load_spec
from snn_drtp.core.paper import DROPOUTS, SYNTH_CLASSIFICATION_FINAL, TABLE1_NETWORKS, paper_mnist
from snn_drtp.data.datasets import load_dataset
from snn_drtp.runs.config import TrainConfig
from snn_drtp.runs.plots import activation_density, seed_bands, spike_rate_gap
from snn_drtp.runs.training import load_trained, network_change
from snn_drtp.studies.experiments import load_experiment, on_device
from snn_drtp.studies.sweeps import finished_metrics

RULES = ("bp", "fa", "dfa", "drtp", "shallow", "sdfa")
"""Table 1's columns, then Supplementary Table 1's sDFA."""
BAND_MARGIN = 0.3
"""Percentage points added to twice the paper's std: the band a reproduced cell should fall in."""
FIGURE3_EPOCHS = 500
"""The epoch of Figure 3's final errors (the paper's runs are 500 epochs long)."""


@dataclass
class Cell:
    """One (network, dropout, rule) of the table: our runs' figures of merit and the paper's."""

    network: str
    dropout: float
    rule: str
    values: list[float] = field(default_factory=list)

    @property
    def paper(self) -> tuple[float, float] | None:
        return paper_mnist(self.network, self.rule, self.dropout)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    @property
    def in_band(self) -> bool | None:
        """|ours - paper| <= 2 x paper std + 0.3 (None without a paper cell)."""
        paper = self.paper
        return None if paper is None else abs(self.mean - paper[0]) <= 2 * paper[1] + BAND_MARGIN

    def text(self) -> str:
        paper = self.paper
        ours = f"{self.mean:.2f} +- {self.std:.2f} (n={len(self.values)})"
        if paper is None:
            return ours
        return f"{ours} / {paper[0]:.2f} +- {paper[1]:.2f} {'in' if self.in_band else 'OUT'}"


@dataclass(frozen=True)
class Run:
    """A run of the experiments: its configuration, its folder, its metrics once finished and the
    experiment folders that list it."""

    config: TrainConfig
    out: Path
    finished: dict[str, Any] | None
    experiments: tuple[Path, ...] = ()


def experiment_runs(experiments: list[Path], device: str | None = None) -> list[Run]:
    """Each distinct run of ``experiments`` once (a run in two experiments has the same numbers, so
    the same folder name): a finished copy where there is one, one with its checkpoint first, else
    its first folder. ``device``: the runs as an experiment run with ``--device`` wrote them (a kind
    of device gives its own numbers, so its own folders), whether or not this machine has one."""
    copies: dict[str, list[Run]] = {}
    for folder in experiments:
        _, configs = load_experiment(folder)
        for config in on_device(configs, device):
            out = folder / "runs" / config.run_name()
            copies.setdefault(config.run_name(), []).append(Run(config, out, finished_metrics(config, out)))
    return [
        replace(
            max(runs, key=lambda r: (r.finished is not None, (r.out / "checkpoint.pt").exists())),
            experiments=tuple(r.out.parent.parent for r in runs),
        )
        for runs in copies.values()
    ]


def follows_table1_protocol(config: TrainConfig) -> bool:
    """Whether a run is one of Table 1's: a Table 1 network on all of MNIST, batch 60, Adam at the
    rate of Table 3, He-uniform weights, for any number of epochs (the paper's are 100). Other runs
    of the same networks, such as the spike-versus-rate study's rate twins, are not its cells."""
    return (
        config.network in TABLE1_NETWORKS
        and config.batch_size == 60
        and config.optimizer == "adam"
        and not config.zero_init
        and config.train_subset is None
        and config.lr == replace(config, lr=None, device="cpu").validate().lr
    )


def collect(runs: list[Run]) -> tuple[dict[tuple[str, float, str], Cell], list[str]]:
    """The finished runs of Table 1's protocol by (network, dropout, rule), and the folders of those
    not finished yet."""
    cells: dict[tuple[str, float, str], Cell] = {}
    pending = []
    for run in runs:
        config = run.config
        if config.engine != "rate" or config.dataset != "mnist" or not follows_table1_protocol(config):
            continue
        if run.finished is None:
            pending.append(str(run.out))
            continue
        key = (config.network, config.dropout, config.rule)
        cells.setdefault(key, Cell(*key)).values.append(figure_of_merit(run.finished["test_error"]))
    return cells, pending


def experiment_name(run: Run) -> str:
    """The name of the (first) experiment folder a run belongs to: runs of two experiments (other
    optimizers or rates) are not pooled as if they were seeds of one configuration."""
    return run.experiments[0].name if run.experiments else ""


def synthetic_groups(runs: list[Run]) -> dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]]:
    """Per experiment, synthetic dataset and network (the paper's Figures 2 and 3), per rule, the
    metrics of every run with at least one finished epoch (runs still training included: a figure
    shows the epochs all of a rule's runs have reached)."""
    groups: dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]] = {}
    for run in runs:
        if not run.config.dataset.startswith("synth-"):
            continue
        metrics = run.finished
        if metrics is None:
            try:
                metrics = json.loads((run.out / "metrics.json").read_text())
                if network_change(run.out, load_spec(run.config.network)) is not None:
                    continue  # a run of the network as it was, not as its file reads now
            except (OSError, ValueError):
                continue
        if metrics.get("epoch"):
            key = (experiment_name(run), run.config.dataset, run.config.network)
            groups.setdefault(key, {}).setdefault(run.config.rule, []).append(metrics)
    return groups


def final_error_lines(groups: dict[str, list[dict[str, Any]]], epochs: int) -> list[str]:
    """Figure 3's numbers as a table: per rule, the train and test error (%) at the final epoch of
    the runs that reached ``epochs`` (mean +- std over them) beside the paper's (Figure 3 A and B)."""
    lines = [
        f"| rule | runs at epoch {epochs} | train error (%) | paper | test error (%) | paper |",
        "|---|---|---|---|---|---|",
    ]
    for rule, runs in groups.items():
        done = [m for m in runs if len(m["epoch"]) >= epochs]
        ours = []
        for key in ("train_error", "test_error"):
            values = [m[key][epochs - 1] for m in done]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            ours.append(f"{statistics.fmean(values):.2f} +- {std:.2f}" if values else "-")
        paper = SYNTH_CLASSIFICATION_FINAL.get(rule)
        train_paper, test_paper = (f"{v:.2f}" for v in paper) if paper else ("-", "-")
        lines.append(f"| {rule} | {len(done)} | {ours[0]} | {train_paper} | {ours[1]} | {test_paper} |")
    return lines


def spike_rate_gaps(runs: list[Run]) -> dict[tuple[str, ...], dict[int, list[float]]]:
    """The spike-versus-rate gap: per (dataset, network, epochs, encoder, rule) and T, over seeds,
    the spiking run's figure of merit minus its rate twin's (same dataset, network, rule, seed and
    every other field but the engine's), from the finished runs of static networks (the temporal
    ones have their own table)."""
    merit = {
        run.config.run_name(): figure_of_merit(run.finished["test_error"])
        for run in runs
        if run.finished is not None and run.finished.get("test_error") and run.finished["test_error"][0] is not None
    }
    gaps: dict[tuple[str, ...], dict[int, list[float]]] = {}
    for run in runs:
        config = run.config
        if not config.spiking or config.run_name() not in merit or is_temporal(config.network):
            continue
        twin = merit.get(replace(config, engine="rate").run_name())
        if twin is not None:
            key = (config.dataset, config.network, f"{config.epochs} epochs", f"{config.encoder} code", config.rule)
            gaps.setdefault(key, {}).setdefault(config.steps, []).append(merit[config.run_name()] - twin)
    return gaps


ACTIVATION_EXAMPLES = 10_000
"""Supplementary Figure 4's sample: 100 examples in each of 100 minibatches (here the first 10,000
training images through the trained network)."""


def figure4_rank(run: Run) -> list[Any]:
    """How well a finished run stands for Supplementary Figure 4: [one of Table 1's protocol, its
    epochs], compared in that order (higher first)."""
    assert run.finished is not None
    return [follows_table1_protocol(run.config), len(run.finished["epoch"])]


def trained_runs_784_1000_10(runs: list[Run]) -> dict[str, Path]:
    """For Supplementary Figure 4, per rule (BP, DFA, DRTP; FA and DFA are the same rule for one
    hidden layer), a finished FC1-1000 MNIST run at dropout 0 whose checkpoint is here: one of Table
    1's protocol first (not, say, a 5-epoch twin of the spike-versus-rate study), then the longest,
    then the first."""
    candidates: dict[str, list[tuple[bool, int, int, Path]]] = {}
    for order, run in enumerate(runs):
        config = run.config
        if (
            config.engine == "rate"
            and config.dataset == "mnist"
            and config.network == "fc1-1000"
            and config.dropout == 0.0
            and config.rule in ("bp", "dfa", "drtp")
            and run.finished is not None
            and (run.out / "checkpoint.pt").exists()
        ):
            rank = (*figure4_rank(run), -order, run.out)
            candidates.setdefault(config.rule, []).append(rank)
    return {rule: max(ranks)[3] for rule, ranks in candidates.items()}


ACTIVATION_BINS = 100
"""Supplementary Figure 4's histograms: 100 equal bins over [-1, 1]."""
FIGURE4_FILE = "supp-fig4-activations.json"
"""The report's record of Supplementary Figure 4's histograms and the runs they come from."""


FIGURE4_PANELS = {"bp": "BP", "dfa": "FA/DFA (one hidden layer: the same rule)", "drtp": "DRTP"}
"""Supplementary Figure 4's panels, in the paper's order."""


def activation_histograms(
    trained: dict[str, Path], ranks: dict[Path, list[Any]], examples: int = ACTIVATION_EXAMPLES
) -> dict[str, Any]:
    """Supplementary Figure 4's data: for each rule's run, the density p_i = n_i / (N h) of its
    hidden activations in bin i of ``ACTIVATION_BINS`` bins of width h over [-1, 1] (n_i of the
    N values; a value outside [-1, 1] is counted in no bin), with the run folder it came from and
    its :func:`figure4_rank` (``ranks``)."""
    edges = torch.linspace(-1.0, 1.0, ACTIVATION_BINS + 1, dtype=torch.float64)
    width = 2.0 / ACTIVATION_BINS
    panels = {}
    for rule, label in FIGURE4_PANELS.items():
        if rule in trained:
            values = hidden_activations(trained[rule], examples).double()
            counts = torch.histogram(values, bins=edges).hist
            density = (counts / (values.numel() * width)).tolist()
            panels[label] = {"run": trained[rule].as_posix(), "rank": ranks[trained[rule]], "density": density}
    return {"examples": examples, "edges": edges.tolist(), "panels": panels}


def merged_panels(kept: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Per panel, the kept histogram (of a run whose checkpoint is gone) or the new one, whichever
    run ranks higher (the new one on a tie), in the paper's order."""
    chosen = {}
    for label in FIGURE4_PANELS.values():
        old, now = kept.get(label), new.get(label)
        if now is None or (old is not None and old.get("rank", [False, 0]) > now["rank"]):
            now = old
        if now is not None:
            chosen[label] = now
    return chosen


def hidden_activations(run: Path, examples: int = ACTIVATION_EXAMPLES) -> torch.Tensor:
    """y_1 = tanh(W_1 x + b_1) of a trained run for the first ``examples`` MNIST training images."""
    engine = load_trained(run, device="cpu")  # a GPU run's too, on any machine
    train, _ = load_dataset("mnist")
    with torch.no_grad():
        x = train.inputs(slice(0, examples), engine.params.device)
        hidden, _ = engine.layers[0].forward(x)  # type: ignore[attr-defined]
    return hidden.flatten().cpu()


@functools.cache
def is_temporal(network: str) -> bool:
    """Whether ``network``'s spec ends in a readout (its file read once per report)."""
    return load_spec(network).temporal


TEMPORAL_RULES = ("bp", "eprop", "eprop-sym", "osttp", "drtp", "dfa", "shallow")
"""The temporal table's row order (BPTT, the reference, first)."""


def temporal_groups(runs: list[Run]) -> dict[tuple[str, str, str, str], dict[str, list[float]]]:
    """Finished runs of temporal networks (a spec ending in a readout): (experiment, dataset,
    network, engine) -> rule -> the figure of merit (test error) of each seed."""
    groups: dict[tuple[str, str, str, str], dict[str, list[float]]] = {}
    for run in runs:
        if run.finished is None or not is_temporal(run.config.network):
            continue
        key = (experiment_name(run), run.config.dataset, run.config.network, run.config.engine)
        errors = groups.setdefault(key, {}).setdefault(run.config.rule, [])
        errors.append(figure_of_merit([e for e in run.finished["test_error"] if e is not None]))
    return groups


def temporal_lines(groups: dict[tuple[str, str, str, str], dict[str, list[float]]]) -> list[str]:
    """A markdown table: test error mean +- std (n seeds) per rule, and its gap to BPTT's mean; a
    network shown in two experiments is named with its experiment."""
    lines = [
        "| dataset | network | engine | rule | test error (%) | seeds | minus BPTT (pp) |",
        "|---|---|---|---|---|---|---|",
    ]
    shown = [key[1:] for key in groups]
    for (experiment, dataset, network, engine), rules in sorted(groups.items(), key=lambda item: item[0][1:]):
        if shown.count((dataset, network, engine)) > 1:
            network = f"{network} ({experiment})"
        reference = statistics.fmean(rules["bp"]) if "bp" in rules else None
        for rule in sorted(
            rules, key=lambda r: TEMPORAL_RULES.index(r) if r in TEMPORAL_RULES else len(TEMPORAL_RULES)
        ):
            errors = rules[rule]
            mean = statistics.fmean(errors)
            spread = f" +- {statistics.stdev(errors):.2f}" if len(errors) > 1 else ""
            gap = "" if reference is None or rule == "bp" else f"{mean - reference:+.2f}"
            lines.append(f"| {dataset} | {network} | {engine} | {rule} | {mean:.2f}{spread} | {len(errors)} | {gap} |")
    return lines


def table_lines(cells: dict[tuple[str, float, str], Cell]) -> list[str]:
    lines = [
        "| network | dropout | " + " | ".join(RULES) + " |",
        "|---|---|" + "---|" * len(RULES),
    ]
    for network in TABLE1_NETWORKS:
        for dropout in DROPOUTS:
            row = [cells.get((network, dropout, rule)) for rule in RULES]
            if any(row):
                lines.append(f"| {network} | {dropout} | " + " | ".join(c.text() if c else "-" for c in row) + " |")
    return lines


def table_csv(cells: dict[tuple[str, float, str], Cell]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["network", "dropout", "rule", "runs", "mean", "std", "paper_mean", "paper_std", "in_band"])
    for (network, dropout, rule), cell in sorted(cells.items()):
        paper = cell.paper
        writer.writerow(
            [network, dropout, rule, len(cell.values), f"{cell.mean:.4f}", f"{cell.std:.4f}"]
            + ([f"{paper[0]}", f"{paper[1]}", cell.in_band] if paper else ["", "", ""])
        )
    return buffer.getvalue()


def write_report(experiments: list[str | Path], out: str | Path, device: str | None = None) -> Path:
    """The report folder ``out`` for ``experiments`` (folders or their experiment.toml); returns
    the path of its index.md."""
    folders = [Path(e).parent if Path(e).suffix == ".toml" else Path(e) for e in experiments]
    report = Path(out)
    report.mkdir(parents=True, exist_ok=True)
    runs = experiment_runs(folders, device)
    cells, pending = collect(runs)
    measured = [c for c in cells.values() if c.in_band is not None]
    inside = sum(bool(c.in_band) for c in measured)
    table = [
        "# MNIST: Table 1 and Supplementary Table 1 (sDFA)",
        "",
        "Test error (%), ours (mean +- std over seeds of each run's mean over its last 10 of 100 epochs, or its "
        "final epochs when shorter) / the paper's (10 trials); 'in': within the paper's mean +- "
        f"(2 std + {BAND_MARGIN}).",
        "",
        *table_lines(cells),
        "",
        f"{inside} of {len(measured)} cells in band; {len(pending)} runs pending.",
    ]
    atomic_write_bytes(report / "table1.md", ("\n".join(table) + "\n").encode())
    atomic_write_bytes(report / "table1.csv", table_csv(cells).encode())
    index = ["# Report", "", f"Experiments: {', '.join(f'`{f}`' for f in folders)}.", "", "- [Table 1](table1.md)"]
    for folder in folders:
        for figure in ("learning_curves.png", "angles.png"):
            if (folder / figure).exists():
                target = report / f"{folder.name}-{figure}"
                atomic_write_bytes(target, (folder / figure).read_bytes())
                index.append(f"- [{folder.name}: {figure.removesuffix('.png').replace('_', ' ')}]({target.name})")
    figures = {"synth-regression": "Figure 2", "synth-classification": "Figure 3"}
    synthetic = synthetic_groups(runs)
    stems = [Path(network).stem for _, _, network in synthetic]
    classification = [key for key in synthetic if key[1] == "synth-classification"]
    for (experiment, dataset, network), groups in sorted(synthetic.items()):
        stem = Path(network).stem  # a network given as a path is named by its file
        alone = stems.count(stem) == 1
        target = report / (f"{stem}.png" if alone else f"{experiment}-{dataset}-{stem}.png")
        name, where = figures.get(dataset, dataset), "" if alone else f", experiment {experiment}"
        seed_bands(groups, target, f"{name}: {dataset}, network {stem}{where}, mean +- std over seeds")
        index.append(f"- [{name} ({dataset}, network {stem}{where})]({target.name})")
        if dataset == "synth-classification":
            lines = [
                "# Figure 3: final errors on the synthetic classification task",
                "",
                f"Ours: the runs that reached epoch {FIGURE3_EPOCHS}, the error at that epoch; the paper's: the "
                "mean of 10 runs after 500 epochs (Figure 3, panels A and B; no DRTP there).",
                "",
                *final_error_lines(groups, FIGURE3_EPOCHS),
            ]
            final = "figure3.md" if len(classification) == 1 else f"figure3-{experiment}-{stem}.md"
            atomic_write_bytes(report / final, ("\n".join(lines) + "\n").encode())
            index.append(f"- [Figure 3: final errors beside the paper's]({final})")
    trained = trained_runs_784_1000_10(runs)
    if trained:
        histograms = activation_histograms(trained, {run.out: figure4_rank(run) for run in runs if run.finished})
        if (report / FIGURE4_FILE).exists():  # the panels of runs whose checkpoints are gone stay
            kept = json.loads((report / FIGURE4_FILE).read_text())
            if (kept.get("examples"), kept.get("edges")) == (histograms["examples"], histograms["edges"]):
                histograms["panels"] = merged_panels(kept["panels"], histograms["panels"])
        atomic_write_json(report / FIGURE4_FILE, histograms)
    if (report / FIGURE4_FILE).exists():  # checkpoints do not travel with the runs: their histograms do
        histograms = json.loads((report / FIGURE4_FILE).read_text())
        panels = histograms["panels"]
        ordered = [label for label in FIGURE4_PANELS.values() if label in panels]  # JSON keys come sorted
        densities = {label: panels[label]["density"] for label in ordered}
        title = f"784-1000-10 on MNIST, hidden tanh units of {histograms['examples']:,} training images"
        activation_density(densities, histograms["edges"], report / "supp-fig4-activations.png", title)
        sources = ", ".join(f"`{panels[label]['run']}`" for label in ordered)
        index.append(
            "- [Supplementary Figure 4: hidden activation distributions](supp-fig4-activations.png) "
            f"([histograms]({FIGURE4_FILE}) of {sources})"
        )
    elif (report / "supp-fig4-activations.png").exists():
        index.append(
            "- [Supplementary Figure 4: hidden activation distributions](supp-fig4-activations.png) (kept from an "
            "earlier report: the trained FC1-1000 runs' checkpoints are not here to draw it again)"
        )
    temporal = temporal_groups(runs)
    if temporal:
        lines = [
            "# Temporal tasks: OSTTP, e-prop and three-factor DRTP against BPTT",
            "",
            "Test error (%), mean +- std over seeds of each run's figure of merit (its final epoch for runs "
            "shorter than 20 epochs); 'minus BPTT': the rule's mean minus BPTT's in the same dataset, network "
            "and engine.",
            "",
            *temporal_lines(temporal),
        ]
        atomic_write_bytes(report / "temporal.md", ("\n".join(lines) + "\n").encode())
        index.append("- [Temporal tasks: OSTTP, e-prop, DRTP and BPTT](temporal.md)")
    gaps = spike_rate_gaps(runs)
    if gaps:
        spike_rate_gap(gaps, report / "spike-vs-rate-gap.png", "spiking minus rate test error against T")
        index.append("- [Spike versus rate: the gap against T](spike-vs-rate-gap.png)")
    index += ["", "Runs finished, per experiment:", ""]
    for folder in folders:
        listed = [run for run in runs if folder in run.experiments]
        index.append(f"- `{folder}`: {sum(run.finished is not None for run in listed)} of {len(listed)}")
    waiting = [run.out for run in runs if run.finished is None]
    index += ["", f"{len(waiting)} runs pending (not finished):", ""] + [f"- `{p}`" for p in waiting]
    atomic_write_bytes(report / "index.md", ("\n".join(index) + "\n").encode())
    return report / "index.md"
