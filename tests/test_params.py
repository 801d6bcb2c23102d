"""One parameter set, built from (spec, seed), read and updated by every engine."""

import math

import torch
from conftest import tiny_spec

from snn_drtp.core.networks import load_spec, parse_spec
from snn_drtp.core.params import Params
from snn_drtp.rate.engine import RateEngine
from snn_drtp.spiking import SpikingEngine


def test_same_spec_and_seed_same_tensors_and_engines_share_them():
    a, b = Params(tiny_spec(), seed=3), Params(tiny_spec(), seed=3)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.layers[0].weight, Params(tiny_spec(), seed=4).layers[0].weight)
    rate, spiking = RateEngine(a), SpikingEngine(a)
    for k, layer in enumerate(a.layers):
        assert rate.layers[k].params.weight is layer.weight
        assert spiking.layers[k].params.weight is layer.weight
    with torch.no_grad():
        a.layers[0].weight.add_(1.0)
    torch.testing.assert_close(spiking.layers[0].params.weight, rate.layers[0].params.weight)


def test_initialisation_bounds_and_feedback_shapes():
    """W_k, b_k uniform in +-1/sqrt(fan_in); B_k [C, N_k] in +-sqrt(6/N_k), N_k a conv layer's output
    before pooling; F_k of W_k's shape in +-sqrt(6/fan_in)."""
    spec = load_spec("conv-mnist")
    params = Params(spec, seed=0)
    conv, dense, out = params.layers
    assert conv.weight.shape == (32, 1, 5, 5) and dense.weight.shape == (1000, 32 * 14 * 14)
    assert float(conv.weight.detach().abs().max()) <= 1 / math.sqrt(25)
    assert float(dense.bias.detach().abs().max()) <= 1 / math.sqrt(6272)
    assert params.feedback(1).shape == (10, 32 * 28 * 28) and params.feedback(2).shape == (10, 1000)
    assert float(params.feedback(1).abs().max()) <= math.sqrt(6 / (32 * 28 * 28))
    assert params.fa(2).shape == dense.weight.shape and params.fa(3).shape == out.weight.shape
    assert float(params.fa(3).abs().max()) <= math.sqrt(6 / 1000)


def test_state_dict_keys_are_those_of_earlier_run_folders():
    """Checkpoints written before the parameter set existed hold these keys; they load unchanged."""
    keys = list(Params(tiny_spec(), seed=0).state_dict())
    assert keys == [
        "B_1",
        "B_2",
        "fa_2",
        "fa_3",
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
        "layers.2.weight",
        "layers.2.bias",
    ]


def test_frozen_layers_do_not_require_gradients_and_are_not_optimised():
    spec = parse_spec(
        {
            "name": "frozen",
            "input_shape": [1, 1, 4],
            "layers": [
                {"kind": "dense", "units": 3, "trainable": False},
                {"kind": "dense", "units": 2, "activation": "sigmoid"},
            ],
        }
    )
    params = Params(spec)
    assert not params.layers[0].weight.requires_grad and params.layers[1].weight.requires_grad
    assert [id(t) for t in params.trainable_tensors()] == [id(params.layers[1].weight), id(params.layers[1].bias)]
