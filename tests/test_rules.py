"""Each rule's update on a tiny network equals its closed form (Frenkel et al. 2021, Fig. 1)."""

import numpy as np
import pytest
import torch
from conftest import tiny_spec

from snn_drtp.networks import parse_spec
from snn_drtp.rate.autograd_bp import autograd_step
from snn_drtp.rate.network import RateNetwork
from snn_drtp.rules import Rule, angle_degrees, feedback_matrices


def batch(n=6, n_in=5, c=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 1, n_in, generator=g)
    y_star = torch.nn.functional.one_hot(torch.randint(0, c, (n,), generator=g), c).float()
    return x, y_star


def closed_form(net: RateNetwork, x, y_star, rule: str) -> list[np.ndarray]:
    """Gradients [dW1, db1, dW2, db2, dW3, db3] written out in NumPy from the paper's equations."""
    W = [layer.weight.detach().double().numpy() for layer in net.layers]
    b = [layer.bias.detach().double().numpy() for layer in net.layers]
    B = [net.feedback(k).double().numpy() for k in (1, 2)]
    t = y_star.double().numpy()
    y0 = x.reshape(x.shape[0], -1).double().numpy()
    y1 = np.tanh(y0 @ W[0].T + b[0])
    y2 = np.tanh(y1 @ W[1].T + b[1])
    yK = 1 / (1 + np.exp(-(y2 @ W[2].T + b[2])))
    dK = (yK - t) / yK.size
    if rule == "drtp":
        m1, m2 = t @ B[0], t @ B[1]
    elif rule == "dfa":
        m1, m2 = (yK - t) @ B[0], (yK - t) @ B[1]
    elif rule == "sdfa":
        m1, m2 = np.sign(yK - t) @ B[0], np.sign(yK - t) @ B[1]
    elif rule == "fa":
        m2 = dK @ net.fa_3.double().numpy()
        m1 = (m2 * (1 - y2**2)) @ net.fa_2.double().numpy()
    else:
        raise AssertionError(rule)
    d2 = m2 * (1 - y2**2)
    d1 = m1 * (1 - y1**2)
    return [d1.T @ y0, d1.sum(0), d2.T @ y1, d2.sum(0), dK.T @ y2, dK.sum(0)]


@pytest.mark.parametrize("rule", ["drtp", "dfa", "sdfa", "fa"])
def test_rule_update_equals_closed_form(rule):
    net = RateNetwork(tiny_spec(), seed=1)
    x, y_star = batch()
    net.step(x, y_star, Rule(rule))
    expected = closed_form(net, x, y_star, rule)
    for p, e in zip(net.parameters(), expected, strict=True):
        np.testing.assert_allclose(p.grad.double().numpy(), e, rtol=1e-5, atol=1e-7)


def test_shallow_updates_only_the_output_layer():
    net = RateNetwork(tiny_spec(), seed=1)
    x, y_star = batch()
    net.step(x, y_star, Rule("shallow"))
    assert all(layer.weight.grad is None for layer in net.hidden)
    np.testing.assert_allclose(
        net.layers[-1].weight.grad.double().numpy(), closed_form(net, x, y_star, "drtp")[4], rtol=1e-5
    )


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
                    {"kind": "conv", "channels": 4, "kernel": 3, "padding": 1, "pool": 2},
                    {"kind": "dense", "units": 5},
                    {"kind": "dense", "units": 3, "activation": "sigmoid"},
                ],
            }
        )
        x = torch.rand(4, 2, 8, 8, generator=torch.Generator().manual_seed(0))
        y_star = torch.eye(3)[[0, 2, 1, 1]]
    net = RateNetwork(spec, seed=2)
    autograd_step(net, x, y_star, dropout, torch.Generator().manual_seed(9))
    reference = [p.grad.clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    net.step(x, y_star, Rule("bp"), dropout, torch.Generator().manual_seed(9))
    for p, r in zip(net.parameters(), reference, strict=True):
        torch.testing.assert_close(p.grad, r, rtol=1e-4, atol=1e-7)


def test_drtp_hidden_update_ignores_output_weights():
    net = RateNetwork(tiny_spec(), seed=3)
    x, y_star = batch()
    net.step(x, y_star, Rule("drtp"))
    before = [layer.weight.grad.clone() for layer in net.hidden]
    with torch.no_grad():
        net.layers[-1].weight.mul_(-3.0).add_(1.0)
    net.step(x, y_star, Rule("drtp"))
    for layer, g in zip(net.hidden, before, strict=True):
        torch.testing.assert_close(layer.weight.grad, g)
    net.step(x, y_star, Rule("dfa"))
    dfa_before = net.hidden[0].weight.grad.clone()
    with torch.no_grad():
        net.layers[-1].weight.mul_(2.0)
    net.step(x, y_star, Rule("dfa"))
    assert not torch.allclose(net.hidden[0].weight.grad, dfa_before)


def test_feedback_matrices_are_seeded_and_bounded():
    a = feedback_matrices([500, 30], 10, seed=4)
    b = feedback_matrices([500, 30], 10, seed=4)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert a[0].shape == (10, 500)
    assert float(a[0].abs().max()) <= (6 / 500) ** 0.5
    assert float(a[0].abs().max()) > 0.9 * (6 / 500) ** 0.5


def test_unknown_rule_and_angles():
    with pytest.raises(ValueError, match="unknown rule"):
        Rule("hebb")
    assert angle_degrees(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == pytest.approx(90.0)
    assert angle_degrees(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0])) == pytest.approx(0.0, abs=1e-4)
