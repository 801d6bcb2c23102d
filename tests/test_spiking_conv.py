"""Spiking convolutional layers: the three-factor update (B_k over the convolution's output before
pooling) against a float64 reference written with explicit kernel loops, and BPTT through a conv
layer against finite differences."""

import math

import pytest
import torch
import torch.nn.functional as F
from spiking_reference import fast_sigmoid

from snn_drtp.core.networks import parse_spec
from snn_drtp.core.params import Params
from snn_drtp.rules import get_rule
from snn_drtp.spiking import LIFParams, SpikeTrain, SpikingEngine, SpikingOptions
from snn_drtp.spiking.bptt import backward_through_time
from snn_drtp.spiking.layers import max_pool

DT, TAU, THETA, SLOPE = 1e-3, 5e-3, 0.5, 4.0


def conv_spec(pool: int = 2):
    return parse_spec(
        {
            "name": "tiny-conv",
            "input_shape": [2, 6, 6],
            "layers": [
                {"kind": "conv", "channels": 3, "kernel": 3, "padding": 1, "pool": pool},
                {"kind": "dense", "units": 4, "activation": "sigmoid"},
            ],
        }
    )


def conv_engine(steps=7, gain=3.0, pool=2, dtype=torch.float32, **options):
    neuron = LIFParams(dt=DT, tau_mem=TAU, threshold=THETA)
    engine = SpikingEngine(
        Params(conv_spec(pool), seed=3).to(dtype), SpikingOptions(steps=steps, neuron=neuron, slope=SLOPE, **options)
    )
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for layer in engine.params.layers:
            w = layer.weight
            w.copy_(((torch.rand(w.shape, generator=g) * gain - 1.0) * 2.0 / math.sqrt(w[0].numel())).to(dtype))
            layer.bias.copy_((torch.rand(layer.bias.shape, generator=g) * 0.3).to(dtype))
    return engine


def conv_written_out(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """3x3 convolution, padding 1, stride 1, by explicit kernel offsets: x [N, Cin, H, W] -> [N, C, H, W]."""
    n, _, h, w = x.shape
    padded = torch.zeros(n, x.shape[1], h + 2, w + 2, dtype=x.dtype)
    padded[:, :, 1:-1, 1:-1] = x
    out = b.view(1, -1, 1, 1).expand(n, -1, h, w).clone()
    for di in range(3):
        for dj in range(3):
            out += torch.einsum("nchw,oc->nohw", padded[:, :, di : di + h, dj : dj + w], W[:, :, di, dj])
    return out


def pool_written_out(s: torch.Tensor) -> torch.Tensor:
    n, c, h, w = s.shape
    return s.reshape(n, c, h // 2, 2, w // 2, 2).amax((3, 5))


def reference(engine, spikes, y_star):
    """dW of the conv (third factor y* B_1 over the 3 x 6 x 6 outputs before pooling) and the output layer."""
    alpha = math.exp(-DT / TAU)
    (W1, b1), (W2, b2) = [(p.weight.detach().double(), p.bias.detach().double()) for p in engine.params.layers]
    m = (y_star.double() @ engine.params.feedback(1).double()).view(-1, 3, 6, 6)
    T, N = spikes.shape[:2]
    v1, v2 = torch.zeros(N, 3, 6, 6, dtype=torch.float64), torch.zeros(N, 4, dtype=torch.float64)
    gW1, gb1 = torch.zeros_like(W1), torch.zeros_like(b1)
    E, Eb = torch.zeros(N, *W2.shape, dtype=torch.float64), torch.zeros(N, 4, dtype=torch.float64)
    counts = torch.zeros(N, 4, dtype=torch.float64)
    for t in range(T):
        x = spikes[t].double()
        v1 = alpha * v1 + (1 - alpha) * conv_written_out(x, W1, b1)
        s1 = (v1 >= THETA).double()
        delta = m * fast_sigmoid(v1, THETA, SLOPE)
        v1 = v1 - THETA * s1
        padded = torch.zeros(N, 2, 8, 8, dtype=torch.float64)
        padded[:, :, 1:-1, 1:-1] = x
        for di in range(3):
            for dj in range(3):
                gW1[:, :, di, dj] += torch.einsum("nohw,nchw->oc", delta, padded[:, :, di : di + 6, dj : dj + 6]) / T
        gb1 += delta.sum((0, 2, 3)) / T
        h = pool_written_out(s1).reshape(N, -1)
        v2 = alpha * v2 + (1 - alpha) * (h @ W2.T + b2)
        s2 = (v2 >= THETA).double()
        psi2 = fast_sigmoid(v2, THETA, SLOPE)
        v2 = v2 - THETA * s2
        counts += s2
        E += torch.einsum("nc,nd->ncd", psi2, h) / T
        Eb += psi2 / T
    e = (counts / T - y_star.double()) / y_star.numel()
    return [gW1, gb1, torch.einsum("nc,ncd->cd", e, E), (e * Eb).sum(0)], counts


@pytest.mark.parametrize("chunk", [0, 3])
def test_conv_three_factor_update_equals_the_written_out_rule(chunk):
    engine = conv_engine(time_chunk=chunk)
    spikes = (torch.rand(7, 5, 2, 6, 6, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    y_star = torch.eye(4)[torch.arange(5) % 4]
    res = engine.train_step(SpikeTrain(spikes), y_star, get_rule("drtp"))
    expected, counts = reference(engine, spikes, y_star)
    assert 0 < counts.sum() < counts.numel() * 7
    torch.testing.assert_close(res.output.double(), counts / 7)
    for param, e in zip(engine.params.parameters(), expected, strict=True):
        scale = float(e.abs().max())
        assert scale > 0
        torch.testing.assert_close(param.grad.double(), e, rtol=1e-5, atol=1e-6 * scale)


def test_conv_layers_take_no_dropout_and_feed_pooled_spikes():
    engine = conv_engine()
    assert not engine.layers[0].takes_dropout and engine.layers[1].takes_dropout
    spikes = (torch.rand(4, 3, 2, 6, 6, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    seen = {}
    engine.simulate(SpikeTrain(spikes), monitor=lambda k, s, v: seen.setdefault(k, s))
    assert seen[1].shape == (4, 3, 3, 6, 6)
    pooled = engine.layers[0].differentiable_spikes(seen[1])
    assert pooled.shape == (4, 3, 3, 3, 3)
    torch.testing.assert_close(pooled, pool_written_out(seen[1].reshape(-1, 3, 6, 6)).view(4, 3, 3, 3, 3))


BETA = 3.0


def unrolled_conv_loss(params, spikes, y_star, alpha):
    (W1, b1), (W2, b2) = params
    T, N = spikes.shape[:2]
    v1, v2 = torch.zeros(N, 3, 6, 6, dtype=torch.float64), torch.zeros(N, 4, dtype=torch.float64)
    counts = torch.zeros(N, 4, dtype=torch.float64)
    for t in range(T):
        v1 = alpha * v1 + (1 - alpha) * conv_written_out(spikes[t], W1, b1)
        s1 = torch.sigmoid(BETA * (v1 - THETA))
        v1 = v1 - THETA * s1
        h = pool_written_out(s1).reshape(N, -1)
        v2 = alpha * v2 + (1 - alpha) * (h @ W2.T + b2)
        s2 = torch.sigmoid(BETA * (v2 - THETA))
        v2 = v2 - THETA * s2
        counts = counts + s2
    return ((counts / T - y_star) ** 2).sum() / (2 * y_star.numel())


def test_bptt_through_a_conv_layer_equals_finite_differences():
    engine = conv_engine(steps=5, dtype=torch.float64)
    spikes = (torch.rand(5, 3, 2, 6, 6, generator=torch.Generator().manual_seed(3)) < 0.5).double()
    y_star = torch.eye(4, dtype=torch.float64)[[0, 2, 3]]
    backward_through_time(
        engine.params,
        engine.layers,
        SpikeTrain(spikes),
        y_star,
        get_rule("bp"),
        [None] * len(engine.layers),
        spike_fn=lambda v, th: torch.sigmoid(BETA * (v - th)),
    )
    params = [[p.weight.detach().clone(), p.bias.detach().clone()] for p in engine.params.layers]
    alpha, h = math.exp(-DT / TAU), 1e-6
    for k, layer in enumerate(engine.params.layers):
        for j, param in enumerate((layer.weight, layer.bias)):
            numeric = torch.zeros_like(param)
            for i in range(param.numel()):
                for sign in (1, -1):
                    shifted = [[t.clone() for t in pair] for pair in params]
                    shifted[k][j].view(-1)[i] += sign * h
                    numeric.view(-1)[i] += sign * unrolled_conv_loss(shifted, spikes, y_star, alpha) / (2 * h)
            torch.testing.assert_close(param.grad, numeric, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("pool, shape", [(2, (3, 4, 6, 8)), (2, (2, 5, 7, 9)), (3, (4, 2, 10, 11))])
def test_max_pool_equals_torch_max_pooling(pool, shape):
    """The spiking conv layer's max-pooling (elementwise maxima) gives F.max_pool2d's values, rows
    and columns past the last whole window dropped, for spikes and for any values."""
    g = torch.Generator().manual_seed(pool)
    values = torch.randn(shape, generator=g)
    spikes = (values > 0.8).float()
    for x in (values, spikes):
        assert torch.equal(max_pool(x, pool), F.max_pool2d(x, pool))
    time_first = torch.stack([values, -values])
    assert torch.equal(max_pool(time_first, pool)[1], F.max_pool2d(-values, pool))
