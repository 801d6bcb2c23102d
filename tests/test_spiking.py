"""The spiking engine: LIF dynamics against closed forms, encoders, the three-factor update
against its written-out form, BPTT against its chain rule, reproducibility."""

import math

import pytest
import torch
from conftest import tiny_spec

from snn_drtp.config import TrainConfig
from snn_drtp.rules import Rule
from snn_drtp.spiking import LIF, LIFParams, LIFState, SpikingNetwork, SpikingOptions, lif_scan, lif_step
from snn_drtp.spiking.encoders import delta, encode, latency, rate
from snn_drtp.spiking.surrogate import fast_sigmoid


def spike_steps(spikes: torch.Tensor) -> list[int]:
    """1-based steps at which a single neuron spiked."""
    return [int(t) + 1 for t in torch.nonzero(spikes.reshape(-1)).reshape(-1)]


@pytest.mark.parametrize("current", [0.6, 1.0, 2.5])
@pytest.mark.parametrize("refractory", [0, 3])
def test_constant_input_spikes_at_closed_form_times(current, refractory):
    """v_n = I (1 - alpha^n) from rest, so the first spike comes at n* = ceil(ln(1 - theta/I) / ln alpha);
    reset to zero restarts the same climb after the refractory steps: spikes at n*, 2 n* + r, ..."""
    p = LIFParams(dt=1e-3, tau_mem=10e-3, threshold=0.5, reset="zero", refractory=refractory)
    n_star = math.ceil(math.log(1 - p.threshold / current) / math.log(p.alpha))
    T = 60
    spikes = LIF(p)(torch.full((T, 1, 1), current))
    expected = [n_star + i * (n_star + refractory) for i in range(T) if n_star + i * (n_star + refractory) <= T]
    assert spike_steps(spikes) == expected


def test_subthreshold_input_never_spikes_and_settles_at_the_input():
    p = LIFParams(tau_mem=5e-3, threshold=1.0)
    lif = LIF(p)
    spikes = lif(torch.full((200, 1, 1), 0.9))
    assert spikes.sum() == 0
    assert float(lif.v[-1]) == pytest.approx(0.9, rel=1e-6)


@pytest.mark.parametrize("reset, after", [("subtract", 0.25), ("zero", 0.0)])
def test_reset_modes(reset, after):
    """One input step lifts v to 1.25 theta; the reset leaves theta/4 (subtract) or 0 (zero), which
    then decays by alpha with no input."""
    p = LIFParams(tau_mem=10e-3, threshold=1.0, reset=reset)
    x = torch.zeros(3, 1, 1)
    x[0] = 1.25 / (1 - p.alpha)
    spikes, v, state = lif_scan(x, LIFState.zeros((1, 1), p), p)
    assert spike_steps(spikes) == [1]
    assert float(v[0]) == pytest.approx(1.25)
    assert float(v[1]) == pytest.approx(p.alpha * after)
    assert float(state.v) == pytest.approx(p.alpha**2 * after)


def test_refractory_ignores_input_for_the_given_steps():
    p = LIFParams(tau_mem=10e-3, threshold=1.0, reset="subtract", refractory=4)
    strong = torch.full((12, 1, 1), 100.0)
    spikes, v, _ = lif_scan(strong, LIFState.zeros((1, 1), p), p)
    assert spike_steps(spikes) == [1, 6, 11]
    assert torch.all(v[1:5] == 0)


def test_synaptic_current_filters_the_input():
    """i_t = beta i_{t-1} + x_t drives v: an impulse gives v_1 = (1-alpha) x, v_2 = alpha v_1 + (1-alpha) beta x."""
    p = LIFParams(tau_mem=10e-3, tau_syn=5e-3, threshold=100.0)
    x = torch.zeros(3, 1, 1)
    x[0] = 2.0
    _, v, _ = lif_scan(x, LIFState.zeros((1, 1), p), p)
    v1 = (1 - p.alpha) * 2.0
    assert float(v[0]) == pytest.approx(v1)
    assert float(v[1]) == pytest.approx(p.alpha * v1 + (1 - p.alpha) * p.beta * 2.0)


def test_bad_neuron_parameters_are_named():
    with pytest.raises(ValueError, match="reset must be"):
        LIFParams(reset="half")
    with pytest.raises(ValueError, match="unknown neuron parameters"):
        LIFParams.from_dict({"tau": 1.0})


def test_rate_encoding_probability_matches_intensity_and_is_seeded():
    x = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    T = 4000
    s = rate(x, T, torch.Generator().manual_seed(0))
    assert s.shape == (T, 5) and set(s.unique().tolist()) <= {0.0, 1.0}
    p_hat = s.mean(0)
    tolerance = 4 * torch.sqrt(x * (1 - x) / T) + 1e-9
    assert torch.all((p_hat - x).abs() <= tolerance)
    assert torch.equal(s, rate(x, T, torch.Generator().manual_seed(0)))
    assert not torch.equal(s, rate(x, T, torch.Generator().manual_seed(1)))


def test_consecutive_rate_windows_continue_the_same_stream():
    x = torch.rand(3, 7)
    whole = encode("rate", x, 10, torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    parts = torch.cat([encode("rate", x, 10, g, start=0, count=4), encode("rate", x, 10, g, start=4, count=6)])
    assert torch.equal(whole, parts)


def test_latency_and_delta_encoders():
    x = torch.tensor([0.0, 0.2, 0.6, 1.0])
    s = latency(x, 30)
    assert s.sum(0).tolist() == [0.0, 1.0, 1.0, 1.0]
    times = s.argmax(0)
    assert times[3] <= times[2] <= times[1]
    assert torch.equal(latency(x, 30, start=5, count=10), s[5:15])
    seq = torch.tensor([0.0, 0.5, 0.55, 0.2, 0.9])
    assert delta(seq, threshold=0.1).tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="unknown encoder"):
        encode("phase", x, 5)


def spiking_tiny(steps: int = 6, **kw) -> SpikingNetwork:
    """A 5-4-3 LIF network with weights large enough that every layer spikes."""
    neuron = LIFParams(tau_mem=5e-3, threshold=0.5)
    net = SpikingNetwork(
        tiny_spec(("tanh",), (4,), 5, 3), seed=4, options=SpikingOptions(steps=steps, neuron=neuron, **kw)
    )
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=g) * 4.0 - 1.0)
            layer.bias.copy_(torch.rand(layer.bias.shape, generator=g) * 0.5)
    return net


def written_out_update(net: SpikingNetwork, x, y_star, rule: str, seed: int):
    """The three-factor rule by hand, one step and one example at a time, in float64."""
    o, p = net.options, net.options.neuron
    T, batch = o.steps, x.shape[0]
    s0 = encode("rate", x.reshape(batch, -1), T, torch.Generator().manual_seed(seed)).double()
    W1, b1 = net.layers[0].weight.double(), net.layers[0].bias.double()
    W2, b2 = net.layers[1].weight.double(), net.layers[1].bias.double()
    B1 = net.feedback(1).double()
    y_star = y_star.double()
    v1 = torch.zeros(batch, W1.shape[0], dtype=torch.float64)
    v2 = torch.zeros(batch, W2.shape[0], dtype=torch.float64)
    g1, gb1 = torch.zeros_like(W1), torch.zeros_like(b1)
    elig, elig_b = (
        torch.zeros(batch, *W2.shape, dtype=torch.float64),
        torch.zeros(batch, W2.shape[0], dtype=torch.float64),
    )
    counts = torch.zeros_like(v2)
    for t in range(T):
        v1 = p.alpha * v1 + (1 - p.alpha) * (s0[t] @ W1.T + b1)
        s1 = (v1 >= p.threshold).double()
        psi1 = fast_sigmoid(v1, p.threshold, o.slope)
        v1 = v1 - s1 * p.threshold
        v2 = p.alpha * v2 + (1 - p.alpha) * (s1 @ W2.T + b2)
        s2 = (v2 >= p.threshold).double()
        psi2 = fast_sigmoid(v2, p.threshold, o.slope)
        v2 = v2 - s2 * p.threshold
        counts += s2
        m1 = y_star @ B1 if rule == "drtp" else (counts / (t + 1) - y_star) @ B1
        for n in range(batch):
            g1 += torch.outer(m1[n] * psi1[n], s0[t, n]) / T
            gb1 += m1[n] * psi1[n] / T
            elig[n] += torch.outer(psi2[n], s1[n]) / T
            elig_b[n] += psi2[n] / T
    err = (counts / T - y_star) / y_star.numel()
    g2 = sum(err[n, :, None] * elig[n] for n in range(batch))
    gb2 = sum(err[n] * elig_b[n] for n in range(batch))
    return [g1, gb1, g2, gb2]


@pytest.mark.parametrize("rule", ["drtp", "dfa"])
@pytest.mark.parametrize("event_driven", [True, False])
def test_three_factor_update_equals_its_written_out_form(rule, event_driven):
    net = spiking_tiny(event_driven=event_driven)
    x = torch.rand(3, 1, 1, 5, generator=torch.Generator().manual_seed(5))
    y_star = torch.eye(3)[[0, 2, 1]]
    res = net.step(x, y_star, Rule(rule), 0.0, torch.Generator().manual_seed(8))
    assert res.output.sum() > 0, "the test network must spike"
    expected = written_out_update(net, x, y_star, rule, 8)
    for param, e in zip(net.parameters(), expected, strict=True):
        torch.testing.assert_close(param.grad.double(), e, rtol=1e-5, atol=1e-8)


def test_time_chunks_and_event_driven_products_change_nothing():
    x = torch.rand(8, 1, 1, 5, generator=torch.Generator().manual_seed(1))
    y_star = torch.eye(3)[torch.arange(8) % 3]
    grads = []
    for chunk, events in [(0, False), (4, False), (5, True)]:
        net = spiking_tiny(steps=13, time_chunk=chunk, event_driven=events)
        net.step(x, y_star, Rule("drtp"), 0.0, torch.Generator().manual_seed(3))
        grads.append([p.grad.clone() for p in net.parameters()])
    for other in grads[1:]:
        for a, b in zip(grads[0], other, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_drtp_hidden_update_does_not_depend_on_output_weights():
    x = torch.rand(4, 1, 1, 5, generator=torch.Generator().manual_seed(2))
    y_star = torch.eye(3)[[0, 1, 2, 0]]
    net = spiking_tiny()
    net.step(x, y_star, Rule("drtp"), 0.0, torch.Generator().manual_seed(0))
    before = net.layers[0].weight.grad.clone()
    with torch.no_grad():
        net.layers[1].weight.mul_(-2.0)
    net.step(x, y_star, Rule("drtp"), 0.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(net.layers[0].weight.grad, before)
    net.step(x, y_star, Rule("dfa"), 0.0, torch.Generator().manual_seed(0))
    dfa = net.layers[0].weight.grad.clone()
    with torch.no_grad():
        net.layers[1].weight.mul_(-0.5)
    net.step(x, y_star, Rule("dfa"), 0.0, torch.Generator().manual_seed(0))
    assert not torch.allclose(net.layers[0].weight.grad, dfa)


def test_same_seed_same_spikes():
    x = torch.rand(6, 1, 1, 5, generator=torch.Generator().manual_seed(3))
    y_star = torch.eye(3)[torch.arange(6) % 3]
    a = spiking_tiny().step(x, y_star, Rule("drtp"), 0.0, torch.Generator().manual_seed(9))
    b = spiking_tiny().step(x, y_star, Rule("drtp"), 0.0, torch.Generator().manual_seed(9))
    c = spiking_tiny().step(x, y_star, Rule("drtp"), 0.0, torch.Generator().manual_seed(10))
    assert torch.equal(a.output, b.output) and a.loss == b.loss
    assert not torch.equal(a.output, c.output)


def test_bptt_at_one_step_equals_the_chain_rule():
    """T = 1: J = |y_hat - y*|^2 / (2 N C), y_hat = s_2, ds/dv = psi(v), dv/dI = 1 - alpha."""
    net = spiking_tiny(steps=1)
    x = torch.rand(4, 1, 1, 5, generator=torch.Generator().manual_seed(6))
    y_star = torch.eye(3)[[0, 1, 2, 1]]
    net.step(x, y_star, Rule("bp"), 0.0, torch.Generator().manual_seed(1))
    p, o = net.options.neuron, net.options
    s0 = encode("rate", x.reshape(4, -1), 1, torch.Generator().manual_seed(1))[0]
    W1, b1, W2, b2 = (t.detach() for t in net.parameters())
    v1 = (1 - p.alpha) * (s0 @ W1.T + b1)
    s1 = (v1 >= p.threshold).float()
    v2 = (1 - p.alpha) * (s1 @ W2.T + b2)
    s2 = (v2 >= p.threshold).float()
    d2 = (s2 - y_star) / y_star.numel() * fast_sigmoid(v2, p.threshold, o.slope) * (1 - p.alpha)
    d1 = (d2 @ W2) * fast_sigmoid(v1, p.threshold, o.slope) * (1 - p.alpha)
    for param, e in zip(net.parameters(), [d1.T @ s0, d1.sum(0), d2.T @ s1, d2.sum(0)], strict=True):
        torch.testing.assert_close(param.grad, e, rtol=1e-5, atol=1e-8)


def test_lif_step_is_differentiable_with_a_surrogate():
    p = LIFParams(threshold=0.5)
    v0 = torch.zeros(1, 2)
    x = torch.tensor([[20.0, 1.0]], requires_grad=True)
    s, _, _ = lif_step(x, LIFState(v0), p, lambda v, th: (v >= th).float() + v - v.detach())
    s.sum().backward()
    assert x.grad is not None and torch.all(x.grad > 0)


def test_spiking_config_errors():
    with pytest.raises(ValueError, match="not available in the spiking engine"):
        TrainConfig(engine="spiking", rule="fa").validate()
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(engine="spiking", steps=0).validate()
    with pytest.raises(ValueError, match="dense layers only"):
        from snn_drtp.networks import load_spec

        SpikingNetwork(load_spec("conv-mnist"))


def test_soft_lif_rate_curve_and_its_derivative():
    from snn_drtp.rate.layers import SoftLIF

    f = SoftLIF(tau_steps=5.0, threshold=0.5)
    z = torch.linspace(-1, 4, 41, dtype=torch.float64, requires_grad=True)
    f(z).sum().backward()
    torch.testing.assert_close(f.derivative(z.detach()), z.grad)
    far = torch.tensor([3.0], dtype=torch.float64)
    assert float(f(far)) == pytest.approx(1 / (5.0 * math.log(3.0 / 2.5)), rel=1e-6)
    assert float(f(torch.tensor([-1.0]))) < 0.01


def test_update_angles_compare_like_with_like():
    from snn_drtp.validation import update_angles

    net = spiking_tiny(steps=8)
    x = torch.rand(12, 1, 1, 5, generator=torch.Generator().manual_seed(4))
    y_star = torch.eye(3)[torch.arange(12) % 3]
    angles = update_angles(net, x, y_star)
    assert set(angles) == {"layer1"} and set(angles["layer1"]) == {"rate_tanh", "rate_lif", "bptt"}
    assert all(0.0 <= a <= 180.0 for a in angles["layer1"].values())


@pytest.mark.mnist
def test_cli_trains_a_spiking_network_on_mnist_and_resumes(tmp_path):
    import json

    from snn_drtp.cli import main

    args = "train --engine spiking --network fc1-500 --train-subset 1000 --test-subset 300 --batch-size 50 "
    args += "--lr 2e-3 --steps 8 --tau-mem 4e-3 --no-progress --out"
    args = [*args.split(), str(tmp_path / "spk")]
    assert main([*args, "--epochs", "1"]) == 0
    assert main([*args, "--epochs", "2"]) == 0
    metrics = json.loads((tmp_path / "spk" / "metrics.json").read_text())
    config = json.loads((tmp_path / "spk" / "config.json").read_text())
    assert metrics["epoch"] == [1, 2] and config["neuron"] == {"tau_mem": 4e-3}
    assert config["network_spec"]["neuron"]["threshold"] == 0.5
    assert metrics["test_error"][-1] < 40.0
    assert "layer1" in metrics["angle_to_bp"]


def test_monitor_records_spikes_rates_and_chosen_membranes():
    from snn_drtp.spiking.monitors import record

    net = spiking_tiny(steps=10, time_chunk=4)
    x = torch.rand(3, 1, 1, 5, generator=torch.Generator().manual_seed(0))
    rec = record(net, x, neurons=[0, 2])
    assert rec.layers == [1, 2]
    assert rec.layer_spikes(0).shape == (10, 3, 5) and rec.layer_spikes(1).shape == (10, 3, 4)
    assert rec.layer_v(1).shape == (10, 3, 2) and rec.layer_v(2).shape == (10, 3, 2)
    summary = rec.summary()
    assert summary["layer1"]["mean_rate"] == pytest.approx(float(rec.layer_spikes(1).mean()))
    assert 0.0 <= summary["layer2"]["silent_fraction"] <= 1.0
    res = net.step(x, torch.zeros(3, 3), Rule("shallow"), 0.0, torch.Generator().manual_seed(0), write_grads=False)
    torch.testing.assert_close(rec.layer_spikes(2).sum(0) / 10, res.output)
