"""The temporal spiking engine against Brian2 (``snn_drtp.brian.temporal``: the same recurrent LIF /
ALIF layer, readout, traces and trace-rule updates written as Brian2 equations, float64, numpy
target): identical hidden spikes, the readout and the OSTTP and e-prop updates equal to rounding."""

from __future__ import annotations

import json
import re

import pytest
import torch

from snn_drtp.brian.temporal import crosscheck
from snn_drtp.core.networks import parse_spec
from snn_drtp.core.params import Params
from snn_drtp.rules import get_rule
from snn_drtp.spiking.neuron import LIFParams
from snn_drtp.temporal.engine import TemporalOptions, TemporalSpikingEngine
from snn_drtp.temporal.readout import ReadoutParams


def engine(kind: str, adaptive: bool, detach_reset: bool) -> TemporalSpikingEngine:
    hidden = {"kind": kind, "units": 5} | ({"tau_adapt": 0.03, "adapt": 0.2} if adaptive else {})
    spec = parse_spec({"name": "bx", "input_shape": [6], "layers": [hidden, {"kind": "readout", "units": 3}]})
    params = Params(spec, seed=0).double()
    with torch.no_grad():
        params.layers[0].weight.mul_(0.6)
    options = TemporalOptions(
        neuron=LIFParams(tau_mem=0.01, threshold=0.4),
        detach_reset=detach_reset,
        readout=ReadoutParams(tau_out=0.015, loss_steps=8),
    )
    return TemporalSpikingEngine(params, options)


@pytest.mark.parametrize(
    ("kind", "adaptive", "detach_reset"),
    [("recurrent", True, True), ("recurrent", False, True), ("dense", True, False), ("dense", False, True)],
    ids=["recurrent-ALIF", "recurrent-LIF", "feed-forward-ALIF-reset-kept", "feed-forward-LIF"],
)
@pytest.mark.parametrize("rule", ["osttp", "eprop"])
def test_brian2_gives_the_same_spikes_readout_and_updates(kind, adaptive, detach_reset, rule):
    ours = engine(kind, adaptive, detach_reset)
    before = ours.params.layers[0].weight.detach().clone()
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(30, 3, 6, generator=gen) < 0.3).double()
    report = crosscheck(ours, x, torch.eye(3, dtype=torch.float64), get_rule(rule))
    assert report["spikes_identical"] and report["hidden_spikes"] > 20
    assert report["readout_max_difference"] < 1e-12
    differences = report["update_max_relative_difference"]
    assert set(differences) == {"W", "b", "W_out", "b_out"} | ({"R"} if kind == "recurrent" else set())
    assert max(differences.values()) < 1e-12
    assert torch.equal(ours.params.layers[0].weight, before) and ours.params.layers[0].weight.grad is None


def test_the_crosscheck_command_runs_a_temporal_network_on_its_dataset(tmp_path, capsys):
    """`snn-drtp crosscheck` on a temporal spec: real randman examples in both simulators; the
    report says the spikes are identical and the updates agree; rules Brian2's temporal network
    cannot send (W_out^T, no trace) are refused by name."""
    from snn_drtp.cli import main

    args = ["crosscheck", "--network", "randman-rsnn", "--dataset", "randman:samples=20", "--steps", "20"]
    out = tmp_path / "crosscheck.json"
    assert main([*args, "--rule", "eprop", "--examples", "3", "--out", str(out)]) == 0
    assert "identical in both: yes" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["spikes_identical"] and report["hidden_spikes"] > 0 and report["examples"] == 3
    assert set(report["update_max_relative_difference"]) == {"W", "b", "R", "W_out", "b_out"}
    assert max(report["update_max_relative_difference"].values()) < 1e-12
    for rule in ("eprop-sym", "drtp"):
        assert main([*args, "--rule", rule, "--examples", "2"]) == 2
        assert re.search(rf"--rule {rule} on temporal network.*--rule osttp or --rule eprop", capsys.readouterr().err)
    assert main([*args, "--rule", "osttp", "--precision", "float32"]) == 2
    assert "float64 on the numpy target; got --precision float32" in capsys.readouterr().err
