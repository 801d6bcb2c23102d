"""snn-drtp report: the paper's table from experiment folders, figures of merit written out here."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from snn_drtp.cli import main
from snn_drtp.core.metrics import figure_of_merit
from snn_drtp.runs.config import TrainConfig

SPEC = """
name = "table"
[base]
dataset = "mnist"
epochs = 30
[grid]
rule = ["drtp", "bp"]
seed = [0, 1]
"""


def experiment(folder, text: str):
    """An experiment folder holding ``text`` as its experiment.toml."""
    folder.mkdir(parents=True)
    (folder / "experiment.toml").write_text(text)
    return folder


def finished_run(folder, config: TrainConfig, errors: list[float]) -> None:
    """A run folder as a finished run leaves it (config.json, metrics.json), for the table's input."""
    run = folder / "runs" / config.run_name()
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    (run / "metrics.json").write_text(json.dumps({"epoch": list(range(1, len(errors) + 1)), "test_error": errors}))


def test_figure_of_merit_is_the_mean_of_the_last_tenth_up_to_ten_epochs():
    assert figure_of_merit([9.0] * 90 + [float(i) for i in range(10)]) == pytest.approx(4.5)
    assert figure_of_merit([5.0, 4.0, 3.0]) == 3.0  # short: the final epoch
    assert figure_of_merit([9.0] * 27 + [3.0, 2.0, 1.0]) == pytest.approx(2.0)  # 30 epochs: the last 3
    with pytest.raises(ValueError, match="no finished epoch"):
        figure_of_merit([])


def test_report_puts_our_cells_beside_the_papers_with_the_band(tmp_path, capsys):
    folder = experiment(tmp_path / "table", SPEC)
    base = TrainConfig(dataset="mnist", epochs=30).validate()
    # DRTP on fc1-500 (paper 4.61 +- 0.13, band +- 0.56): seeds at 4.91 and 5.31, mean 5.11, in band
    for seed, last in ((0, 4.91), (1, 5.31)):
        finished_run(folder, replace(base, rule="drtp", seed=seed).validate(), [9.0] * 27 + [last] * 3)
    # BP (paper 1.65 +- 0.06, band +- 0.42): one seed at 2.10, out of band; the other not finished
    finished_run(folder, replace(base, rule="bp", seed=0).validate(), [5.0] * 27 + [2.1] * 3)
    assert main(["report", str(folder), "--out", str(tmp_path / "report")]) == 0
    table = (tmp_path / "report" / "table1.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| fc1-500 | 0.0 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "2.10 +- 0.00 (n=1) / 1.65 +- 0.06 OUT"
    assert cells[5] == "5.11 +- 0.28 (n=2) / 4.61 +- 0.13 in"
    assert "1 of 2 cells in band; 1 runs pending." in table
    rows = {(r["rule"]): r for r in csv.DictReader((tmp_path / "report" / "table1.csv").open())}
    assert rows["drtp"]["runs"] == "2" and rows["drtp"]["in_band"] == "True" and rows["bp"]["in_band"] == "False"
    index = (tmp_path / "report" / "index.md").read_text()
    assert "[Table 1](table1.md)" in index and "rate-fc1-500-bp-seed1-" in index
    assert f"- `{folder}`: 3 of 4" in index


def test_a_run_in_two_experiments_counts_once(tmp_path):
    """The same configuration in two experiments is the same run (same numbers): one value."""
    base = TrainConfig(dataset="mnist", epochs=30).validate()
    for name in ("a", "b"):
        folder = experiment(tmp_path / name, SPEC.replace('rule = ["drtp", "bp"]', 'rule = ["drtp"]'))
        for seed in (0, 1):
            finished_run(folder, replace(base, rule="drtp", seed=seed).validate(), [4.0 + seed] * 30)
    main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "report")])
    assert "| 4.50 +- 0.71 (n=2) / 4.61 +- 0.13 in |" in (tmp_path / "report" / "table1.md").read_text()
    index = (tmp_path / "report" / "index.md").read_text()
    assert f"- `{tmp_path / 'a'}`: 2 of 2" in index and f"- `{tmp_path / 'b'}`: 2 of 2" in index


def test_seed_bands_plot_the_mean_over_seeds_with_one_std(tmp_path):
    """Figures 2 and 3: per rule, mean and +- 1 std over its runs, over the epochs all reached."""
    import numpy as np

    from snn_drtp.runs.plots import seed_bands

    def run(errors, angles):
        return {
            "epoch": list(range(1, len(errors) + 1)),
            "train_error": [e + 1 for e in errors],
            "test_error": errors,
            "angle_to_bp": {"layer1": angles, "layer2": [a + 10 for a in angles]},
        }

    groups = {"dfa": [run([4.0, 2.0, 1.0], [50.0, 40.0, 30.0]), run([6.0, 4.0], [70.0, 60.0])]}
    fig = seed_bands(groups, tmp_path / "fig.png", "Figure 3")
    assert (tmp_path / "fig.png").stat().st_size > 0
    train, test, angle1, angle2 = fig.axes[:4]
    assert test.get_title() == "(B) test error (%)" and angle2.get_title() == "(D) angle layer2"
    (line,) = test.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [5.0, 3.0])  # 2 epochs: what both runs reached
    np.testing.assert_allclose(train.get_lines()[0].get_ydata(), [6.0, 4.0])
    np.testing.assert_allclose(angle1.get_lines()[0].get_ydata(), [60.0, 50.0])
    band = test.collections[0].get_paths()[0].vertices[:, 1]
    assert np.isclose(band.min(), 3.0 - np.sqrt(2)) and np.isclose(band.max(), 5.0 + np.sqrt(2))
    assert test.get_yscale() == "log" and angle1.get_yscale() == "linear"


def test_figure3_table_gives_the_final_epoch_errors_beside_the_papers():
    from snn_drtp.studies.report import final_error_lines

    def run(train, test):
        return {"epoch": list(range(1, len(test) + 1)), "train_error": train, "test_error": test}

    groups = {"bp": [run([9.0, 1.0], [9.0, 2.0]), run([9.0, 3.0], [9.0, 4.0]), run([5.0], [5.0])], "drtp": []}
    bp, drtp = final_error_lines(groups, 2)[2:]
    assert bp == "| bp | 2 | 2.00 +- 1.41 | 0.19 | 3.00 +- 1.41 | 1.85 |"  # the run that stopped at 1 is left out
    assert drtp == "| drtp | 0 | - | - | - | - |"


@pytest.mark.slow
def test_report_draws_the_synthetic_figures_from_real_runs(tmp_path):
    from snn_drtp.studies.experiments import run_experiment

    folder = experiment(
        tmp_path / "fig3",
        'name = "fig3"\n[base]\nnetwork = "synth-classification"\ndataset = "synth-classification"\nepochs = 2\n'
        'batch_size = 50\ntrain_subset = 200\ntest_subset = 100\nangle_batch = 50\n[grid]\nrule = ["dfa", "bp"]\n',
    )
    run_experiment(folder, log=None)
    main(["report", str(folder), "--out", str(tmp_path / "report")])
    assert (tmp_path / "report" / "synth-classification.png").stat().st_size > 0
    assert (
        "[Figure 3 (synth-classification, network synth-classification)](synth-classification.png)"
        in (tmp_path / "report" / "index.md").read_text()
    )


@pytest.mark.slow
def test_two_experiments_of_one_synthetic_network_are_two_figures_not_pooled_seeds(tmp_path):
    """The same network file (given as a path) under NAG and under Adam, in two experiments: two
    figures and two Figure 3 tables named by experiment, each of its own run, not one of two seeds."""
    from snn_drtp.runs.training import RunFolderMismatchError
    from snn_drtp.studies.experiments import run_experiment, summarise_existing
    from snn_drtp.studies.report import experiment_runs, synthetic_groups

    network = tmp_path / "nets" / "net.toml"
    network.parent.mkdir()
    network.write_text((Path(__file__).resolve().parent.parent / "networks" / "synth-classification.toml").read_text())
    folders = [
        experiment(
            tmp_path / name,
            f'name = "{name}"\n[base]\nnetwork = "{network}"\ndataset = "synth-classification"\nepochs = 1\n'
            f'batch_size = 50\ntrain_subset = 100\ntest_subset = 50\nangle_batch = 0\nlr = 1e-3\nrule = "bp"\n'
            f'optimizer = "{optimizer}"\n',
        )
        for name, optimizer in (("nag-runs", "nag"), ("adam-runs", "adam"))
    ]
    for folder in folders:
        run_experiment(folder, log=None)
    groups = synthetic_groups(experiment_runs(folders))
    assert {key: len(rules["bp"]) for key, rules in groups.items()} == {
        ("nag-runs", "synth-classification", str(network)): 1,
        ("adam-runs", "synth-classification", str(network)): 1,
    }
    report = tmp_path / "report"
    main(["report", *map(str, folders), "--out", str(report)])
    index = (report / "index.md").read_text()
    for name in ("nag-runs", "adam-runs"):
        assert (report / f"{name}-synth-classification-net.png").stat().st_size > 0
        assert "| bp | 0 |" in (report / f"figure3-{name}-net.md").read_text()  # 1 epoch: none reached 500
        assert f"(synth-classification, network net, experiment {name})" in index
    assert not (report / "nets").exists()
    network.write_text(network.read_text().replace('activation = "tanh"', 'activation = "sigmoid"', 1))
    assert synthetic_groups(experiment_runs(folders)) == {}  # runs of the network as it was: not drawn
    with pytest.raises(RunFolderMismatchError, match="file has changed since"):
        summarise_existing(folders[0])


@pytest.mark.slow
def test_the_spike_versus_rate_gap_is_each_spiking_run_minus_its_rate_twin(tmp_path):
    """Spiking runs at T = 2 and 4 and their rate twin, two seeds, trained here: the gap at each T is
    spiking minus rate figure of merit, seed by seed, written out from the runs' metrics."""
    from snn_drtp.studies.experiments import load_experiment, run_experiment
    from snn_drtp.studies.report import experiment_runs, spike_rate_gaps

    folder = experiment(
        tmp_path / "gap",
        'name = "gap"\n[base]\nnetwork = "synth-classification"\ndataset = "synth-classification"\nepochs = 1\n'
        "batch_size = 50\ntrain_subset = 200\ntest_subset = 100\nangle_batch = 0\nlr = 1e-3\n"
        '[grid]\nseed = [0, 1]\nengine = ["spiking", "rate"]\nsteps = [2, 4]\n',
    )
    run_experiment(folder, log=None)
    _, configs = load_experiment(folder)

    def final_error(config):
        return json.loads((folder / "runs" / config.run_name() / "metrics.json").read_text())["test_error"][-1]

    rate = {c.seed: final_error(c) for c in configs if c.engine == "rate"}
    expected = {}
    for c in configs:
        if c.engine == "spiking":
            expected.setdefault(c.steps, []).append(final_error(c) - rate[c.seed])
    gaps = spike_rate_gaps(experiment_runs([folder]))
    assert list(gaps) == [("synth-classification", "synth-classification", "1 epochs", "rate code", "drtp")]
    (by_steps,) = gaps.values()
    assert by_steps == expected and sorted(by_steps) == [2, 4]
    main(["report", str(folder), "--out", str(tmp_path / "report")])
    assert (tmp_path / "report" / "spike-vs-rate-gap.png").stat().st_size > 0


@pytest.mark.slow
def test_supplementary_figure_4_from_trained_784_1000_10_runs(tmp_path):
    """BP, DFA and DRTP on 784-1000-10, trained briefly here: the values are the hidden layer's
    tanh(W_1 x + b_1), written out here from the checkpoint's parameters; the report keeps their
    histogram (counts n_i / (N h), 100 bins over [-1, 1]) and draws the same figure from it once the
    checkpoints are gone."""
    import numpy as np
    import torch

    from snn_drtp.data import load_dataset
    from snn_drtp.studies.experiments import run_experiment
    from snn_drtp.studies.report import experiment_runs, hidden_activations, trained_runs_784_1000_10

    folder = experiment(
        tmp_path / "fig4",
        'name = "fig4"\n[base]\nnetwork = "fc1-1000"\ndataset = "mnist"\nepochs = 1\nbatch_size = 60\n'
        'train_subset = 300\ntest_subset = 100\nangle_batch = 0\n[grid]\nrule = ["bp", "dfa", "drtp", "shallow"]\n',
    )
    run_experiment(folder, log=None)
    runs = trained_runs_784_1000_10(experiment_runs([folder]))
    assert sorted(runs) == ["bp", "dfa", "drtp"]
    state = torch.load(runs["drtp"] / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    weight, bias = (v for k, v in state.items() if k.startswith("layers.0.") or k.startswith("0."))
    x = load_dataset("mnist")[0].x[:10_000].reshape(10_000, -1).float()
    expected = torch.tanh(x @ weight.T + bias).flatten()
    gpu = torch.load(runs["drtp"] / "checkpoint.pt", weights_only=False)
    gpu["config"]["device"] = "cuda"  # as a run trained on a GPU records it: read on the CPU, on any machine
    torch.save(gpu, runs["drtp"] / "checkpoint.pt")
    values = hidden_activations(runs["drtp"])  # the report's 10,000 images
    torch.testing.assert_close(values, expected)
    report = tmp_path / "report"
    main(["report", str(folder), "--out", str(report)])
    histograms = json.loads((report / "supp-fig4-activations.json").read_text())
    assert sorted(histograms["panels"]) == ["BP", "DRTP", "FA/DFA (one hidden layer: the same rule)"]
    counts, _ = np.histogram(values.double().numpy(), bins=np.linspace(-1.0, 1.0, 101))  # another library's
    density = histograms["panels"]["DRTP"]["density"]
    np.testing.assert_allclose(density, counts / (values.numel() * 0.02), rtol=1e-12)
    assert histograms["panels"]["DRTP"]["run"] == runs["drtp"].as_posix()
    figure = report / "supp-fig4-activations.png"
    drawn = figure.read_bytes()
    (runs["bp"] / "checkpoint.pt").unlink()  # one checkpoint gone: its panel is kept, not dropped
    main(["report", str(folder), "--out", str(report)])
    assert json.loads((report / "supp-fig4-activations.json").read_text()) == histograms
    for run in (runs["dfa"], runs["drtp"]):  # a clean clone: the runs' checkpoints do not travel with them
        (run / "checkpoint.pt").unlink()
    figure.unlink()
    main(["report", str(folder), "--out", str(report)])
    assert figure.read_bytes() == drawn  # drawn again from the kept histograms, and still listed
    index = (report / "index.md").read_text()
    assert "Supplementary Figure 4" in index
    listed = [index.index(runs[rule].as_posix()) for rule in ("bp", "dfa", "drtp")]
    assert listed == sorted(listed)  # the paper's order of panels: BP, FA/DFA, DRTP


def test_supplementary_figure_4_keeps_a_histogram_of_a_higher_ranked_run_than_the_new_one():
    """A kept panel (its checkpoint gone) of a Table 1 run stays against a study's 5-epoch twin;
    a new panel replaces a kept one of equal or lower rank; the panels come in the paper's order."""
    from snn_drtp.studies.report import merged_panels

    kept = {
        "DRTP": {"run": "table1/drtp", "rank": [True, 100]},
        "BP": {"run": "table1/bp", "rank": [True, 100]},
        "FA/DFA (one hidden layer: the same rule)": {"run": "short/dfa", "rank": [True, 30]},
    }
    new = {
        "BP": {"run": "study/bp", "rank": [False, 5]},
        "FA/DFA (one hidden layer: the same rule)": {"run": "table1/dfa", "rank": [True, 100]},
    }
    merged = merged_panels(kept, new)
    assert list(merged) == ["BP", "FA/DFA (one hidden layer: the same rule)", "DRTP"]
    assert [panel["run"] for panel in merged.values()] == ["table1/bp", "table1/dfa", "table1/drtp"]
    assert merged_panels(kept, {"BP": {"run": "again/bp", "rank": [True, 100]}})["BP"]["run"] == "again/bp"


def test_supplementary_figure_4_prefers_table1s_runs_to_a_studys_short_twin(tmp_path):
    """Per rule, a finished FC1-1000 run with its checkpoint: one of Table 1's protocol before a
    longer 5-epoch twin listed first (batch 100, as in the spike-versus-rate study); a twin where it
    is all."""
    from snn_drtp.studies.report import experiment_runs, trained_runs_784_1000_10

    twins = experiment(
        tmp_path / "twins",
        'name = "twins"\n[base]\nnetwork = "fc1-1000"\nepochs = 5\nbatch_size = 100\n[grid]\nrule = ["drtp", "bp"]\n',
    )
    table1 = experiment(
        tmp_path / "table1", 'name = "table1"\n[base]\nnetwork = "fc1-1000"\nrule = "drtp"\nepochs = 3\n'
    )
    base = TrainConfig(network="fc1-1000", dataset="mnist")
    chosen = {}
    for folder, config in (
        (twins, replace(base, rule="drtp", epochs=5, batch_size=100)),
        (twins, replace(base, rule="bp", epochs=5, batch_size=100)),
        (table1, replace(base, rule="drtp", epochs=3)),  # shorter than the twin, and still first
    ):
        finished_run(folder, config.validate(), [5.0] * config.epochs)
        run = folder / "runs" / config.validate().run_name()
        (run / "checkpoint.pt").write_bytes(b"")
        chosen[config.rule] = run
    assert trained_runs_784_1000_10(experiment_runs([twins, table1])) == chosen


def test_runs_of_an_experiment_run_on_a_gpu_are_reported_with_device_on_any_machine(tmp_path, capsys, monkeypatch):
    """`experiment --device cuda` writes the runs under their cuda names (a kind of device gives its
    own numbers); `report --device cuda` reads them here, with or without a GPU; without it they
    are pending, as are the cpu runs that were never trained."""
    from snn_drtp.studies.experiments import run_experiment

    folder = experiment(tmp_path / "gpu", 'name = "gpu"\n[base]\ndataset = "mnist"\nepochs = 30\nrule = "drtp"\n')
    config = replace(TrainConfig(dataset="mnist", epochs=30, rule="drtp").validate(), device="cuda")
    assert config.run_name() != replace(config, device="cpu").run_name()
    finished_run(folder, config, [4.5] * 30)
    metrics = folder / "runs" / config.run_name() / "metrics.json"  # what a summary reads too
    full = {"train_error": [4.0] * 30, "train_loss": [0.1] * 30, "test_loss": [0.1] * 30, "seconds": [1.0] * 30}
    metrics.write_text(json.dumps(json.loads(metrics.read_text()) | full | {"angle_to_bp": {}}))
    main(["report", str(folder), "--out", str(tmp_path / "cpu-report")])
    assert "0 of 0 cells in band; 1 runs pending" in (tmp_path / "cpu-report" / "table1.md").read_text()
    assert main(["report", str(folder), "--out", str(tmp_path / "gpu-report"), "--device", "cuda"]) == 0
    table = (tmp_path / "gpu-report" / "table1.md").read_text()
    assert "| 4.50 +- 0.00 (n=1) / 4.61 +- 0.13 in |" in table and "0 runs pending" in table
    assert main(["experiment", str(folder), "--summarise", "--device", "cuda"]) == 0
    assert json.loads((folder / "summary.json").read_text())["groups"]
    toml = folder / "experiment.toml"  # the device in the experiment itself: read the same way
    toml.write_text(toml.read_text().replace("[base]\n", '[base]\ndevice = "cuda"\n'))
    assert main(["report", str(folder), "--out", str(tmp_path / "toml-report")]) == 0
    assert (tmp_path / "toml-report" / "table1.md").read_text() == table
    if not torch.cuda.is_available():  # training it here is refused before any run starts, naming why
        assert main(["experiment", str(folder)]) == 2
        assert "CUDA is not available on this machine" in capsys.readouterr().err
        import snn_drtp.studies.experiments as experiments

        def sweep(*args, **kwargs):  # a Ray instance of this machine's CPUs would wait for a GPU for ever
            raise AssertionError("the sweep started on a machine without the device its runs ask for")

        monkeypatch.setattr(experiments, "run_sweep", sweep)
        with pytest.raises(ValueError, match="CUDA is not available"):  # so is a Ray instance started here
            run_experiment(folder, backend="ray")


def test_runs_outside_table1s_protocol_are_not_its_cells(tmp_path):
    """Rate fc1-500 MNIST runs at another batch size or learning rate (a study's twins) are left out."""
    folder = experiment(  # lr: Table 3's for fc1-500 DRTP, and another
        tmp_path / "other",
        'name = "other"\n[base]\ndataset = "mnist"\nepochs = 30\nrule = "drtp"\n[grid]\nlr = [1.5e-4, 1e-3]\n',
    )
    base = TrainConfig(dataset="mnist", epochs=30, rule="drtp")
    finished_run(folder, base.validate(), [4.5] * 30)
    finished_run(folder, replace(base, lr=1e-3).validate(), [9.0] * 30)
    main(["report", str(folder), "--out", str(tmp_path / "report")])
    table = (tmp_path / "report" / "table1.md").read_text()
    assert "| 4.50 +- 0.00 (n=1) / 4.61 +- 0.13 in |" in table and "0 runs pending" in table
