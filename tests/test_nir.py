"""NIR interchange: the graph's nodes hold the documented mapping, a graph written here reads back
exactly, and graphs from other tools are read with their conventions or refused clearly."""

from __future__ import annotations

import math

import nir
import numpy as np
import pytest
import torch

from snn_drtp.core.networks import LayerSpec, NetworkSpec
from snn_drtp.core.params import Params
from snn_drtp.interop.nir_graph import from_nir, read_nir, to_nir, write_nir
from snn_drtp.spiking import LIFParams, SpikeTrain, SpikingEngine, SpikingOptions

SPEC = NetworkSpec(
    "12-7-5-3",
    (1, 3, 4),
    (LayerSpec("dense", units=7), LayerSpec("dense", units=5), LayerSpec("dense", units=3, activation="sigmoid")),
)


def test_export_maps_weights_and_neurons_as_documented() -> None:
    params = Params(SPEC, seed=4)
    neuron = LIFParams(dt=1e-3, tau_mem=7e-3, threshold=0.8, reset="subtract")
    graph = to_nir(params, neuron)
    names = ("input", "fc1", "lif1", "fc2", "lif2", "fc3", "lif3", "output")
    kinds = ["Input", "Affine", "LIF", "Affine", "LIF", "Affine", "LIF", "Output"]
    assert [type(graph.nodes[n]).__name__ for n in names] == kinds
    assert ("lif3", "output") in graph.edges and ("input", "fc1") in graph.edges
    np.testing.assert_array_equal(graph.nodes["fc2"].weight, params.layers[1].weight.detach().numpy())
    np.testing.assert_array_equal(graph.nodes["fc2"].bias, params.layers[1].bias.detach().numpy())
    lif = graph.nodes["lif2"]
    np.testing.assert_array_equal(lif.tau, np.full(5, 7e-3))
    np.testing.assert_array_equal(lif.r, np.ones(5))
    np.testing.assert_array_equal(lif.v_leak, np.zeros(5))
    np.testing.assert_array_equal(lif.v_threshold, np.full(5, 0.8))
    np.testing.assert_array_equal(lif.v_reset, np.zeros(5))
    cuba = to_nir(params, LIFParams(tau_mem=7e-3, tau_syn=3e-3)).nodes["lif1"]
    assert isinstance(cuba, nir.CubaLIF)
    np.testing.assert_array_equal(cuba.tau_syn, np.full(7, 3e-3))
    np.testing.assert_array_equal(cuba.w_in, np.ones(7))


@pytest.mark.parametrize(
    "neuron",
    [
        LIFParams(dt=1e-3, tau_mem=7e-3, threshold=0.8, reset="subtract"),
        LIFParams(dt=5e-4, tau_mem=3e-3, tau_syn=2e-3, threshold=0.3, reset="zero", refractory=2),
    ],
)
def test_round_trip_through_a_file_is_exact(tmp_path, neuron: LIFParams) -> None:
    params = Params(SPEC, seed=9)
    with torch.no_grad():
        params.layers[0].weight.add_(0.1)  # "trained": differs from the seed's initialisation
    path = write_nir(tmp_path / "net.nir", params, neuron)
    back, back_neuron = read_nir(path)
    assert back_neuron == neuron
    assert back.spec == params.spec and back.seed == params.seed
    for (name, a), (other, b) in zip(params.state_dict().items(), back.state_dict().items(), strict=True):
        assert name == other
        assert torch.equal(a, b), name  # bitwise, B_k and F_k included (same seed)
    spikes = SpikeTrain((torch.rand(20, 4, 1, 3, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float())
    options = SpikingOptions(neuron=neuron)
    torch.testing.assert_close(
        SpikingEngine(back, options).simulate(spikes).output, SpikingEngine(params, options).simulate(spikes).output
    )


def _foreign(r: float = 1.0, v_leak: float = 0.0, threshold=(1.0, 1.0)) -> nir.NIRGraph:
    """A graph as another tool writes it: no snn_drtp metadata."""
    gen = np.random.default_rng(0)
    nodes = {
        "in": nir.Input(input_type={"input": np.array([4])}),
        "a": nir.Affine(weight=gen.normal(size=(3, 4)).astype(np.float32), bias=np.ones(3, np.float32)),
        "n": nir.LIF(
            tau=np.full(3, 0.01), r=np.full(3, r), v_leak=np.full(3, v_leak), v_threshold=np.array([*threshold, 1.0])
        ),
        "b": nir.Affine(weight=gen.normal(size=(2, 3)).astype(np.float32), bias=np.zeros(2, np.float32)),
        "m": nir.LIF(tau=np.full(2, 0.01), r=np.full(2, r), v_leak=np.zeros(2), v_threshold=np.ones(2)),
        "out": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("in", "a"), ("a", "n"), ("n", "b"), ("b", "m"), ("m", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def test_foreign_graph_reads_with_nir_conventions() -> None:
    graph = _foreign(r=2.0)
    params, neuron = from_nir(graph, dt=5e-4)
    assert neuron == LIFParams(dt=5e-4, tau_mem=0.01, threshold=1.0, reset="zero")
    assert [layer.geometry.weight_shape for layer in params.layers] == [(3, 4), (2, 3)]
    np.testing.assert_allclose(params.layers[0].weight.detach().numpy(), 2.0 * graph.nodes["a"].weight, rtol=1e-6)
    np.testing.assert_allclose(params.layers[0].bias.detach().numpy(), np.full(3, 2.0))
    assert math.isclose(float(params.layers[1].bias.detach().abs().sum()), 0.0)


def test_foreign_graphs_without_a_counterpart_are_refused() -> None:
    with pytest.raises(ValueError, match="v_leak"):
        from_nir(_foreign(v_leak=0.1))
    with pytest.raises(ValueError, match="v_threshold differs"):
        from_nir(_foreign(threshold=(1.0, 0.5)))
    conv = NetworkSpec(
        "c", (1, 6, 6), (LayerSpec("conv", channels=2, kernel=3), LayerSpec("dense", units=3, activation="sigmoid"))
    )
    with pytest.raises(ValueError, match="dense layers only"):
        to_nir(Params(conv), LIFParams())


def test_init_from_loads_a_nir_file_or_a_run_folder(tmp_path) -> None:
    from snn_drtp.runs.training import load_initial

    source = Params(SPEC, seed=9)
    write_nir(tmp_path / "net.nir", source, LIFParams())
    target = Params(SPEC, seed=0)
    load_initial(target, tmp_path / "net.nir")
    for a, b in zip(source.layers, target.layers, strict=True):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    with pytest.raises(FileNotFoundError, match="neither a run folder"):
        load_initial(target, tmp_path)
