"""Training runs: resume, seeds, run folders from earlier versions, Ctrl-C, configuration errors."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import tiny_spec
from test_spiking_updates import engine_for

from snn_drtp.core.params import Params
from snn_drtp.data.tensors import TensorData
from snn_drtp.rate.engine import RateEngine
from snn_drtp.rules import get_rule
from snn_drtp.runs.config import TrainConfig
from snn_drtp.runs.training import (
    RunFolderMismatchError,
    evaluate,
    load_trained,
    make_optimizer,
    train,
    train_epoch,
)

SMALL = TrainConfig(
    network="synth-classification",
    dataset="synth-classification",
    rule="drtp",
    epochs=3,
    batch_size=50,
    dropout=0.1,
    train_subset=1000,
    test_subset=500,
    angle_batch=100,
    lr=2e-3,
)
SPIKING = TrainConfig(
    **{
        **SMALL.to_dict(),
        "engine": "spiking",
        "rule": "dfa",
        "train_subset": 300,
        "test_subset": 200,
        "steps": 4,
        "time_chunk": 3,
        "angle_batch": 100,
        "neuron": {"tau_mem": 5e-3, "threshold": 0.3},
    }
)
ROOT = Path(__file__).resolve().parent.parent
RUN_FILES = {"config.json", "metrics.json", "checkpoint.pt", "learning_curves.png", "angles.png"}


@pytest.mark.slow
@pytest.mark.parametrize("config", [SMALL, SPIKING], ids=["rate", "spiking"])
def test_resume_after_interruption_gives_the_same_numbers(tmp_path, config):
    whole = train(config, tmp_path / "whole", progress=False, log=None)
    part = train(config, tmp_path / "part", progress=False, log=None, stop_after=1)
    assert part["epoch"] == [1]
    part = train(config, tmp_path / "part", progress=False, log=None, stop_after=1)
    assert part["epoch"] == [1, 2]
    resumed = train(config, tmp_path / "part", progress=False, log=None)
    for key in ("train_error", "test_error", "train_loss", "test_loss", "angle_to_bp"):
        assert resumed[key] == whole[key], key
    assert resumed["angle_to_bp"]["layer1"], "the angles must be measured"
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert saved["test_error"] == whole["test_error"]
    assert {p.name for p in (tmp_path / "part").iterdir()} >= RUN_FILES


def test_same_seed_same_numbers_and_learning_happens():
    a = train(SMALL, None, progress=False, log=None)
    b = train(SMALL, None, progress=False, log=None)
    assert a["test_error"] == b["test_error"]
    assert a["test_error"][-1] < 40.0  # chance is 90 %


def test_run_folder_with_other_config_is_refused(tmp_path):
    train(SMALL, tmp_path / "run", progress=False, log=None, stop_after=1)
    other = TrainConfig(**{**SMALL.to_dict(), "rule": "dfa"})
    with pytest.raises(RunFolderMismatchError, match=r"another configuration.*rule"):
        train(other, tmp_path / "run", progress=False, log=None)


@pytest.mark.slow
def test_a_run_of_a_network_whose_file_changed_is_neither_continued_nor_read(tmp_path):
    """A run's folder name holds its network's name, not the file's contents: after the file
    changes (here the first hidden layer's tanh becomes a sigmoid), neither a run stopped part-way
    nor a finished one is taken as a run of the network as it reads now; restored, both are."""
    from snn_drtp.studies.sweeps import finished_metrics

    network = tmp_path / "net.toml"
    original = (ROOT / "networks" / "synth-classification.toml").read_text()
    network.write_text(original)
    config = replace(SMALL, network=str(network), dropout=0.0, angle_batch=0)
    train(config, tmp_path / "part", progress=False, log=None, stop_after=1)
    train(config, tmp_path / "done", progress=False, log=None)
    assert finished_metrics(config, tmp_path / "done") is not None
    network.write_text(original.replace('activation = "tanh"', 'activation = "sigmoid"', 1))
    for folder in ("part", "done"):
        with pytest.raises(RunFolderMismatchError, match=r"file has changed since.*layers.*tanh.*sigmoid.*new name"):
            train(config, tmp_path / folder, progress=False, log=None)
    with pytest.raises(RunFolderMismatchError, match=r"file has changed since"):  # nor simulated as it reads now
        load_trained(tmp_path / "done")
    assert finished_metrics(config, tmp_path / "done") is None
    network.write_text(original)
    assert finished_metrics(config, tmp_path / "done") is not None
    assert train(config, tmp_path / "part", progress=False, log=None)["epoch"] == [1, 2, 3]


def _as_written_by_version_1(run: Path) -> None:
    """Checkpoints from before this version lack the ``format`` and ``numbers_version`` keys."""
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    del state["format"], state["numbers_version"]
    torch.save(state, run / "checkpoint.pt")


@pytest.mark.slow
def test_earlier_rate_run_folders_resume_and_spiking_ones_are_refused_with_the_reason(tmp_path):
    rate = tmp_path / "rate"
    train(SMALL, rate, progress=False, log=None, stop_after=1)
    _as_written_by_version_1(rate)
    assert train(SMALL, rate, progress=False, log=None, stop_after=1)["epoch"] == [1, 2]
    spiking = tmp_path / "spiking"
    train(SPIKING, spiking, progress=False, log=None, stop_after=1)
    _as_written_by_version_1(spiking)
    with pytest.raises(RunFolderMismatchError, match=r"version 1 of the spiking engine.*own seed.*new --out folder"):
        train(SPIKING, spiking, progress=False, log=None)


def test_spiking_test_error_does_not_depend_on_the_evaluation_batch():
    """Each test example is encoded from its own seed: batches of 3 or of 1000 give the same numbers."""
    engine = engine_for(steps=10)
    g = torch.Generator().manual_seed(0)
    data = TensorData(torch.rand(23, 1, 1, 5, generator=g), torch.randint(0, 3, (23,), generator=g), 3)
    (error_3, loss_3), (error_1000, loss_1000) = evaluate(engine, data, batch=3), evaluate(engine, data, batch=1000)
    assert error_3 == error_1000 and loss_3 == pytest.approx(loss_1000, rel=1e-6)
    first = engine.predict(data.x[:1], torch.tensor([0]))[0]
    assert torch.equal(first, engine.predict(data.x[:5])[0][:1])


def test_time_first_dataset_trains_through_the_same_loop():
    """A dataset that declares time-first inputs [N, T, ...] is handed out as spike trains with its own T."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(40, 12, 1, 1, 5, generator=g) < 0.5).float()
    data = TensorData(x, torch.randint(0, 3, (40,), generator=g), 3, layout="time_first")
    assert data.input_shape == (1, 1, 5) and data.inputs(slice(0, 4)).steps == 12
    engine = engine_for(steps=3)
    opt = torch.optim.Adam(engine.params.trainable_tensors(), lr=1e-2)
    config = TrainConfig(batch_size=8)
    wrong, loss = train_epoch(engine, opt, data, get_rule("drtp"), config, torch.Generator().manual_seed(1))
    assert 0 <= wrong <= 40 and loss > 0
    error, _ = evaluate(engine, data)
    out, _ = engine.predict(data.inputs(slice(0, 5)))
    assert error is not None and torch.all(out * 12 == torch.round(out * 12))


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"rule": "hebb"}, "rule 'hebb'"),
        ({"dropout": 1.0}, "dropout must be"),
        ({"epochs": 0}, "epochs must be"),
        ({"dataset": "imagenet"}, "dataset 'imagenet'"),
        ({"train_subset": 0}, r"train subset must be >= 1 examples \(or unset for all\), got 0"),
        ({"test_subset": -5}, r"test subset must be >= 1 examples \(or unset for all\), got -5"),
    ],
)
def test_bad_config_is_named(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{**SMALL.to_dict(), **bad}).validate()


def test_learning_rate_defaults_to_table_3():
    assert TrainConfig(network="fc1-500", rule="drtp").validate().lr == 1.5e-4
    assert TrainConfig(network="fc1-500", rule="drtp-ternary").validate().lr == 1.5e-4
    assert TrainConfig(network="fc1-500", rule="shallow").validate().lr == 1.5e-2
    assert TrainConfig(network="fc2-500", rule="bp").validate().lr == 5e-4
    with pytest.raises(ValueError, match=r"Table 3 gives no learning rate.*--lr"):
        TrainConfig(network="conv-mnist", rule="shallow").validate()


def test_run_names_carry_a_hash_of_what_changes_the_numbers():
    a = TrainConfig(network="fc1-500", rule="drtp", lr=1e-3)
    assert a.run_name().startswith("rate-fc1-500-drtp-seed0-") and len(a.identity()) == 8
    assert TrainConfig(network="fc1-500", rule="drtp", lr=2e-3).run_name() != a.run_name()
    assert TrainConfig(network="fc1-500", rule="drtp", lr=1e-3, dropout=0.1).run_name() != a.run_name()
    assert (
        TrainConfig(network="fc1-500", rule="drtp", lr=1e-3, steps=50, threads=2, epochs=3).run_name() == a.run_name()
    )
    spiking = TrainConfig(network="fc1-500", rule="drtp", engine="spiking", steps=50)
    assert spiking.run_name().startswith("spiking-fc1-500-drtp-T50-seed0-")
    assert (
        TrainConfig(network="fc1-500", rule="drtp").run_name() == TrainConfig(network="fc1-500", lr=1.5e-4).run_name()
    )


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snn_drtp.cli", *args], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.mark.slow
def test_ctrl_c_prints_how_to_resume_and_keeps_the_last_epoch(tmp_path):
    out = tmp_path / "run"
    args = [
        "train",
        "--network",
        "synth-classification",
        "--dataset",
        "synth-classification",
        "--epochs",
        "40",
        "--train-subset",
        "2000",
        "--test-subset",
        "200",
        "--angle-batch",
        "0",
        "--lr",
        "2e-3",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "snn_drtp.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    metrics = out / "metrics.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (metrics.exists() and json.loads(metrics.read_text())["epoch"]):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Resume with: snn-drtp train" in lines[0] and str(out) in lines[0]
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    done = len(state["metrics"]["epoch"])
    assert done >= 1 and json.loads(metrics.read_text())["epoch"] == state["metrics"]["epoch"]
    resumed = run_cli(*[a if a != "40" else str(done + 1) for a in args])
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {out} after epoch {done}" in resumed.stdout
    whole = TrainConfig(
        network="synth-classification",
        dataset="synth-classification",
        epochs=done + 1,
        train_subset=2000,
        test_subset=200,
        angle_batch=0,
        lr=2e-3,
    )
    reference = train(whole, None, progress=False, log=None)
    assert json.loads(metrics.read_text())["test_error"] == reference["test_error"]


@pytest.mark.parametrize("optimizer", ["sgd", "nag"])
def test_sgd_and_nag_steps_follow_their_update_equations(optimizer):
    """Two steps with gradients g1, g2 from w0: SGD w -= lr g; NAG (momentum 0.9, Nesterov)
    v = 0.9 v + g, w -= lr (g + 0.9 v), with v = g1 at the first step."""
    engine = RateEngine(Params(tiny_spec(), seed=0))
    config = TrainConfig(optimizer=optimizer, lr=0.1)
    weight = engine.params.layers[0].weight
    w0 = weight.detach().clone()
    g1, g2 = torch.full_like(w0, 1.0), torch.full_like(w0, -2.0)
    opt = make_optimizer(config, engine)
    for g in (g1, g2):
        for p in engine.params.trainable_tensors():
            p.grad = torch.zeros_like(p)
        weight.grad = g.clone()
        opt.step()
    if optimizer == "sgd":
        expected = w0 - 0.1 * g1 - 0.1 * g2
    else:
        v1 = g1
        w1 = w0 - 0.1 * (g1 + 0.9 * v1)
        v2 = 0.9 * v1 + g2
        expected = w1 - 0.1 * (g2 + 0.9 * v2)
    torch.testing.assert_close(weight.detach(), expected)
