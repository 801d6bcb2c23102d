"""Each rule's update on a tiny rate network equals its closed form (Frenkel et al. 2021, Fig. 1),
written out in NumPy here; BP equals autograd; a rule defined in a test runs in both engines."""

import re
from typing import ClassVar

import numpy as np
import pytest
import torch
from conftest import tiny_spec

from snn_drtp.core.metrics import angle_degrees
from snn_drtp.core.networks import parse_spec
from snn_drtp.core.params import Params, feedback_matrices
from snn_drtp.rate.autograd_bp import autograd_step
from snn_drtp.rate.engine import RateEngine
from snn_drtp.rules import LayerView, Rule, Timing, get_rule, register, rule_names
from snn_drtp.rules.base import _REGISTRY
from snn_drtp.spiking import SpikeTrain, SpikingEngine, SpikingOptions
from snn_drtp.spiking.neuron import LIFParams


def batch(n=6, n_in=5, c=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 1, n_in, generator=g)
    y_star = torch.nn.functional.one_hot(torch.randint(0, c, (n,), generator=g), c).float()
    return x, y_star


def rate_engine(spec=None, seed=1) -> RateEngine:
    return RateEngine(Params(spec or tiny_spec(), seed=seed))


def closed_form(engine: RateEngine, x, y_star, rule: str) -> list[np.ndarray]:
    """Gradients [dW1, db1, dW2, db2, dW3, db3] written out in NumPy from the paper's equations."""
    params = engine.params
    W = [layer.weight.detach().double().numpy() for layer in params.layers]
    b = [layer.bias.detach().double().numpy() for layer in params.layers]
    B = [params.feedback(k).double().numpy() for k in (1, 2)]
    t = y_star.double().numpy()
    y0 = x.reshape(x.shape[0], -1).double().numpy()
    y1 = np.tanh(y0 @ W[0].T + b[0])
    y2 = np.tanh(y1 @ W[1].T + b[1])
    yK = 1 / (1 + np.exp(-(y2 @ W[2].T + b[2])))
    dK = (yK - t) / yK.size
    if rule == "drtp":
        m1, m2 = t @ B[0], t @ B[1]
    elif rule == "drtp-ternary":
        tern = [np.round(Bk / np.sqrt(6 / Bk.shape[1])) * np.sqrt(6 / Bk.shape[1]) for Bk in B]
        m1, m2 = t @ tern[0], t @ tern[1]
    elif rule == "dfa":
        m1, m2 = (yK - t) @ B[0], (yK - t) @ B[1]
    elif rule == "sdfa":
        m1, m2 = np.sign(yK - t) @ B[0], np.sign(yK - t) @ B[1]
    elif rule == "fa":
        m2 = dK @ params.fa(3).double().numpy()
        m1 = (m2 * (1 - y2**2)) @ params.fa(2).double().numpy()
    else:
        raise AssertionError(rule)
    d2 = m2 * (1 - y2**2)
    d1 = m1 * (1 - y1**2)
    return [d1.T @ y0, d1.sum(0), d2.T @ y1, d2.sum(0), dK.T @ y2, dK.sum(0)]


@pytest.mark.parametrize("rule", ["drtp", "dfa", "sdfa", "fa", "drtp-ternary"])
def test_rule_update_equals_closed_form(rule):
    engine = rate_engine()
    x, y_star = batch()
    engine.train_step(x, y_star, get_rule(rule))
    expected = closed_form(engine, x, y_star, rule)
    for p, e in zip(engine.params.parameters(), expected, strict=True):
        np.testing.assert_allclose(p.grad.double().numpy(), e, rtol=1e-5, atol=1e-7)


def test_ternary_projection_has_three_levels_and_zeros():
    engine = RateEngine(Params(tiny_spec(widths=(400, 300)), seed=0))
    x, y_star = batch(n=4)
    signals = engine.learning_signals(x, y_star, get_rule("drtp-ternary"))
    B1 = engine.params.feedback(1)
    beta = (6 / 400) ** 0.5
    m1 = signals[0] / (1 - engine.layers[0].forward(x)[0] ** 2)  # delta z / f'(z) = m
    levels = torch.unique(torch.round(m1 / beta * 1e4) / 1e4)
    assert set(levels.tolist()) <= {-1.0, 0.0, 1.0}
    zeros = float((torch.round(B1 / beta) == 0).float().mean())
    assert 0.4 < zeros < 0.6


def test_shallow_updates_only_the_output_layer():
    engine = rate_engine()
    x, y_star = batch()
    engine.train_step(x, y_star, get_rule("shallow"))
    assert all(layer.weight.grad is None for layer in engine.params.hidden)
    np.testing.assert_allclose(
        engine.params.layers[-1].weight.grad.double().numpy(), closed_form(engine, x, y_star, "drtp")[4], rtol=1e-5
    )


def test_mse_output_gradient_is_twice_the_error_over_n_c():
    """Linear output, J = sum (y_K - y*)^2 / (N C): dJ/dz_K = 2 (y_K - y*) / (N C)."""
    engine = rate_engine(tiny_spec(output="linear", n_out=3))
    x, _ = batch()
    y_star = torch.rand(6, 3, generator=torch.Generator().manual_seed(1))
    res = engine.train_step(x, y_star, get_rule("drtp"))
    h = x.reshape(6, -1)
    W = [(layer.weight.detach(), layer.bias.detach()) for layer in engine.params.layers]
    for weight, bias in W[:-1]:
        h = torch.tanh(h @ weight.T + bias)
    out = engine.params.layers[-1]
    y = h @ W[-1][0].T + W[-1][1]
    d = 2 * (y - y_star) / y.numel()
    torch.testing.assert_close(out.weight.grad, d.T @ h)
    torch.testing.assert_close(out.bias.grad, d.sum(0))
    assert res.loss == pytest.approx(float(((y - y_star) ** 2).mean()), rel=1e-6)


def test_a_tanh_output_descends_the_mse_by_finite_differences():
    """Tanh output (the paper's regression network), J = sum (y_K - y*)^2 / (N C): BP's update of
    every parameter equals the central difference (J(w + h) - J(w - h)) / 2h in float64."""
    engine = RateEngine(Params(tiny_spec(output="tanh", n_out=3), seed=2).double())
    x, _ = batch()
    x = x.double()
    y_star = torch.rand(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    res = engine.train_step(x, y_star, get_rule("bp"))

    @torch.no_grad()
    def mse() -> float:
        h = x.reshape(6, -1)
        for layer in engine.params.layers:
            h = torch.tanh(h @ layer.weight.T + layer.bias)
        return float(((h - y_star) ** 2).mean())

    assert res.loss == pytest.approx(mse(), rel=1e-12)
    step = 1e-6
    with torch.no_grad():
        for tensor in engine.params.parameters():
            numeric = torch.zeros_like(tensor)
            for i in range(tensor.numel()):
                flat = tensor.view(-1)
                flat[i] += step
                up = mse()
                flat[i] -= 2 * step
                down = mse()
                flat[i] += step
                numeric.view(-1)[i] = (up - down) / (2 * step)
            torch.testing.assert_close(tensor.grad, numeric, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("network", ["dense", "conv"])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_bp_rule_equals_autograd(network, dropout):
    if network == "dense":
        spec = tiny_spec()
        x, y_star = batch()
    else:
        spec = parse_spec(
            {
                "name": "tiny-conv",
                "input_shape": [2, 8, 8],
                "layers": [
                    {"kind": "conv", "channels": 3, "kernel": 3, "padding": 1, "pool": 2},
                    {"kind": "conv", "channels": 4, "kernel": 3, "padding": 1, "pool": 2, "trainable": False},
                    {"kind": "dense", "units": 5},
                    {"kind": "dense", "units": 3, "activation": "sigmoid"},
                ],
            }
        )
        x = torch.rand(4, 2, 8, 8, generator=torch.Generator().manual_seed(0))
        y_star = torch.eye(3)[[0, 2, 1, 1]]
    engine = RateEngine(Params(spec, seed=2))
    autograd_step(engine, x, y_star, dropout, torch.Generator().manual_seed(9))
    reference = [p.grad.clone() if p.grad is not None else None for p in engine.params.parameters()]
    engine.params.zero_grad(set_to_none=True)
    engine.train_step(x, y_star, get_rule("bp"), dropout, torch.Generator().manual_seed(9))
    for p, r in zip(engine.params.parameters(), reference, strict=True):
        if r is None:
            assert p.grad is None and not p.requires_grad
        else:
            torch.testing.assert_close(p.grad, r, rtol=1e-4, atol=1e-7)


def test_conv_layer_with_lif_activation_follows_the_lif_rate_curve():
    """A conv layer with activation 'lif' uses the LIF rate curve f(z) = 1 / (tau ln(1 + theta / (z - theta)))
    (far above threshold), not the identity."""
    neuron = {"dt": 1e-3, "tau_mem": 5e-3, "threshold": 0.5}
    spec = parse_spec(
        {
            "name": "conv-lif",
            "input_shape": [1, 4, 4],
            "layers": [
                {"kind": "conv", "channels": 1, "kernel": 1, "activation": "lif"},
                {"kind": "dense", "units": 2, "activation": "sigmoid"},
            ],
            "neuron": neuron,
        }
    )
    engine = RateEngine(Params(spec, seed=0))
    with torch.no_grad():
        engine.params.layers[0].weight.fill_(1.0)
        engine.params.layers[0].bias.zero_()
    x = torch.full((1, 1, 4, 4), 3.0)
    y, _ = engine.layers[0].forward(x)
    expected = 1 / (5.0 * np.log(1 + 0.5 / (3.0 - 0.5)))
    torch.testing.assert_close(y, torch.full_like(y, expected), rtol=1e-3, atol=0)


def test_drtp_hidden_update_ignores_output_weights():
    engine = rate_engine(seed=3)
    x, y_star = batch()
    engine.train_step(x, y_star, get_rule("drtp"))
    before = [layer.weight.grad.clone() for layer in engine.params.hidden]
    with torch.no_grad():
        engine.params.layers[-1].weight.mul_(-3.0).add_(1.0)
    engine.train_step(x, y_star, get_rule("drtp"))
    for layer, g in zip(engine.params.hidden, before, strict=True):
        torch.testing.assert_close(layer.weight.grad, g)
    engine.train_step(x, y_star, get_rule("dfa"))
    dfa_before = engine.params.hidden[0].weight.grad.clone()
    with torch.no_grad():
        engine.params.layers[-1].weight.mul_(2.0)
    engine.train_step(x, y_star, get_rule("dfa"))
    assert not torch.allclose(engine.params.hidden[0].weight.grad, dfa_before)


def test_feedback_matrices_are_seeded_and_bounded():
    a = feedback_matrices([500, 30], 10, seed=4)
    b = feedback_matrices([500, 30], 10, seed=4)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert a[0].shape == (10, 500)
    assert float(a[0].abs().max()) <= (6 / 500) ** 0.5
    assert float(a[0].abs().max()) > 0.9 * (6 / 500) ** 0.5


def test_unknown_rule_and_angles():
    with pytest.raises(ValueError, match=r"unknown rule 'hebb'; choose one of .*drtp"):
        get_rule("hebb")
    assert angle_degrees(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == pytest.approx(90.0)
    assert angle_degrees(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0])) == pytest.approx(0.0, abs=1e-4)


def test_rule_asked_before_its_signal_exists_says_so():
    view = LayerView(k=1, y_star=torch.eye(2), B=torch.ones(2, 3))
    with pytest.raises(ValueError, match="rule dfa needs error for hidden layer 1"):
        get_rule("dfa").third_factor(view)
    with pytest.raises(ValueError, match="rule bp needs"):
        get_rule("bp").third_factor(view)


@pytest.fixture
def half_drtp():
    """A rule the package does not have, defined here: m_k = 0.5 y* B_k."""

    class HalfDRTP(Rule):
        name: ClassVar[str] = "test-half-drtp"
        timing = Timing.LABEL
        summary = "half of DRTP's third factor"

        def third_factor(self, view: LayerView) -> torch.Tensor:
            return 0.5 * (view.y_star @ view.B)

    register(HalfDRTP)
    yield get_rule("test-half-drtp")
    del _REGISTRY["test-half-drtp"]


def test_a_new_rule_is_one_class_and_runs_in_both_engines(half_drtp):
    """No engine knows the new rule's name: its hidden updates are exactly half of DRTP's in the rate
    and in the spiking engine, its output update the same."""
    assert "test-half-drtp" in rule_names()
    x, y_star = batch(c=2)
    rate = rate_engine()
    rate.train_step(x, y_star, get_rule("drtp"))
    drtp = [p.grad.clone() for p in rate.params.parameters()]
    rate.train_step(x, y_star, half_drtp)
    for i, (p, g) in enumerate(zip(rate.params.parameters(), drtp, strict=True)):
        torch.testing.assert_close(p.grad, g if i >= 4 else 0.5 * g)

    spec = tiny_spec(("tanh",), (6,), 5, 2)
    spiking = SpikingEngine(Params(spec, seed=1), SpikingOptions(neuron=LIFParams(tau_mem=5e-3, threshold=0.2)))
    with torch.no_grad():
        for layer in spiking.params.layers:
            layer.weight.mul_(6.0)
    spikes = SpikeTrain((torch.rand(12, 6, 1, 1, 5, generator=torch.Generator().manual_seed(0)) < 0.5).float())
    spiking.train_step(spikes, y_star, get_rule("drtp"))
    drtp = [p.grad.clone() for p in spiking.params.parameters()]
    assert drtp[0].abs().sum() > 0
    spiking.train_step(spikes, y_star, half_drtp)
    for i, (p, g) in enumerate(zip(spiking.params.parameters(), drtp, strict=True)):
        torch.testing.assert_close(p.grad, g if i >= 2 else 0.5 * g)


def test_engines_do_not_read_rule_names():
    """A static guard next to the behavioural test above: no engine module compares a rule's name."""
    import inspect

    from snn_drtp.brian import engine as brian_engine
    from snn_drtp.brian import model as brian_model
    from snn_drtp.rate import engine as rate_mod
    from snn_drtp.spiking import bptt, engine, layers

    for module in (rate_mod, engine, layers, bptt, brian_engine, brian_model):
        source = inspect.getsource(module)
        assert ".name ==" not in source and "rule.name" not in source, module.__name__
        for name in rule_names():
            assert f'"{name}"' not in source and f"'{name}'" not in source, (module.__name__, name)


@pytest.mark.parametrize("engine", ["rate", "spiking"])
def test_engines_refuse_a_rule_given_by_name(engine):
    params = Params(tiny_spec(), seed=0)
    model = RateEngine(params) if engine == "rate" else SpikingEngine(params, SpikingOptions(steps=3))
    x, y_star = batch()
    with pytest.raises(
        TypeError, match=re.escape("rule 'drtp' is a name; engines take a rule object: get_rule('drtp')")
    ):
        model.train_step(x, y_star, "drtp")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rule 3 is a int, not a Rule"):
        model.learning_signals(x, y_star, 3)  # type: ignore[arg-type]
