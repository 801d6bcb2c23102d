"""Bad input gets a clear error that names the problem, the value and the fix: one line
``snn-drtp: error: ...`` and exit code 2 from the CLI, a ValueError naming them from the API, before
anything is trained (or, for a corrupt frame cache, a note and a rebuild)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import SMALL_SPEC
from test_event_files import make_folder

from snn_drtp.cli import main
from snn_drtp.core.networks import load_spec
from snn_drtp.data.events import cached_frames
from snn_drtp.data.frames import FrameSpec
from snn_drtp.runs.config import TrainConfig
from snn_drtp.runs.training import evaluate_run
from snn_drtp.studies.experiments import load_experiment, summarise_existing

SPEC = SMALL_SPEC
TINY = ["--dataset", "synth-classification", "--epochs", "1", "--train-subset", "40", "--test-subset", "20"]
TINY += ["--angle-batch", "0", "--lr", "1e-3", "--no-progress"]
EXPERIMENT = """name = "tiny"
[base]
network = "synth-classification"
dataset = "synth-classification"
epochs = 1
train_subset = 40
test_subset = 20
angle_batch = 0
lr = 1e-3
"""


def cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the CLI; it must exit with 2 and print one line ``snn-drtp: error: ...``, no traceback."""
    code = main(list(argv))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("snn-drtp: error: "), err
    return lines[0]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("spec") / "small.toml", SPEC)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, spec_file: Path) -> Path:
    """A finished one-epoch run of a 256-12-10 network on 40 examples (rate engine)."""
    out = tmp_path_factory.mktemp("runs") / "good"
    assert main(["train", "--network", str(spec_file), *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture(params=["truncated", "empty", "not-a-checkpoint"])
def corrupt_run(request: pytest.FixtureRequest, trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run whose checkpoint.pt is cut in half, empty, or text."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    checkpoint = run / "checkpoint.pt"
    data = checkpoint.read_bytes()
    mangled = {"truncated": data[: len(data) // 2], "empty": b"", "not-a-checkpoint": b"hello\n"}[request.param]
    checkpoint.write_bytes(mangled)
    return run


def corrupt_checkpoint_message(run: Path) -> str:
    return re.escape(str(run / "checkpoint.pt")) + r" \(\d+ bytes\) is truncated or not a checkpoint .*delete it"


# Network spec TOML


def test_spec_field_of_the_wrong_type_is_named_with_its_value(tmp_path, capsys):
    spec = write(tmp_path / "units.toml", SPEC.replace("units = 12", 'units = "hundred"'))
    line = cli_error(capsys, "train", "--network", str(spec), *TINY, "--out", str(tmp_path / "run"))
    assert f"{spec}: layer 0: units = 'hundred' is not an integer; write a whole number, e.g. units = 100" in line


def test_spec_unknown_top_level_key_is_refused_with_the_nearest_name(tmp_path):
    spec = write(tmp_path / "typo.toml", SPEC.replace("input_shape", "inptu_shape = [3]\ninput_shape"))
    message = r"typo.toml: unknown top-level keys \['inptu_shape'\]; did you mean 'input_shape'"
    with pytest.raises(ValueError, match=message):
        load_spec(spec)


def test_layer_of_zero_units_is_refused_at_load_time(tmp_path):
    spec = write(tmp_path / "zero.toml", SPEC.replace("units = 12", "units = 0"))
    with pytest.raises(ValueError, match=r"dense layer 0 needs units > 0, got units = 0; .*e.g. units = 100"):
        load_spec(spec)


@pytest.mark.parametrize(
    "layer, message",
    [
        ('kind = "dens"', r"layer 0 kind 'dens' is not one of dense, conv, recurrent, readout; did you mean 'dense'\?"),
        ("", r'layer 0: no kind; write kind = "dense" or kind = "conv"'),
    ],
    ids=["unknown", "missing"],
)
def test_unknown_or_missing_layer_kind_is_refused_at_load_time(tmp_path, layer, message):
    spec = write(tmp_path / "kind.toml", SPEC.replace('kind = "dense"\nunits = 12', f"{layer}\nunits = 12", 1))
    with pytest.raises(ValueError, match=message):
        load_spec(spec)


def test_spec_neuron_table_with_dt_not_below_tau_mem_is_refused_before_training(tmp_path):
    spec = write(tmp_path / "dt.toml", SPEC.replace("tau_mem = 5e-3", "dt = 0.01\ntau_mem = 5e-3"))
    with pytest.raises(ValueError, match=r"dt.toml: \[neuron\] dt = 0.01 s is not smaller than tau_mem = 0.005 s"):
        TrainConfig(engine="spiking", network=str(spec), lr=1e-3).validate()


# Experiment TOML and TrainConfig


@pytest.mark.parametrize(
    "line, message",
    [
        ('epochs = "two"', r"\[base\] epochs = 'two' is not an integer; write a whole number, e.g. epochs = 100"),
        ('lr = "fast"', r"\[base\] lr = 'fast' is not a number; write a number, e.g. lr = 0.001"),
        ("zero_init = 1", r"\[base\] zero_init = 1 is not true or false"),
        ('[grid]\nlr = ["fast"]', r"\[grid\] lr holds a value that does not fit: lr = 'fast' is not a number"),
        ("[grid]\nseed = 0", r"\[grid\] seed = 0 is not a non-empty list; .*e.g. seed = \[0\]"),
    ],
    ids=["epochs", "lr", "bool", "grid-item", "grid-scalar"],
)
def test_experiment_value_of_the_wrong_type_names_the_file_section_and_value(tmp_path, line, message):
    folder = tmp_path / "x"
    base = EXPERIMENT.replace("epochs = 1\n", "").replace("lr = 1e-3\n", "")
    text = base + line + "\n" if line.startswith("[grid]") else base.replace("[base]\n", f"[base]\n{line}\n")
    write(folder / "experiment.toml", text)
    with pytest.raises(ValueError, match=re.escape(f"experiment {folder / 'experiment.toml'}: ") + message):
        load_experiment(folder)


def test_experiment_unknown_section_is_refused_instead_of_running_the_defaults(tmp_path, capsys):
    folder = tmp_path / "x"
    write(folder / "experiment.toml", EXPERIMENT.replace("[base]", "[bsae]"))
    line = cli_error(capsys, "experiment", str(folder), "--summarise")
    assert "unknown section [bsae]; did you mean [base]?" in line and str(folder / "experiment.toml") in line
    with pytest.raises(ValueError, match=r"unknown key epoch; configuration fields such as epochs go under \[base\]"):
        load_experiment(write(tmp_path / "y" / "experiment.toml", "epoch = 3\n" + EXPERIMENT))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("epochs", "two", r"^epochs = 'two' is not an integer; write a whole number, e.g. epochs = 100$"),
        ("lr", "fast", r"^lr = 'fast' is not a number; write a number, e.g. lr = 0.001$"),
        ("dropout", True, r"^dropout = True is not a number"),
        ("neuron", [1], r"^neuron = \[1\] is not a table"),
        ("train_subset", 2.5, r"^train_subset = 2.5 is not an integer; .*e.g. train_subset = 1000$"),
    ],
)
def test_train_config_checks_each_value_against_its_annotation(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value}).validate()


# Checkpoints: resume, evaluate, nir export, --init-from


def test_corrupt_checkpoint_on_resume_names_the_file_and_how_to_start_again(corrupt_run, spec_file, capsys):
    line = cli_error(capsys, "train", "--network", str(spec_file), *TINY, "--epochs", "2", "--out", str(corrupt_run))
    assert re.search(corrupt_checkpoint_message(corrupt_run), line), line


def test_corrupt_checkpoint_on_evaluate_names_the_file(corrupt_run, capsys):
    line = cli_error(capsys, "evaluate", str(corrupt_run), "--dataset", "synth-classification")
    assert re.search(corrupt_checkpoint_message(corrupt_run), line), line


def test_corrupt_checkpoint_on_nir_export_names_the_file(corrupt_run, tmp_path, capsys):
    line = cli_error(capsys, "nir", "export", str(corrupt_run), str(tmp_path / "m.nir"))
    assert re.search(corrupt_checkpoint_message(corrupt_run), line), line


def test_corrupt_checkpoint_on_init_from_names_the_file(corrupt_run, spec_file, tmp_path, capsys):
    args = ["train", "--network", str(spec_file), *TINY, "--init-from", str(corrupt_run), "--out", str(tmp_path / "b")]
    line = cli_error(capsys, *args)
    assert re.search(corrupt_checkpoint_message(corrupt_run), line), line


def test_evaluate_without_a_checkpoint_names_the_folder(tmp_path, capsys):
    line = cli_error(capsys, "evaluate", str(tmp_path / "nowhere"), "--dataset", "synth-classification")
    assert f"run folder {tmp_path / 'nowhere'} does not exist; train one first: snn-drtp train --out" in line
    (tmp_path / "empty").mkdir()
    line = cli_error(capsys, "evaluate", str(tmp_path / "empty"), "--dataset", "synth-classification")
    assert "holds no checkpoint.pt" in line


# NIR files


@pytest.mark.parametrize("content", ["text", "hdf5"])
def test_a_file_that_is_not_nir_is_named_for_nir_info_and_init_from(content, spec_file, tmp_path, capsys):
    fake = tmp_path / "fake.nir"
    if content == "text":
        fake.write_text("not a graph\n")
    else:
        with h5py.File(fake, "w") as handle:
            handle.create_dataset("x", data=[1, 2])
    expected = f"{fake} is not a NIR file ("
    assert expected in cli_error(capsys, "nir", "info", str(fake))
    args = ["train", "--network", str(spec_file), *TINY, "--init-from", str(fake), "--out", str(tmp_path / "r")]
    assert expected in cli_error(capsys, *args)


def test_nir_export_onto_a_folder_is_refused_and_missing_parents_are_created(trained, tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    line = cli_error(capsys, "nir", "export", str(trained), str(tmp_path / "adir"))
    assert (
        f"{tmp_path / 'adir'} is a folder; give the .nir file to write, e.g. {tmp_path / 'adir' / 'small.nir'}" in line
    )
    nested = tmp_path / "new" / "sub" / "m.nir"
    assert main(["nir", "export", str(trained), str(nested)]) == 0  # documented: parent folders are created
    assert nested.is_file()


# Frame cache and metrics.json


def test_corrupt_frame_cache_is_deleted_and_rebuilt_with_a_note(tmp_path, capsys):
    root = make_folder(tmp_path / "rec", "train", n=4)
    make_folder(root, "test", n=2)
    spec = FrameSpec(n_time_bins=3)
    frames, labels = cached_frames(f"events:{root}", "train", spec, tmp_path / "cache", progress=False)
    expected = np.array(frames)
    (cache,) = (tmp_path / "cache" / "frames").glob("*train*.frames.npy")
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    capsys.readouterr()
    again, again_labels = cached_frames(f"events:{root}", "train", spec, tmp_path / "cache", progress=False)
    err = capsys.readouterr().err
    assert f"snn-drtp: note: frame cache {cache} is corrupt" in err and "rebuilding" in err
    np.testing.assert_array_equal(np.asarray(again), expected)
    np.testing.assert_array_equal(again_labels, labels)
    assert np.load(cache).shape == expected.shape  # rebuilt whole


def test_corrupt_metrics_json_for_summarise_names_the_file(tmp_path, capsys):
    folder = tmp_path / "x"
    write(folder / "experiment.toml", EXPERIMENT)
    (config,) = load_experiment(folder)[1]
    metrics = write(folder / "runs" / config.run_name() / "metrics.json", "{bad")
    line = cli_error(capsys, "experiment", str(folder), "--summarise")
    assert f"{metrics} is not valid JSON" in line and f"run `snn-drtp experiment {folder}`" in line
    metrics.write_text(json.dumps({"epoch": [1]}))
    with pytest.raises(ValueError, match=r"is not a run's metrics file \(it lacks test_error"):
        summarise_existing(folder)


# Command-line values


def test_evaluate_with_zero_examples_is_refused(trained, capsys):
    line = cli_error(capsys, "evaluate", str(trained), "--dataset", "synth-classification", "--examples", "0")
    assert "examples must be >= 1 (or unset for the whole split), got 0; e.g. --examples 100" in line


def test_crosscheck_with_zero_examples_is_refused(spec_file, capsys, monkeypatch):
    monkeypatch.setattr("snn_drtp.studies.crosscheck.build_params", _must_not_build)
    line = cli_error(capsys, "crosscheck", "--network", str(spec_file), "--examples", "0")
    assert "crosscheck needs at least one example, got --examples 0" in line


def _must_not_build(*args: object, **kwargs: object) -> None:
    raise AssertionError("the bad value must be refused before anything is built")


def test_crosscheck_of_a_backward_rule_is_refused_before_building(spec_file, capsys, monkeypatch):
    monkeypatch.setattr("snn_drtp.studies.crosscheck.build_params", _must_not_build)
    line = cli_error(capsys, "crosscheck", "--network", str(spec_file), "--rule", "bp", "--examples", "2")
    assert "crosscheck --rule bp: Brian2 cannot run rules with a backward sweep" in line and "drtp" in line


@pytest.mark.parametrize("command", ["train", "validate", "demo", "crosscheck"])
def test_out_of_the_wrong_kind_is_refused_before_any_work(command, spec_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("snn_drtp.studies.validation.run_validation", _must_not_build)
    monkeypatch.setattr("snn_drtp.studies.demo.run_demo", _must_not_build)
    monkeypatch.setattr("snn_drtp.studies.crosscheck.build_params", _must_not_build)
    afile = write(tmp_path / "afile", "")
    if command == "crosscheck":  # its --out is a JSON file: a folder is refused
        line = cli_error(capsys, "crosscheck", "--network", str(spec_file), "--out", str(tmp_path))
        assert f"crosscheck --out {tmp_path} is a folder; give the JSON file to write" in line
        return
    extra = ["--network", str(spec_file), *TINY] if command == "train" else []
    line = cli_error(capsys, command, *extra, "--out", str(afile))
    assert f"--out {afile} is a file, not a folder; choose another --out folder" in line
    line = cli_error(capsys, command, *extra, "--out", str(afile / "run"))
    assert f"lies under {afile}, which is a file" in line


def test_train_subset_larger_than_the_dataset_is_refused_naming_both_sizes(spec_file, tmp_path, capsys):
    args = ["train", "--network", str(spec_file), *TINY, "--train-subset", "100000", "--out", str(tmp_path / "r")]
    line = cli_error(capsys, *args)
    assert "--train-subset 100000 is larger than the training split of dataset synth-classification (25000" in line


@pytest.mark.parametrize("lr", ["inf", "nan", "-inf"])
def test_infinite_or_nan_learning_rate_is_refused(lr, spec_file, tmp_path, capsys):
    line = cli_error(capsys, "train", "--network", str(spec_file), *TINY, f"--lr={lr}", "--out", str(tmp_path / "r"))
    assert f"lr = {float(lr)} is not a finite number; write a number, e.g. lr = 0.001" in line


def test_time_step_not_below_the_membrane_time_constant_is_refused(spec_file, tmp_path, capsys):
    args = ["train", "--engine", "spiking", "--network", str(spec_file), *TINY, "--steps", "2"]
    line = cli_error(capsys, *args, "--dt", "0.01", "--tau-mem", "0.005", "--out", str(tmp_path / "r"))
    assert "dt = 0.01 s is not smaller than tau_mem = 0.005 s; the time step must be smaller" in line


def test_emulator_parameters_with_a_dataset_that_is_not_emulated_are_refused(spec_file, tmp_path, capsys):
    args = ["train", "--network", str(spec_file), *TINY, "--emulator", "threshold=0.5", "--out", str(tmp_path / "r")]
    line = cli_error(capsys, *args)
    assert "--emulator threshold=0.5: emulator parameters only apply to the emulated datasets" in line
    assert "dataset 'synth-classification' is not emulated" in line


def test_metrics_without_their_checkpoint_are_kept_not_overwritten(trained, spec_file, tmp_path, capsys):
    """A committed run folder (metrics.json, no checkpoint.pt): training again would start from epoch
    1 and overwrite the results, so it is refused naming both ways out."""
    run = tmp_path / "committed"
    shutil.copytree(trained, run)
    (run / "checkpoint.pt").unlink()
    before = (run / "metrics.json").read_text()
    line = cli_error(capsys, "train", "--network", str(spec_file), *TINY, "--epochs", "2", "--out", str(run))
    assert "holds metrics of 1 finished epoch(s) but no checkpoint.pt" in line and "--summarise" in line, line
    assert (run / "metrics.json").read_text() == before


def test_a_run_continues_only_on_the_device_kind_it_was_trained_on(trained, spec_file, tmp_path, capsys):
    """The checkpoint of a run trained on cuda (its generator state is a CUDA generator's) is not
    resumed on the CPU; written here by editing a CPU checkpoint's recorded device."""
    run = tmp_path / "gpu-run"
    shutil.copytree(trained, run)
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    state["config"]["device"] = "cuda"
    torch.save(state, run / "checkpoint.pt")
    line = cli_error(capsys, "train", "--network", str(spec_file), *TINY, "--epochs", "2", "--out", str(run))
    assert "was trained on cuda" in line and "--device cuda" in line, line


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_evaluating_on_a_missing_gpu_is_refused_and_the_cpu_can_be_asked_for(trained, tmp_path, capsys):
    line = cli_error(capsys, "evaluate", str(trained), "--dataset", "synth-classification", "--device", "cuda")
    assert "CUDA is not available on this machine; use --device cpu" in line, line
    run = tmp_path / "gpu-run"
    shutil.copytree(trained, run)
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    state["config"]["device"] = "cuda"  # as a run trained on a GPU records it
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(ValueError, match="device 'cuda': CUDA is not available"):  # the run's device by default
        evaluate_run(run, "synth-classification", progress=False)
    line = cli_error(capsys, "evaluate", str(run), "--dataset", "synth-classification")
    assert "device 'cuda': CUDA is not available on this machine; use --device cpu" in line, line
    assert main(["evaluate", str(run), "--dataset", "synth-classification", "--device", "cpu"]) == 0
