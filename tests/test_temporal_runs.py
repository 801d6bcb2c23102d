"""Temporal networks as runs: the random-manifold task, the network spec's recurrent and readout
layers, the rules that need traces refused where there are none, and a CLI run of each engine."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from snn_drtp.cli import main
from snn_drtp.core.networks import load_spec, parse_spec
from snn_drtp.core.params import Params
from snn_drtp.data.randman import randman
from snn_drtp.rules import get_rule
from snn_drtp.runs.config import TrainConfig
from snn_drtp.spiking.engine import SpikingEngine


def test_randman_fires_each_channel_once_seeded_with_balanced_classes():
    train, test = randman("randman:classes=4,channels=12,samples=20,seed=3", 30)
    assert train.x.shape == (64, 30, 12) and test.x.shape == (16, 30, 12)
    assert train.layout == "time_first" and train.input_shape == (12,)
    assert (train.x.sum(1) == 1).all() and (test.x.sum(1) == 1).all()  # one spike per channel and example
    assert torch.bincount(train.y).tolist() == [16] * 4 and torch.bincount(test.y).tolist() == [4] * 4
    again, _ = randman("randman:classes=4,channels=12,samples=20,seed=3", 30)
    other, _ = randman("randman:classes=4,channels=12,samples=20,seed=4", 30)
    assert torch.equal(train.x, again.x) and not torch.equal(train.x, other.x)
    times, test_times = train.x.argmax(1).float(), test.x.argmax(1).float()  # [N, channels]: spike steps
    assert times.min() == 0 and times.max() == 29
    assert ((times == 0) | (times == 29)).float().mean() < 0.15  # rescaled to the window, few clipped at its ends
    # each class is its own manifold: a test example's nearest training example (in spike times) is of its class
    nearest = train.y[torch.cdist(test_times, times).argmin(1)]
    assert (nearest == test.y).float().mean() >= 0.9


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("randman:clases=4", r"'clases=4' is not key=value with a key among classes"),
        ("randman:classes=many", r"classes = 'many' is not a number"),
        ("randman:classes=1", r"classes must be >= 2, got 1"),
    ],
)
def test_randman_parameters_are_checked(name, message):
    with pytest.raises(ValueError, match=message):
        randman(name, 20)


def test_spec_readout_must_be_last_and_adaptation_needs_its_time_constant():
    base = {"name": "s", "input_shape": [4]}
    with pytest.raises(ValueError, match="layer 0 is a readout, which only the last"):
        parse_spec({**base, "layers": [{"kind": "readout", "units": 3}, {"kind": "readout", "units": 3}]})
    with pytest.raises(ValueError, match="an adaptive threshold needs tau_adapt > 0 s"):
        parse_spec(
            {**base, "layers": [{"kind": "recurrent", "units": 3, "adapt": 0.5}, {"kind": "readout", "units": 2}]}
        )


def test_recurrent_weights_have_no_self_connections_after_training():
    spec = parse_spec(
        {
            "name": "r",
            "input_shape": [5],
            "layers": [{"kind": "recurrent", "units": 6}, {"kind": "readout", "units": 2}],
            "neuron": {"threshold": 0.2},
        }
    )
    params = Params(spec, seed=0)
    R = params.layers[0].recurrent
    assert R is not None and (R.diagonal() == 0).all() and (R != 0).sum() == 30
    from snn_drtp.temporal.engine import TemporalSpikingEngine

    engine = TemporalSpikingEngine(params)
    x = (torch.rand(30, 4, 5, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    y = torch.eye(2)[[0, 1, 0, 1]]
    opt = torch.optim.Adam(params.trainable_tensors(), lr=0.1)
    for rule in ("bp", "osttp", "eprop"):
        engine.train_step(x, y, get_rule(rule))
        assert R.grad is not None and R.grad.abs().sum() > 0 and (R.grad.diagonal() == 0).all()
        opt.step()
    assert (R.diagonal() == 0).all()


def test_trace_rules_are_refused_by_static_networks_and_engines():
    with pytest.raises(ValueError, match=r"rule .osttp. learns from eligibility traces.*needs a temporal network"):
        TrainConfig(network="fc1-100", rule="osttp").validate()
    engine = SpikingEngine(Params(load_spec("fc1-100"), seed=0))
    with pytest.raises(ValueError, match=r"rule .eprop. learns from eligibility traces.*the spiking engine keeps none"):
        engine.train_step(torch.rand(2, 1, 28, 28), torch.eye(10)[:2], get_rule("eprop"))


@pytest.mark.parametrize("engine", ["spiking", "rate"])
def test_train_a_recurrent_network_on_randman_from_the_cli(tmp_path, engine, capsys):
    out = tmp_path / "run"
    args = ["train", "--engine", engine, "--network", "randman-rsnn", "--dataset", "randman", "--rule", "osttp"]
    args += ["--steps", "20", "--epochs", "1", "--train-subset", "100", "--test-subset", "50", "--angle-batch", "20"]
    assert main([*args, "--batch-size", "25", "--threads", "1", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epoch"] == [1] and metrics["test_error"][0] is not None
    assert set(metrics["angle_to_bp"]) == {"layer1"}  # the trace rule's update against BPTT's
    assert json.loads((out / "config.json").read_text())["lr"] == 1e-3
    assert (out / "learning_curves.png").exists() and (out / "activity.png").exists()


def test_a_temporal_run_resumes_and_is_evaluated_in_either_engine(tmp_path, capsys):
    """An interrupted temporal run continues from its checkpoint with the same numbers as one
    uninterrupted; ``evaluate`` reads it back, in its own engine or in the other one (its twin)."""
    args = ["train", "--engine", "spiking", "--network", "randman-ffsnn", "--dataset", "randman:samples=20"]
    args += ["--rule", "eprop", "--steps", "20", "--batch-size", "20", "--angle-batch", "0", "--threads", "1"]
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "whole")]) == 0
    assert main([*args, "--epochs", "1", "--out", str(tmp_path / "cut")]) == 0
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "cut")]) == 0
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    cut = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert cut["test_loss"] == whole["test_loss"] and cut["train_loss"] == whole["train_loss"]
    capsys.readouterr()
    for engine in ("spiking", "rate"):
        evaluate = ["evaluate", str(tmp_path / "whole"), "--dataset", "randman:samples=20", "--engine", engine]
        assert main(evaluate) == 0
        printed = capsys.readouterr().out
        assert "error" in printed and "%" in printed


def test_the_report_tables_temporal_runs_by_rule_with_the_gap_to_bptt(tmp_path):
    from snn_drtp.studies.report import Run, spike_rate_gaps, temporal_groups, temporal_lines

    def run(rule, engine, seed, errors):
        config = TrainConfig(network="randman-rsnn", dataset="randman", rule=rule, engine=engine, seed=seed, epochs=2)
        return Run(config, tmp_path / config.run_name(), {"test_error": errors}, (tmp_path / "short-runs",))

    runs = [
        run("bp", "spiking", 0, [9.0, 2.0]),
        run("bp", "spiking", 1, [9.0, 4.0]),
        run("osttp", "spiking", 0, [90.0, 80.0]),
        run("osttp", "rate", 0, [90.0, 70.0]),
        Run(TrainConfig(network="randman-rsnn", dataset="randman", rule="eprop", seed=0), tmp_path / "x", None),
    ]
    groups = temporal_groups(runs)
    assert groups == {
        ("short-runs", "randman", "randman-rsnn", "spiking"): {"bp": [2.0, 4.0], "osttp": [80.0]},
        ("short-runs", "randman", "randman-rsnn", "rate"): {"osttp": [70.0]},
    }
    lines = temporal_lines(groups)
    assert "| randman | randman-rsnn | spiking | bp | 3.00 +- 1.41 | 2 |  |" in lines
    assert "| randman | randman-rsnn | spiking | osttp | 80.00 | 1 | +77.00 |" in lines
    assert "| randman | randman-rsnn | rate | osttp | 70.00 | 1 |  |" in lines  # no BPTT there: no gap
    assert spike_rate_gaps(runs) == {}  # temporal twins are not the static study's spike-versus-rate pairs
    other = run("bp", "spiking", 0, [9.0, 6.0])  # another experiment's, at another rate (another run name)
    other = replace(other, config=replace(other.config, lr=2e-3), experiments=(tmp_path / "longer-runs",))
    assert other.config.run_name() != runs[0].config.run_name()
    groups = temporal_groups([*runs, other])  # another experiment's run is not a third seed of these
    assert groups[("longer-runs", "randman", "randman-rsnn", "spiking")] == {"bp": [6.0]}
    lines = temporal_lines(groups)  # the network named with its experiment where two experiments show it
    assert "| randman | randman-rsnn (short-runs) | spiking | bp | 3.00 +- 1.41 | 2 |  |" in lines
    assert "| randman | randman-rsnn (longer-runs) | spiking | bp | 6.00 | 1 |  |" in lines
    assert "| randman | randman-rsnn | rate | osttp | 70.00 | 1 |  |" in lines
