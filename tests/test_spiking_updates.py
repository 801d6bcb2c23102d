"""The spiking engine's three-factor updates against the written-out reference in
``spiking_reference.py`` (float64, step by step): every rule timing, traces, refractoriness,
dropout, time windows, latency input and event-driven products."""

import math

import pytest
import torch
from conftest import tiny_spec
from spiking_reference import reference_update

from snn_drtp.core.params import Params
from snn_drtp.rules import get_rule
from snn_drtp.spiking import EncodedInput, LIFParams, SpikeTrain, SpikingEngine, SpikingOptions
from snn_drtp.spiking.events import SpikeEvents, block_width, column_blocks
from snn_drtp.spiking.layers import EVENT_DENSITY, EVENT_MIN_UNITS

DT, TAU, THETA, SLOPE = 1e-3, 5e-3, 0.5, 4.0


def engine_for(n_in=5, hidden=4, n_out=3, steps=6, seed=4, gain=3.0, refractory=0, **options) -> SpikingEngine:
    """A n_in-hidden-n_out LIF network with weights uniform in (-1, gain - 1) x 2.5 / sqrt(fan_in),
    large enough that every layer spikes."""
    neuron = LIFParams(dt=DT, tau_mem=TAU, threshold=THETA, refractory=refractory)
    engine = SpikingEngine(
        Params(tiny_spec(("tanh",), (hidden,), n_in, n_out), seed=seed),
        SpikingOptions(steps=steps, neuron=neuron, slope=SLOPE, **options),
    )
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for layer in engine.params.layers:
            fan_in = layer.weight.shape[1]
            layer.weight.copy_((torch.rand(layer.weight.shape, generator=g) * gain - 1.0) * 2.5 / fan_in**0.5)
            layer.bias.copy_(torch.rand(layer.bias.shape, generator=g) * 0.5)
    return engine


def spike_train(T, n, d, density=0.5, seed=5) -> torch.Tensor:
    return (torch.rand(T, n, 1, 1, d, generator=torch.Generator().manual_seed(seed)) < density).float()


def labels(n, c=3):
    return torch.eye(c)[torch.arange(n) % c]


def hidden_factor(rule: str, B1: torch.Tensor):
    """m1(t) written out per rule, from the running output counts after step t."""
    B1 = B1.double()
    beta = math.sqrt(6 / B1.shape[1])
    return {
        "drtp": lambda t, counts, y: y @ B1,
        "drtp-ternary": lambda t, counts, y: y @ (torch.round(B1 / beta) * beta),
        "dfa": lambda t, counts, y: (counts / (t + 1) - y) @ B1,
        "sdfa": lambda t, counts, y: torch.sign(counts / (t + 1) - y) @ B1,
    }[rule]


def assert_matches(got: torch.Tensor, expected: torch.Tensor) -> None:
    """float32 against float64: equal up to rounding, relative to the tensor's largest entry."""
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6 * float(expected.abs().max()) + 1e-12)


def check_against_reference(engine, spikes, y_star, rule, masks=(None, None), **reference):
    res = engine.train_step(SpikeTrain(spikes), y_star, get_rule(rule))
    params = engine.params
    expected, counts = reference_update(
        [(layer.weight, layer.bias) for layer in params.layers],
        spikes,
        y_star,
        hidden_factor(rule, params.feedback(1)),
        DT,
        TAU,
        THETA,
        SLOPE,
        tau_pre=engine.options.tau_pre,
        masks=masks,
        **reference,
    )
    saturated = counts.numel() * spikes.shape[0]
    assert 0 < counts.sum() < saturated, "the test network must spike, not saturate"
    torch.testing.assert_close(res.output.double(), counts / spikes.shape[0])
    for param, e in zip(params.parameters(), expected, strict=True):
        assert_matches(param.grad, e)
    return res


@pytest.mark.parametrize("rule", ["drtp", "dfa", "sdfa", "drtp-ternary"])
@pytest.mark.parametrize("chunk", [0, 4])
def test_update_equals_the_written_out_rule(rule, chunk):
    """DFA and sDFA use the running error count(t)/t - y* of every step, also across windows."""
    engine = engine_for(steps=11, time_chunk=chunk)
    check_against_reference(engine, spike_train(11, 6, 5), labels(6), rule)


@pytest.mark.parametrize("chunk", [0, 3])
def test_presynaptic_trace_decays_across_windows(chunk):
    """pre = x(t) = gamma x(t-1) + s(t), gamma = exp(-dt / tau_pre), carried from window to window."""
    engine = engine_for(steps=10, time_chunk=chunk, tau_pre=4e-3)
    check_against_reference(engine, spike_train(10, 5, 5), labels(5), "drtp")


def test_post_factor_is_zero_while_refractory():
    engine = engine_for(steps=12, refractory=2)
    check_against_reference(engine, spike_train(12, 4, 5, density=0.8), labels(4), "dfa", refractory=2)


def test_dropout_masks_hold_for_the_presentation_and_scale_by_one_over_keep():
    """Masks m / (1 - p), m ~ Bernoulli(1 - p), one per example and layer input, drawn from the
    generator in layer order before anything else."""
    p, n = 0.3, 6
    engine = engine_for(steps=9, time_chunk=4)
    spikes = spike_train(9, n, 5, density=0.6)
    gen = torch.Generator().manual_seed(21)
    res = engine.train_step(SpikeTrain(spikes), labels(n), get_rule("drtp"), dropout=p, generator=gen)
    draws = torch.Generator().manual_seed(21)
    masks = tuple((torch.rand(n, d, generator=draws) >= p).float() / (1 - p) for d in (5, 4))
    expected, counts = reference_update(
        [(layer.weight, layer.bias) for layer in engine.params.layers],
        spikes,
        labels(n),
        hidden_factor("drtp", engine.params.feedback(1)),
        DT,
        TAU,
        THETA,
        SLOPE,
        masks=masks,
    )
    assert counts.sum() > 0 and any(float((m == 0).sum()) > 0 for m in masks)
    torch.testing.assert_close(res.output.double(), counts / 9)
    for param, e in zip(engine.params.parameters(), expected, strict=True):
        assert_matches(param.grad, e)


def test_latency_input_across_windows_equals_the_written_out_rule():
    """Static input through the latency encoder in windows of 5 steps: one spike at
    t = min(round(tau ln(x / (x - theta))), T - 1) (tau = 5, theta = 0.01), written out here; intensities
    just above theta fire late, in the later windows."""
    T = 16
    x = 0.01 + 0.01 * torch.rand(5, 1, 1, 5, generator=torch.Generator().manual_seed(3))
    times = torch.clamp(torch.round(5 * torch.log(x / (x - 0.01))), max=T - 1)
    spikes = (torch.arange(T).view(T, 1, 1, 1, 1) == times.unsqueeze(0)).float()
    assert int((times >= 5).sum()) > 5
    engine = engine_for(steps=T, time_chunk=5, encoder="latency", gain=6.0)
    res = engine.train_step(x, labels(5), get_rule("drtp"))
    expected, counts = reference_update(
        [(layer.weight, layer.bias) for layer in engine.params.layers],
        spikes,
        labels(5),
        hidden_factor("drtp", engine.params.feedback(1)),
        DT,
        TAU,
        THETA,
        SLOPE,
    )
    assert 0 < counts.sum() < counts.numel() * T
    torch.testing.assert_close(res.output.double(), counts / T)
    for param, e in zip(engine.params.parameters(), expected, strict=True):
        assert_matches(param.grad, e)


def count_event_products(monkeypatch) -> dict[str, int]:
    """Counts of the event-driven current and update computed from now on."""
    calls = {"matmul": 0, "add_outer_sum": 0}
    for name in calls:
        real = getattr(SpikeEvents, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(SpikeEvents, name, counted)
    return calls


def test_event_driven_products_run_on_wide_sparse_layers_and_equal_the_reference(monkeypatch):
    """Input 300 wide at 10 % density into 200 hidden units (the weights' transpose and the update
    in two column blocks): the event path is taken (counted here) and the update equals the
    written-out rule, in windows and with events shared by the current and the update."""
    calls = count_event_products(monkeypatch)
    assert EVENT_MIN_UNITS <= 200 and block_width(300, 200, 4) < 200 and block_width(7 * 3, 200, 4) < 200
    engine = engine_for(n_in=300, hidden=200, steps=8, time_chunk=3, gain=2.5)
    spikes = spike_train(8, 7, 300, density=0.1, seed=9)
    assert float(spikes.mean()) < EVENT_DENSITY
    check_against_reference(engine, spikes, labels(7), "drtp")
    assert calls == {"matmul": 3, "add_outer_sum": 3}
    dense = engine_for(n_in=300, hidden=200, steps=8, time_chunk=3, gain=2.5, event_driven=False)
    check_against_reference(dense, spikes, labels(7), "dfa")
    assert calls == {"matmul": 3, "add_outer_sum": 3}


def test_windows_alternating_event_driven_and_dense_products_add_up_to_the_reference(monkeypatch):
    """Windows of 3 steps: sparse, dense (50 % of the inputs), sparse. The update accumulator moves
    between the event-driven layout and the dense product's and back; the sum is the rule's."""
    calls = count_event_products(monkeypatch)
    engine = engine_for(n_in=300, hidden=200, steps=9, time_chunk=3, gain=2.5)
    spikes = spike_train(9, 7, 300, density=0.1, seed=9)
    spikes[3:6] = spike_train(3, 7, 300, density=0.5, seed=10)
    check_against_reference(engine, spikes, labels(7), "drtp")
    assert calls == {"matmul": 2, "add_outer_sum": 2}


def test_spike_events_sum_the_rows_of_the_events_in_order():
    """S W^T and delta^T S from the event lists of a sparse binary S, rows in any density pattern
    (empty rows, empty columns, a full row); tables of 300 columns go in blocks, whose sums are
    those of one gather over the whole table to the bit."""
    g = torch.Generator().manual_seed(0)
    S = (torch.rand(37, 53, generator=g) < 0.1).float()
    S[5] = 0
    S[:, 7] = 0
    S[11] = 1
    for units in (9, 300):
        W = torch.randn(units, 53, generator=g, dtype=torch.float64)
        delta = torch.randn(37, units, generator=g, dtype=torch.float64)
        events = SpikeEvents(S)
        blocks = column_blocks(W.t())
        assert len(blocks) == (1 if units == 9 else 3)
        current = events.matmul(blocks)
        torch.testing.assert_close(current, S.double() @ W.T)
        offsets = torch.searchsorted(events.rows, torch.arange(37))
        whole = torch.nn.functional.embedding_bag(events.cols, W.t().contiguous(), offsets, mode="sum")
        assert torch.equal(current, whole)
        update_t = torch.ones(53, units, dtype=torch.float64)
        events.add_outer_sum(update_t, delta, alpha=0.5)
        torch.testing.assert_close(update_t, 1.0 + 0.5 * (delta.T @ S.double()).T)


def test_spike_events_weigh_event_counts_by_their_values():
    """Entries other than 0 and 1 (event counts) weigh their rows."""
    g = torch.Generator().manual_seed(1)
    S = (torch.rand(20, 30, generator=g) < 0.2).double() * torch.randint(1, 4, (20, 30), generator=g)
    W = torch.randn(150, 30, generator=g, dtype=torch.float64)
    delta = torch.randn(20, 150, generator=g, dtype=torch.float64)
    events = SpikeEvents(S)
    assert events.values is not None
    torch.testing.assert_close(events.matmul(column_blocks(W.t())), S.double() @ W.T)
    update_t = torch.zeros(30, 150, dtype=torch.float64)
    events.add_outer_sum(update_t, delta)
    torch.testing.assert_close(update_t, S.double().T @ delta)


def test_drtp_hidden_update_does_not_depend_on_output_weights():
    spikes, y_star = spike_train(6, 4, 5), labels(4)
    engine = engine_for()
    engine.train_step(SpikeTrain(spikes), y_star, get_rule("drtp"))
    before = engine.params.layers[0].weight.grad.clone()
    with torch.no_grad():
        engine.params.layers[1].weight.mul_(-2.0)
    engine.train_step(SpikeTrain(spikes), y_star, get_rule("drtp"))
    torch.testing.assert_close(engine.params.layers[0].weight.grad, before)
    engine.train_step(SpikeTrain(spikes), y_star, get_rule("dfa"))
    dfa = engine.params.layers[0].weight.grad.clone()
    with torch.no_grad():
        engine.params.layers[1].weight.mul_(-0.5)
    engine.train_step(SpikeTrain(spikes), y_star, get_rule("dfa"))
    assert not torch.allclose(engine.params.layers[0].weight.grad, dfa)


def test_static_input_is_encoded_outside_the_step_and_time_first_input_brings_its_steps():
    """A static batch through the rate encoder gives the same update as the same spikes handed in
    as a time-first train; a train of 14 steps runs 14 steps whatever the options' T."""
    x = torch.rand(4, 1, 1, 5, generator=torch.Generator().manual_seed(1))
    engine = engine_for(steps=7)
    res = engine.train_step(x, labels(4), get_rule("drtp"), generator=torch.Generator().manual_seed(2))
    encoded = [p.grad.clone() for p in engine.params.parameters()]
    spikes = torch.cat([w for _, w in EncodedInput(x, "rate", 7, torch.Generator().manual_seed(2)).windows(0)])
    res2 = engine.train_step(
        SpikeTrain(spikes), labels(4), get_rule("drtp"), generator=torch.Generator().manual_seed(2)
    )
    assert torch.equal(res.output, res2.output)
    for p, e in zip(engine.params.parameters(), encoded, strict=True):
        assert torch.equal(p.grad, e)
    long = spike_train(14, 4, 5)
    out = engine.train_step(SpikeTrain(long), labels(4), get_rule("drtp")).output
    assert torch.all(out * 14 == torch.round(out * 14)) and not torch.all(out * 7 == torch.round(out * 7))


def test_same_seed_same_spikes():
    x = torch.rand(6, 1, 1, 5, generator=torch.Generator().manual_seed(3))
    y_star = labels(6)
    a = engine_for().train_step(x, y_star, get_rule("drtp"), 0.0, torch.Generator().manual_seed(9))
    b = engine_for().train_step(x, y_star, get_rule("drtp"), 0.0, torch.Generator().manual_seed(9))
    c = engine_for().train_step(x, y_star, get_rule("drtp"), 0.0, torch.Generator().manual_seed(10))
    assert torch.equal(a.output, b.output) and a.loss == b.loss
    assert not torch.equal(a.output, c.output)


def test_logged_loss_is_the_squared_error_the_updates_descend():
    """J = sum (y_hat - y*)^2 / (2 N C), whose gradient (y_hat - y*) / (N C) is the output error."""
    spikes, y_star = spike_train(8, 5, 5), labels(5)
    engine = engine_for(steps=8)
    res = engine.train_step(SpikeTrain(spikes), y_star, get_rule("drtp"))
    assert res.loss == pytest.approx(float(((res.output - y_star) ** 2).sum() / (2 * y_star.numel())), rel=1e-6)
    total = engine.loss_sum(res.output, y_star)
    assert total == pytest.approx(res.loss * y_star.shape[0], rel=1e-6)
