"""Monitors, the LIF rate curve of the rate engine, spike-versus-rate angles, and the spiking CLI."""

import json
import math

import pytest
import torch
from test_spiking_updates import engine_for, labels, spike_train

from snn_drtp.cli import main
from snn_drtp.rate.engine import RateEngine
from snn_drtp.rate.layers import SoftLIF
from snn_drtp.rules import get_rule
from snn_drtp.spiking import SpikeTrain
from snn_drtp.spiking.monitors import record


def test_monitor_records_spikes_rates_and_chosen_membranes():
    engine = engine_for(steps=10, time_chunk=4)
    x = torch.rand(3, 1, 1, 5, generator=torch.Generator().manual_seed(0))
    rec = record(engine, x, neurons=[0, 2])
    assert rec.layers == [1, 2]
    assert rec.layer_spikes(0).shape == (10, 3, 5) and rec.layer_spikes(1).shape == (10, 3, 4)
    assert rec.layer_v(1).shape == (10, 3, 2) and rec.layer_v(2).shape == (10, 3, 2)
    summary = rec.summary()
    assert summary["layer1"]["mean_rate"] == pytest.approx(float(rec.layer_spikes(1).mean()))
    assert 0.0 <= summary["layer2"]["silent_fraction"] <= 1.0
    out, _ = engine.predict(x)
    torch.testing.assert_close(rec.layer_spikes(2).sum(0) / 10, out)


def test_soft_lif_rate_curve_and_its_derivative():
    f = SoftLIF(tau_steps=5.0, threshold=0.5)
    z = torch.linspace(-1, 4, 41, dtype=torch.float64, requires_grad=True)
    f(z).sum().backward()
    torch.testing.assert_close(f.derivative(z.detach()), z.grad)
    far = torch.tensor([3.0], dtype=torch.float64)
    assert float(f(far)) == pytest.approx(1 / (5.0 * math.log(3.0 / 2.5)), rel=1e-6)
    assert float(f(torch.tensor([-1.0]))) < 0.01


def test_update_angles_compare_like_with_like():
    from snn_drtp.studies.validation import update_angles

    engine = engine_for(steps=8)
    x = torch.rand(12, 1, 1, 5, generator=torch.Generator().manual_seed(4))
    angles = update_angles(engine, x, labels(12))
    assert set(angles) == {"layer1"} and set(angles["layer1"]) == {"rate_tanh", "rate_lif", "bptt"}
    assert all(0.0 <= a <= 180.0 for a in angles["layer1"].values())


def test_rate_engine_refuses_spike_trains_with_the_way_out():
    engine = RateEngine(engine_for().params)
    with pytest.raises(ValueError, match=r"rate engine takes static inputs.*spiking engine"):
        engine.train_step(SpikeTrain(spike_train(4, 2, 5)), labels(2), get_rule("drtp"))


@pytest.mark.slow
@pytest.mark.mnist
def test_cli_trains_a_spiking_network_on_mnist_and_resumes(tmp_path):
    args = "train --engine spiking --network fc1-500 --train-subset 1000 --test-subset 300 --batch-size 50 "
    args += "--lr 2e-3 --steps 8 --tau-mem 4e-3 --angle-batch 200 --no-progress --out"
    args = [*args.split(), str(tmp_path / "spk")]
    assert main([*args, "--epochs", "1"]) == 0
    assert main([*args, "--epochs", "2"]) == 0
    metrics = json.loads((tmp_path / "spk" / "metrics.json").read_text())
    config = json.loads((tmp_path / "spk" / "config.json").read_text())
    assert metrics["epoch"] == [1, 2] and config["neuron"] == {"tau_mem": 4e-3}
    assert config["network_spec"]["neuron"]["threshold"] == 0.5
    assert metrics["test_error"][-1] < 40.0
    assert "layer1" in metrics["angle_to_bp"]
