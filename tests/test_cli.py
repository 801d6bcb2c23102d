"""The command line: a thin layer over the API, with defaults shown and errors that name the fix."""

import json

import pytest
from conftest import SMALL_SPEC

from snn_drtp.cli import main


def test_cli_train_and_clear_errors(tmp_path, capsys):
    code = main(
        [
            "train",
            "--network",
            "synth-regression",
            "--dataset",
            "synth-regression",
            "--rule",
            "dfa",
            "--epochs",
            "2",
            "--train-subset",
            "300",
            "--test-subset",
            "100",
            "--zero-init",
            "--no-progress",
            "--out",
            str(tmp_path / "reg"),
        ]
    )
    assert code == 0
    metrics = json.loads((tmp_path / "reg" / "metrics.json").read_text())
    assert metrics["test_loss"][1] < metrics["test_loss"][0]
    assert main(["train", "--network", "no-such-net", "--epochs", "1", "--out", str(tmp_path / "x")]) == 2
    assert "no network spec 'no-such-net'" in capsys.readouterr().err
    assert main(["train", "--train-subset", "0", "--out", str(tmp_path / "y")]) == 2
    assert "train subset must be >= 1 examples" in capsys.readouterr().err


def test_train_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("(default: fc1-500)", "(default: drtp)", "(default: 60)", "(default: 25)", "(default: fast_sigmoid)"):
        assert shown in text, shown
    assert "drtp-ternary" in text


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["rules"],
        ["data"],
        ["evaluate"],
        ["experiment"],
        ["validate"],
        ["emulator-fit"],
        ["demo"],
        ["crosscheck"],
        ["nir"],
        ["nir", "export"],
        ["nir", "info"],
    ],
)
def test_every_help_page_renders(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*command, "--help"])
    assert stop.value.code == 0 and "usage: snn-drtp" in capsys.readouterr().out


def test_fetch_with_a_missing_source_folder_says_so(tmp_path, capsys):
    assert main(["data", "fetch", "mnist", "--data-dir", str(tmp_path), "--source-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert f"source folder {tmp_path / 'nope'} does not exist" in err and "train-images-idx3-ubyte" in err


def test_network_spec_that_is_not_toml_names_the_file(tmp_path, capsys):
    spec = tmp_path / "broken.toml"
    spec.write_text('name = "broken"\n[[layers]\nunits = 3\n')
    assert main(["train", "--network", str(spec), "--out", str(tmp_path / "z")]) == 2
    assert f"{spec}: not valid TOML" in capsys.readouterr().err


def test_bad_neuron_value_is_shown(tmp_path, capsys):
    args = ["train", "--engine", "spiking", "--dataset", "synth-classification", "--network", "synth-classification"]
    assert main([*args, "--threshold", "-1", "--train-subset", "10", "--out", str(tmp_path / "n")]) == 2
    assert "threshold must be > 0, got -1.0" in capsys.readouterr().err
    assert main([*args, "--slope", "0", "--train-subset", "10", "--out", str(tmp_path / "s")]) == 2
    assert "surrogate slope must be > 0, got 0.0" in capsys.readouterr().err


def test_rules_lists_every_rule_with_its_timing(capsys):
    assert main(["rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["drtp", "label"], ["drtp-ternary", "label"]]
    assert {line.split()[0] for line in lines} == {
        "bp",
        "fa",
        "dfa",
        "sdfa",
        "drtp",
        "drtp-ternary",
        "shallow",
        "osttp",
        "eprop",
        "eprop-sym",
    }


SMALL = SMALL_SPEC


@pytest.mark.slow
def test_brian2_training_and_parameters_between_engines_and_nir(tmp_path, capsys):
    """Train in Brian2; the run's parameters run in the torch engine (same predictions), leave as
    NIR and come back as the start of a torch run; crosscheck reports on the same network."""
    spec = tmp_path / "small.toml"
    spec.write_text(SMALL)
    common = ["--network", str(spec), "--dataset", "synth-classification", "--steps", "10", "--seed", "2"]
    args = ["train", "--engine", "brian2", *common, "--epochs", "1", "--train-subset", "40", "--test-subset", "30"]
    assert main([*args, "--batch-size", "20", "--lr", "0.01", "--no-progress", "--out", str(tmp_path / "b2")]) == 0
    metrics = json.loads((tmp_path / "b2" / "metrics.json").read_text())
    assert metrics["angle_to_bp"] == {}  # Brian2 runs no BPTT reference
    capsys.readouterr()
    evaluate = ["evaluate", str(tmp_path / "b2"), "--dataset", "synth-classification", "--examples", "60"]
    assert main([*evaluate, "--engine", "spiking"]) == 0
    assert "(spiking)" in capsys.readouterr().out
    evaluations = json.loads((tmp_path / "b2" / "evaluations.json").read_text())
    spiking = evaluations["synth-classification/test/first60/spiking"]  # the first 60 only: a key of their own
    assert main(evaluate) == 0
    brian = json.loads((tmp_path / "b2" / "evaluations.json").read_text())["synth-classification/test/first60"]
    assert brian["engine"] == "brian2" and brian["error"] == spiking["error"]
    assert brian["examples"] == spiking["examples"] == 60

    assert main(["nir", "export", str(tmp_path / "b2"), str(tmp_path / "small.nir")]) == 0
    assert main(["nir", "info", str(tmp_path / "small.nir")]) == 0
    assert "256-12-10" in capsys.readouterr().out
    torch_run = ["train", "--engine", "spiking", *common, "--epochs", "1", "--train-subset", "20", "--test-subset", "5"]
    assert main([*torch_run, "--init-from", str(tmp_path / "small.nir"), "--out", str(tmp_path / "t")]) == 0
    assert main(["crosscheck", *common, "--init-from", str(tmp_path / "b2"), "--examples", "4"]) == 0
    report = capsys.readouterr().out
    assert "first divergence" in report and "dJ/dW_1" in report
    other = tmp_path / "wider.toml"
    other.write_text(SMALL.replace("units = 12", "units = 13").replace('"small"', '"wider"'))
    init = ["--init-from", str(tmp_path / "small.nir"), "--out", str(tmp_path / "x")]
    assert main([*torch_run, "--network", str(other), *init]) == 2
    assert "do not fit network wider" in capsys.readouterr().err
