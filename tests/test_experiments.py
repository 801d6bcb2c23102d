"""Experiment grids: one run per configuration that matters, groups over seeds, summaries."""

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import snn_drtp.studies.sweeps as sweeps
from snn_drtp.studies.experiments import group_labels, load_experiment, run_experiment, summarise_existing
from snn_drtp.studies.validation import _gaps, _sweep_rows


def write_spec(folder, text: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "experiment.toml").write_text(text)
    return folder


BASE = """
name = "tiny"
[base]
network = "synth-classification"
dataset = "synth-classification"
epochs = 1
batch_size = 50
train_subset = 200
test_subset = 100
angle_batch = 50
"""


def test_a_grid_over_lr_and_dropout_gives_one_run_per_combination(tmp_path):
    spec = write_spec(tmp_path / "e", BASE + "[grid]\nlr = [1e-3, 2e-3]\ndropout = [0.0, 0.1]\nseed = [0, 1]\n")
    _, configs = load_experiment(spec)
    assert len(configs) == 8 and len({c.run_name() for c in configs}) == 8
    labels = group_labels(configs)
    assert len(set(labels)) == 4
    assert "rate synth-classification drtp dropout=0.1 lr=0.002" in labels


def test_a_rate_run_is_shared_by_every_step_count_of_a_spiking_grid(tmp_path):
    spec = write_spec(tmp_path / "e", BASE + '[grid]\nengine = ["spiking", "rate"]\nsteps = [5, 10]\n')
    _, configs = load_experiment(spec)
    assert sorted(c.run_name().rsplit("-", 1)[0] for c in configs) == [
        "rate-synth-classification-drtp-seed0",
        "spiking-synth-classification-drtp-T10-seed0",
        "spiking-synth-classification-drtp-T5-seed0",
    ]


@pytest.mark.slow
def test_experiment_runs_resumes_and_summarises(tmp_path):
    spec = write_spec(tmp_path / "e", BASE + "[grid]\nlr = [1e-3, 5e-3]\n")
    summary = run_experiment(spec, jobs=1)
    assert len(summary["groups"]) == 2
    assert {g["lr"] for g in summary["groups"].values()} == {1e-3, 5e-3}
    for g in summary["groups"].values():
        metrics = json.loads((spec / "runs" / g["runs"][0] / "metrics.json").read_text())
        assert g["final"] == [metrics["test_error"][-1]]
    (spec / "summary.md").unlink()
    again = summarise_existing(spec)
    assert again == json.loads((spec / "summary.json").read_text())
    assert "lr=0.005" in (spec / "summary.md").read_text()


@pytest.mark.slow
def test_a_summary_takes_the_last_tenth_of_the_epochs_and_the_test_loss_of_a_regression(tmp_path):
    text = BASE.replace("epochs = 1", "epochs = 20") + "[grid]\nseed = [0, 1]\n"
    summary = run_experiment(write_spec(tmp_path / "c", text), jobs=1, log=None)
    (group,) = summary["groups"].values()
    errors = [
        json.loads((tmp_path / "c" / "runs" / r / "metrics.json").read_text())["test_error"] for r in group["runs"]
    ]
    assert summary["measure"] == "test error (%)"
    assert group["figure_of_merit"] == [pytest.approx((e[-2] + e[-1]) / 2) for e in errors]  # 20 epochs: the last 2
    regression = text.replace("synth-classification", "synth-regression").replace("epochs = 20", "epochs = 3")
    summary = run_experiment(write_spec(tmp_path / "r", regression), jobs=1, log=None)
    (group,) = summary["groups"].values()
    losses = [
        json.loads((tmp_path / "r" / "runs" / r / "metrics.json").read_text())["test_loss"] for r in group["runs"]
    ]
    assert summary["measure"] == "test loss (MSE)"
    assert group["figure_of_merit"] == [pytest.approx(loss[-1]) for loss in losses]  # 3 epochs: the final one
    assert group["mean"] == pytest.approx((losses[0][-1] + losses[1][-1]) / 2)
    assert "test loss (MSE), last epochs" in (tmp_path / "r" / "summary.md").read_text()


@pytest.mark.slow
def test_evaluate_section_tests_every_run_and_adds_a_column(tmp_path):
    whole_test_split = BASE.replace("test_subset = 100\n", "")  # evaluate_run tests on a whole split
    spec = write_spec(
        tmp_path / "e", whole_test_split + '[grid]\nseed = [0, 1]\n[evaluate]\ndatasets = ["synth-classification"]\n'
    )
    summary = run_experiment(spec, jobs=1)
    (group,) = summary["groups"].values()
    found = group["synth-classification_test"]
    assert [100 - r["accuracy"] for r in found] == pytest.approx(group["final"])
    table = [line for line in (spec / "summary.md").read_text().splitlines() if line.startswith("|")]
    assert "| synth-classification test accuracy (%) |" in table[0]
    assert len({line.count("|") for line in table}) == 1  # header, rule and rows have the same columns


def test_experiment_spec_errors_name_the_file(tmp_path):
    bad = write_spec(tmp_path / "bad", 'name = "x"\n[base\nnetwork = 1\n')
    with pytest.raises(ValueError, match=r"experiment.toml: not valid TOML"):
        load_experiment(bad)
    unknown = write_spec(tmp_path / "unknown", BASE + "[grid]\nlearning_rate = [1e-3]\n")
    with pytest.raises(ValueError, match=r"\[grid\] has unknown config keys \['learning_rate'\]"):
        load_experiment(unknown)
    missing = write_spec(tmp_path / "missing", BASE + "[grid]\nlr = [1e-3]\n")
    with pytest.raises(FileNotFoundError, match="run `snn-drtp experiment"):
        summarise_existing(missing)


def test_a_run_continued_past_the_experiments_epochs_is_read_as_its_first_epochs(tmp_path):
    """A folder holding 4 epochs, read for an experiment of 3: its first 3, summarised over them,
    by the sweep (a finished run) and by --summarise."""
    spec = write_spec(tmp_path / "e", BASE.replace("epochs = 1", "epochs = 3"))
    (config,) = load_experiment(spec)[1]
    run = spec / "runs" / config.run_name()
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config.to_dict() | {"epochs": 4}))
    errors = [40.0, 30.0, 20.0, 10.0]
    angles = {"layer1": [80.0, 70.0, 60.0, 50.0]}
    metrics = {"epoch": [1, 2, 3, 4], "train_error": errors, "test_error": errors, "train_loss": errors}
    metrics |= {"test_loss": errors, "seconds": [1.0, 2.0, 3.0, 9.0], "angle_to_bp": angles}
    (run / "metrics.json").write_text(json.dumps(metrics))
    read = sweeps.finished_metrics(config, run)
    assert read is not None and read["epoch"] == [1, 2, 3] and read["angle_to_bp"] == {"layer1": [80.0, 70.0, 60.0]}
    assert read["final_test_error"] == 20.0 and read["last10_test_error"] == pytest.approx(30.0)
    assert read["median_seconds_per_epoch"] == 2.0
    assert sweeps.finished_metrics(replace(config, epochs=4), run) == metrics
    (group,) = summarise_existing(spec)["groups"].values()
    assert group["final"] == [20.0]


@pytest.mark.slow
def test_a_finished_run_is_read_not_redone_even_without_its_checkpoint(tmp_path, monkeypatch):
    """A committed run (metrics and config, no checkpoint) is taken as it is; a run of the same
    folder name whose config.json gives other numbers, or that stopped part-way, is trained."""
    spec = write_spec(tmp_path / "e", BASE + "[grid]\nseed = [0, 1]\n")
    first = run_experiment(spec, jobs=1)
    runs = sorted((spec / "runs").iterdir())
    for run in runs:
        (run / "checkpoint.pt").unlink()
    trained = []
    real_train = sweeps.train

    def counted(config, out, **kwargs):
        trained.append(out)
        return real_train(config, out, **kwargs)

    monkeypatch.setattr(sweeps, "train", counted)
    again = run_experiment(spec, jobs=1)
    assert trained == [] and again["groups"] == first["groups"]
    _, configs = load_experiment(spec)
    by_folder = {config.run_name(): config for config in configs}
    config = by_folder[runs[1].name]
    assert sweeps.finished_metrics(config, runs[1]) is not None
    assert sweeps.finished_metrics(replace(config, lr=0.5), runs[1]) is None
    assert sweeps.finished_metrics(replace(config, epochs=2), runs[1]) is None
    (runs[1] / "metrics.json").unlink()
    run_experiment(spec, jobs=1)
    assert trained == [str(runs[1])]


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_run_is_reported_and_the_others_finish(tmp_path, jobs):
    """One run's folder is taken by a file: that run fails with its error, named in the summary and
    the progress log; the other runs train and are summarised."""
    spec = write_spec(tmp_path / "e", BASE + "[grid]\nseed = [0, 1, 2]\n")
    _, configs = load_experiment(spec)
    blocked = spec / "runs" / configs[1].run_name()
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    lines: list[str] = []
    summary = run_experiment(spec, jobs=jobs, log=lines.append)
    assert list(summary["failed"]) == [blocked.name] and "not a folder" in summary["failed"][blocked.name]
    (group,) = summary["groups"].values()
    assert sorted(group["seeds"]) == [0, 2]
    assert f"- `{blocked.name}`: " in (spec / "summary.md").read_text()
    assert lines[-1].startswith("sweep: 3/3 done (0 read, 2 trained, 1 failed), 0 running, 0 left")
    assert sum(f"{blocked.name} failed" in line for line in lines) == 1


def test_progress_counts_and_estimates_the_time_left():
    """The estimate is the mean time of the runs trained so far, times the runs left, over jobs."""
    lines: list[str] = []
    progress = sweeps.Progress(total=10, jobs=2, log=lines.append)
    progress.add(sweeps.RunResult("a", {"epoch": [1]}))
    assert lines[-1] == "sweep: 1/10 done (1 read, 0 trained, 0 failed), 2 running, 9 left"
    progress.add(sweeps.RunResult("b", {"epoch": [1]}, trained=True, seconds=600.0))
    progress.add(sweeps.RunResult("c", None, error="ValueError: x", trained=True, seconds=1200.0))
    assert progress.eta_seconds() == pytest.approx(900.0 * 7 / 2)
    assert lines[-1] == (
        "sweep: 3/10 done (1 read, 1 trained, 1 failed), 2 running, 7 left, about 52 min left; c failed: ValueError: x"
    )


def test_an_override_sets_fields_for_the_matching_runs_only(tmp_path):
    """[[override]] when = {rule = [...]} set = {...}: the paper's FA-based runs from zero weights,
    BP's not, in one grid."""
    text = BASE + (
        '[grid]\nrule = ["bp", "fa", "dfa"]\nseed = [0, 1]\n'
        '[[override]]\nwhen = {rule = ["fa", "dfa"]}\nset = {zero_init = true, lr = 2e-3}\n'
    )
    _, configs = load_experiment(write_spec(tmp_path / "e", text))
    assert len(configs) == 6
    for config in configs:
        assert config.zero_init == (config.rule != "bp")
        assert config.lr == (2e-3 if config.rule != "bp" else 5e-4)


@pytest.mark.parametrize(
    "override, message",
    [
        ('[[override]]\nwhen = {rul = ["fa"]}\nset = {zero_init = true}\n', "when has unknown config keys"),
        ('[[override]]\nwhen = {rule = "fa"}\nset = {zero_init = true}\n', "when rule = 'fa' is not a non-empty list"),
        ('[[override]]\nwhen = {rule = ["fa"]}\nset = {zero_init = "yes"}\n', "zero_init"),
        ('[[override]]\nwhen = {rule = ["fa"]}\n', "must hold exactly when"),
        ("override = 3\n", "is not a list of tables"),
    ],
)
def test_bad_overrides_are_refused_with_the_file_and_the_problem(tmp_path, override, message):
    text = (override + BASE) if override.startswith("override =") else BASE + '[grid]\nrule = ["fa"]\n' + override
    spec = write_spec(tmp_path / "e", text)
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        load_experiment(spec)
    assert str(spec / "experiment.toml") in str(info.value)


def test_the_committed_validation_experiments_summarise_into_the_spike_rate_gap(tmp_path):
    root = Path(__file__).resolve().parent.parent / "experiments"
    for name in ("spiking-vs-rate-mnist", "spiking-T-sweep"):
        shutil.copytree(root / name, tmp_path / name)
    versus = summarise_existing(tmp_path / "spiking-vs-rate-mnist")
    finals = {}
    for run in (tmp_path / "spiking-vs-rate-mnist" / "runs").iterdir():
        config = json.loads((run / "config.json").read_text())
        finals[(config["engine"], config["seed"])] = json.loads((run / "metrics.json").read_text())["test_error"][-1]
    gap = _gaps(versus)
    seeds = sorted({seed for _, seed in finals})
    assert gap["gap_final"] == pytest.approx([finals["spiking", s] - finals["rate", s] for s in seeds])
    rows = _sweep_rows(summarise_existing(tmp_path / "spiking-T-sweep"))
    assert [row["T"] for row in rows] == sorted(row["T"] for row in rows) and len(rows) >= 2
    assert all(row["gap"] == pytest.approx(row["spiking"] - row["rate"]) for row in rows)
