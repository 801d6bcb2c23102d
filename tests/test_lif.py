"""LIF dynamics against closed forms, surrogate derivatives against their formulas (written here),
encoders and spike input."""

import math

import pytest
import torch

from snn_drtp.spiking import LIF, EncodedInput, LIFParams, LIFState, SpikeTrain, SpikingOptions, lif_scan, lif_step
from snn_drtp.spiking.encoders import delta, latency, rate
from snn_drtp.spiking.surrogate import SpikeFunction, get_surrogate


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
    out, state = lif_scan(x, LIFState.zeros((1, 1), p), p)
    assert spike_steps(out.spikes) == [1]
    assert float(out.v[0]) == pytest.approx(1.25)
    assert float(out.v[1]) == pytest.approx(p.alpha * after)
    assert float(state.v) == pytest.approx(p.alpha**2 * after)


def test_refractory_neuron_ignores_input_and_reports_it():
    p = LIFParams(tau_mem=10e-3, threshold=1.0, reset="subtract", refractory=4)
    strong = torch.full((12, 1, 1), 100.0)
    out, _ = lif_scan(strong, LIFState.zeros((1, 1), p), p)
    assert spike_steps(out.spikes) == [1, 6, 11]
    assert torch.all(out.v[1:5] == 0)
    assert out.integrating.reshape(-1).tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    no_refractory = LIFParams(tau_mem=10e-3, threshold=1.0)
    assert lif_scan(strong, LIFState.zeros((1, 1), no_refractory), no_refractory)[0].integrating is None


def test_synaptic_current_filters_the_input():
    """i_t = beta i_{t-1} + x_t drives v: an impulse gives v_1 = (1-alpha) x, v_2 = alpha v_1 + (1-alpha) beta x."""
    p = LIFParams(tau_mem=10e-3, tau_syn=5e-3, threshold=100.0)
    x = torch.zeros(3, 1, 1)
    x[0] = 2.0
    out, _ = lif_scan(x, LIFState.zeros((1, 1), p), p)
    v1 = (1 - p.alpha) * 2.0
    assert float(out.v[0]) == pytest.approx(v1)
    assert float(out.v[1]) == pytest.approx(p.alpha * v1 + (1 - p.alpha) * p.beta * 2.0)


def test_state_is_immutable_and_a_scan_continues_where_it_stopped():
    p = LIFParams(tau_mem=8e-3, threshold=0.7, tau_syn=2e-3, refractory=2)
    x = torch.rand(20, 2, 3, generator=torch.Generator().manual_seed(0)) * 3
    start = LIFState.zeros((2, 3), p)
    whole, end = lif_scan(x, start, p)
    first, middle = lif_scan(x[:7], start, p)
    second, end2 = lif_scan(x[7:], middle, p)
    assert torch.equal(torch.cat([first.spikes, second.spikes]), whole.spikes)
    assert torch.equal(end.v, end2.v) and torch.equal(start.v, torch.zeros(2, 3))
    with pytest.raises(AttributeError):
        start.v = torch.ones(2, 3)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"threshold": -0.5}, r"threshold must be > 0, got -0\.5"),
        ({"tau_mem": 0.0}, r"tau_mem must be > 0 s, got 0\.0"),
        ({"reset": "half"}, r"reset must be 'subtract' or 'zero', got 'half'"),
        ({"refractory": -1}, r"refractory must be a whole number of steps >= 0, got -1"),
    ],
)
def test_bad_neuron_parameters_show_the_value(bad, message):
    with pytest.raises(ValueError, match=message):
        LIFParams(**bad)


def test_bad_spiking_options_show_the_value():
    with pytest.raises(ValueError, match=r"slope must be > 0, got -2\.0"):
        SpikingOptions(slope=-2.0)
    with pytest.raises(ValueError, match=r"surrogate must be one of .*got 'relu'"):
        SpikingOptions(surrogate="relu")
    with pytest.raises(ValueError, match="unknown neuron parameters"):
        LIFParams.from_dict({"tau": 1.0})


def test_surrogate_derivatives_equal_their_closed_forms():
    """fast sigmoid (SuperSpike): psi = 1 / (1 + k |v - theta|)^2; triangle: psi = max(0, 1 - k |v - theta|)."""
    v = torch.linspace(-1.0, 2.0, 61, dtype=torch.float64)
    theta, k = 0.5, 3.0
    fast = get_surrogate("fast_sigmoid")(v.clone(), theta, k)
    tri = get_surrogate("triangle")(v.clone(), theta, k)
    torch.testing.assert_close(fast, 1.0 / (1.0 + k * (v - theta).abs()) ** 2)
    torch.testing.assert_close(tri, torch.clamp(1.0 - k * (v - theta).abs(), min=0.0))
    at_threshold = torch.tensor([theta])
    assert float(get_surrogate("fast_sigmoid")(at_threshold.clone(), theta, k)) == 1.0
    assert float(get_surrogate("triangle")(at_threshold.clone(), theta, k)) == 1.0


@pytest.mark.parametrize("name", ["fast_sigmoid", "triangle"])
def test_spike_function_is_heaviside_forward_and_surrogate_backward(name):
    v = torch.tensor([0.1, 0.49, 0.5, 0.9], dtype=torch.float64, requires_grad=True)
    s = SpikeFunction.apply(v, 0.5, 2.0, name)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0]
    s.sum().backward()
    a = (v.detach() - 0.5).abs()
    closed = 1 / (1 + 2.0 * a) ** 2 if name == "fast_sigmoid" else torch.clamp(1 - 2.0 * a, min=0)
    torch.testing.assert_close(v.grad, closed)


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


def _cat_windows(inputs, chunk: int) -> torch.Tensor:
    return torch.cat([w for _, w in inputs.windows(chunk)])


def test_rate_windows_continue_the_same_stream():
    x = torch.rand(3, 7)
    whole = _cat_windows(EncodedInput(x, "rate", 10, torch.Generator().manual_seed(2)), 0)
    parts = _cat_windows(EncodedInput(x, "rate", 10, torch.Generator().manual_seed(2)), 4)
    assert torch.equal(whole, parts) and whole.shape == (10, 3, 7)


def test_per_example_seeds_make_an_example_independent_of_its_batch():
    x = torch.rand(5, 7, generator=torch.Generator().manual_seed(0))
    seeds = torch.arange(100, 105)
    together = _cat_windows(EncodedInput(x, "rate", 9, seeds=seeds), 4)
    alone = _cat_windows(EncodedInput(x[3:4], "rate", 9, seeds=seeds[3:4]), 0)
    assert torch.equal(together[:, 3:4], alone)
    assert torch.equal(alone[:, 0], rate(x[3], 9, torch.Generator().manual_seed(103)))


def test_latency_code_closed_form_and_across_windows():
    """One spike at t = round(tau ln(x / (x - theta))) for x > theta (tau = 5, theta = 0.01), none
    otherwise; the same spikes whatever the windows."""
    firing = (0.0100001, 0.0105, 0.011, 0.012, 0.015, 0.02, 0.2, 1.0)
    x = torch.tensor([[0.0, 0.005, *firing]])
    T = 30
    times = [None, None] + [round(5 * math.log(v / (v - 0.01))) for v in firing]
    assert times[2] > T and 10 < times[4] < T
    for chunk in (0, 4, 7):
        s = _cat_windows(EncodedInput(x, "latency", T), chunk)
        assert s.shape == (T, 1, 10)
        for j, t in enumerate(times):
            assert spike_steps(s[:, 0, j]) == ([] if t is None else [min(t, T - 1) + 1]), (chunk, j)
    assert torch.equal(latency(x, T, start=5, count=10), latency(x, T)[5:15])


def test_delta_encoder_and_spike_trains():
    seq = torch.tensor([0.0, 0.5, 0.55, 0.2, 0.9])
    assert delta(seq, threshold=0.1).tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]
    train = SpikeTrain(torch.zeros(11, 2, 3))
    assert train.steps == 11 and train.batch == 2
    assert [t0 for t0, _ in train.windows(4)] == [0, 4, 8]
    with pytest.raises(ValueError, match=r"time-first \[T, N, features...\]; got shape \(2, 3\)"):
        SpikeTrain(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="unknown encoder 'phase'"):
        EncodedInput(torch.zeros(2, 3), "phase", 5)


def test_lif_step_is_differentiable_with_a_surrogate():
    p = LIFParams(threshold=0.5)
    x = torch.tensor([[20.0, 1.0]], requires_grad=True)
    out, _ = lif_step(x, LIFState(torch.zeros(1, 2)), p, lambda v, th: (v >= th).float() + v - v.detach())
    out.spikes.sum().backward()
    assert x.grad is not None and torch.all(x.grad > 0)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_plain_neurons_scan_the_written_out_recursion_to_the_bit(reset):
    """Neurons without synaptic current or refractoriness take lif_scan's fused path; it gives
    v[t] = alpha v[t-1] + (1 - alpha) x[t], s[t] = H(v[t] - theta), then the reset, written out here,
    to the bit, from a non-resting state; the general path (an input that needs its gradient) too."""
    p = LIFParams(dt=1e-3, tau_mem=7e-3, threshold=0.4, reset=reset)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(12, 5, 33, generator=g) * 0.7 + 0.3
    v0 = torch.rand(5, 33, generator=g) * 0.4
    v, spikes, potentials = v0, [], []
    for t in range(12):
        v = p.alpha * v + (1.0 - p.alpha) * x[t]
        s = (v >= p.threshold).float()
        spikes.append(s)
        potentials.append(v)
        v = v - s * p.threshold if reset == "subtract" else v * (1.0 - s)
    out, state = lif_scan(x, LIFState(v0), p)
    assert 0 < float(out.spikes.mean()) < 0.5
    assert torch.equal(out.spikes, torch.stack(spikes)) and torch.equal(out.v, torch.stack(potentials))
    assert torch.equal(state.v, v) and out.integrating is None
    general, general_state = lif_scan(x.clone().requires_grad_(), LIFState(v0), p)
    assert torch.equal(general.spikes, out.spikes) and torch.equal(general.v.detach(), out.v)
    assert torch.equal(general_state.v.detach(), v)
