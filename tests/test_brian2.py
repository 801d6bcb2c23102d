"""The Brian2 engine against the PyTorch spiking engine (an independent simulator of the same
equations): spike trains, membrane potentials and weight updates of one presentation."""

from __future__ import annotations

import pytest
import torch

from snn_drtp.brian import Brian2Engine
from snn_drtp.core.networks import LayerSpec, NetworkSpec
from snn_drtp.core.params import Params
from snn_drtp.rules import get_rule
from snn_drtp.spiking import LIFParams, SpikeTrain, SpikingEngine, SpikingOptions
from snn_drtp.studies.crosscheck import compare_engines

SPEC = NetworkSpec(
    "40-20-10", (40,), (LayerSpec("dense", units=20), LayerSpec("dense", units=10, activation="sigmoid"))
)
CASES = {
    "drtp": ("drtp", {}, {}),
    "dfa-refractory-synaptic-trace": ("dfa", {"refractory": 2, "tau_syn": 4e-3}, {"tau_pre": 3e-3}),
    "sdfa-zero-reset-triangle": ("sdfa", {"reset": "zero"}, {"surrogate": "triangle", "slope": 2.0}),
}


def _problem(seed: int, neuron: dict, options: dict, batch: int = 6, steps: int = 30):
    """Params scaled so that every layer spikes, Bernoulli(0.3) input spikes, one-hot targets."""
    params = Params(SPEC, seed=seed)
    with torch.no_grad():
        for layer, gain in zip(params.layers, (3.0, 8.0), strict=True):
            layer.weight.mul_(gain)
            layer.bias.mul_(gain)
    gen = torch.Generator().manual_seed(100 + seed)
    spikes = (torch.rand(steps, batch, 40, generator=gen) < 0.3).float()
    y_star = torch.nn.functional.one_hot(torch.randint(0, 10, (batch,), generator=gen), 10).float()
    opts = SpikingOptions(steps=steps, neuron=LIFParams(tau_mem=5e-3, threshold=0.5, **neuron), **options)
    return params, opts, spikes, y_star


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", sorted(CASES))
def test_brian2_reproduces_torch_spikes_and_updates(case: str, seed: int) -> None:
    rule, neuron, options = CASES[case]
    params, opts, spikes, y_star = _problem(seed, neuron, options)
    layers, updates = compare_engines(params, opts, spikes, y_star, get_rule(rule), "float64")
    for agreement in layers:
        assert agreement.spikes_torch > 10, agreement  # the layer is not silent
        assert agreement.mismatched == 0, agreement
        assert agreement.first_divergence is None
        assert agreement.max_v_difference < 1e-9
    assert [u.name for u in updates] == ["dJ/dW_1", "dJ/db_1", "dJ/dW_2", "dJ/db_2"]
    for update in updates:
        assert update.max_abs > 0, update
        assert update.relative < 1e-4, update


def test_float32_torch_against_float64_brian2_mismatch_is_rare() -> None:
    params, opts, spikes, y_star = _problem(0, {}, {}, batch=10)
    layers, updates = compare_engines(params, opts, spikes, y_star, get_rule("drtp"), "float32")
    total = sum(a.spikes_torch for a in layers[1:])
    assert sum(a.mismatched for a in layers[1:]) <= 0.001 * total
    assert max(u.relative for u in updates) < 1e-4


def test_dropout_masks_and_encoding_are_drawn_as_in_torch() -> None:
    """A training step (generator given): the same dropout masks and rate-encoded spikes in both."""
    params, opts, _, y_star = _problem(3, {}, {})
    x = torch.rand(6, 40)
    torch_params, brian_params = Params(SPEC, seed=3).double(), Params(SPEC, seed=3).double()
    torch_params.load_state_dict(params.state_dict())
    brian_params.load_state_dict(params.state_dict())
    a = SpikingEngine(torch_params, opts).train_step(
        x.double(), y_star.double(), get_rule("drtp"), 0.3, torch.Generator().manual_seed(5)
    )
    b = Brian2Engine(brian_params, opts, replicas=4).train_step(
        x.double(), y_star.double(), get_rule("drtp"), 0.3, torch.Generator().manual_seed(5)
    )
    assert torch.equal(a.output, b.output)
    for p, q in zip(torch_params.parameters(), brian_params.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-9, atol=1e-12)


def test_brian2_refuses_what_it_does_not_simulate() -> None:
    params, opts, spikes, y_star = _problem(0, {}, {})
    engine = Brian2Engine(params, opts)
    with pytest.raises(ValueError, match="backward sweep"):
        engine.train_step(SpikeTrain(spikes), y_star, get_rule("bp"))
    with pytest.raises(ValueError, match="--binary-frames"):
        engine.train_step(SpikeTrain(spikes * 2), y_star, get_rule("drtp"))
    conv = NetworkSpec(
        "c", (1, 8, 8), (LayerSpec("conv", channels=2, kernel=3), LayerSpec("dense", units=3, activation="sigmoid"))
    )
    with pytest.raises(ValueError, match="dense layers only"):
        Brian2Engine(Params(conv))
    with pytest.raises(ValueError, match="target"):
        Brian2Engine(params, opts, target="fortran")
