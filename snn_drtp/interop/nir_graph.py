"""Networks out to NIR (the neuromorphic intermediate representation, Pedersen et al. 2024) and back.

A dense network of the spiking engines becomes the chain Input -> Affine -> LIF -> Affine -> LIF
... -> Output, one Affine (W_k, b_k) and one neuron node per layer. NIR's neurons are continuous-time:

    LIF:      tau dv/dt = (v_leak - v) + r I,                       spike when v > v_threshold, then v = v_reset
    CubaLIF:  tau_syn dI/dt = -I + w_in S,  tau_mem dv/dt = (v_leak - v) + r I

Mapping of this project's LIF (``snn_drtp.spiking.neuron``): tau = tau_mem (CubaLIF: also tau_syn),
r = 1, v_leak = 0, v_threshold = theta, v_reset = 0, w_in = 1. What NIR does not express is kept in
the graph's metadata under ``"snn_drtp"`` (a JSON string), so a graph written here reads back
exactly (same spec, W_k, b_k, seed hence B_k, neuron parameters):

* the time step dt and the discretisation: the drive held constant over a step and integrated
  exactly, v[t] = alpha v[t-1] + (1 - alpha) I[t], alpha = exp(-dt / tau_mem) (simulators that
  take NIR's equation with forward Euler at their own dt give other numbers);
* the spike condition v >= theta (NIR: v > v_threshold; they differ only when v equals theta);
* the reset: ``subtract`` (v -= theta) has no NIR field; NIR's reset is to v_reset = 0 (our
  ``zero``), so a simulator that ignores the metadata resets to zero;
* the refractory period (steps; NIR has none).

A graph without this metadata (from another tool) is read with the given dt, reset ``zero``,
no refractory period; a resistance r != 1 is folded into W_k and b_k, and v_leak != 0,
per-neuron thresholds or time constants that differ within a layer are errors.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch

from snn_drtp.core.atomic import atomic_write_bytes
from snn_drtp.core.networks import LayerSpec, NetworkSpec, parse_spec
from snn_drtp.core.params import Params
from snn_drtp.spiking.neuron import LIFParams

METADATA_KEY = "snn_drtp"
FORMAT = 1


def to_nir(params: Params, neuron: LIFParams) -> nir.NIRGraph:
    """The NIR graph of a dense network's parameters and neurons (see the module docstring)."""
    kinds = {layer.spec.kind for layer in params.layers}
    if kinds != {"dense"}:
        raise ValueError(
            f"network {params.spec.name}: NIR export covers dense layers only (max-pooled spiking convolutions "
            "have no NIR node), this network has " + ", ".join(sorted(kinds - {"dense"})) + " layers"
        )
    n_in = params.layers[0].geometry.weight_shape[1]
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    edges, previous = [], "input"
    for k, layer in enumerate(params.layers, start=1):
        units = layer.geometry.weight_shape[0]
        weight = layer.weight.detach().cpu().numpy().copy()
        bias = layer.bias.detach().cpu().numpy().copy()
        nodes[f"fc{k}"] = nir.Affine(weight=weight, bias=bias)
        nodes[f"lif{k}"] = _neuron_node(neuron, units)
        edges += [(previous, f"fc{k}"), (f"fc{k}", f"lif{k}")]
        previous = f"lif{k}"
    nodes["output"] = nir.Output(output_type={"output": np.array([params.spec.n_outputs])})
    edges.append((previous, "output"))
    metadata = {
        "format": FORMAT,
        "dt": neuron.dt,
        "tau_mem": neuron.tau_mem,
        "tau_syn": neuron.tau_syn,
        "threshold": neuron.threshold,
        "reset": neuron.reset,
        "refractory": neuron.refractory,
        "spike_condition": "v >= v_threshold",
        "integration": "v[t] = exp(-dt/tau) v[t-1] + (1 - exp(-dt/tau)) I[t], I held constant over each step",
        "seed": params.seed,
        "spec": params.spec.to_dict(),
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={METADATA_KEY: json.dumps(metadata)})


def _neuron_node(neuron: LIFParams, units: int) -> nir.NIRNode:
    def full(value: float) -> np.ndarray:
        return np.full(units, value, dtype=np.float64)

    if neuron.tau_syn > 0:
        return nir.CubaLIF(
            tau_syn=full(neuron.tau_syn),
            tau_mem=full(neuron.tau_mem),
            r=full(1.0),
            v_leak=full(0.0),
            v_threshold=full(neuron.threshold),
            v_reset=full(0.0),
            w_in=full(1.0),
        )
    return nir.LIF(tau=full(neuron.tau_mem), r=full(1.0), v_leak=full(0.0), v_threshold=full(neuron.threshold))


def from_nir(graph: nir.NIRGraph, dt: float = 1e-3) -> tuple[Params, LIFParams]:
    """Parameters and neurons of a NIR graph: exact for graphs written by :func:`to_nir`; ``dt``
    (seconds) is used only for graphs without this project's metadata."""
    chain = _chain(graph)
    meta = _metadata(graph)
    affines = [node for node in chain if isinstance(node, nir.Affine | nir.Linear)]
    neurons = [node for node in chain if isinstance(node, nir.LIF | nir.CubaLIF)]
    if meta is not None:
        spec = parse_spec(meta["spec"], "NIR metadata")
        neuron = LIFParams(
            dt=meta["dt"],
            tau_mem=meta["tau_mem"],
            tau_syn=meta["tau_syn"],
            threshold=meta["threshold"],
            reset=meta["reset"],
            refractory=meta["refractory"],
        )
        seed = int(meta["seed"])
        scales = [1.0] * len(affines)
    else:
        neuron, scales = _foreign_neuron(neurons, dt)
        units = [int(a.weight.shape[0]) for a in affines]
        layers = [LayerSpec("dense", units=u, activation="tanh") for u in units[:-1]]
        layers.append(LayerSpec("dense", units=units[-1], activation="sigmoid"))
        spec = NetworkSpec("nir-import", (int(affines[0].weight.shape[1]),), tuple(layers), neuron=vars(neuron).copy())
        seed = 0
    params = Params(spec, seed=seed)
    if len(affines) != params.n_layers:
        raise ValueError(f"NIR graph has {len(affines)} weight layers, its network spec {params.n_layers}")
    with torch.no_grad():
        for layer, node, scale in zip(params.layers, affines, scales, strict=True):
            weight = np.asarray(node.weight) * scale
            if weight.shape != tuple(layer.weight.shape):
                raise ValueError(f"NIR weight of shape {weight.shape} does not fit layer {tuple(layer.weight.shape)}")
            layer.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
            bias = np.asarray(node.bias) * scale if isinstance(node, nir.Affine) else np.zeros(weight.shape[0])
            layer.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    return params, neuron


def _chain(graph: nir.NIRGraph) -> list[nir.NIRNode]:
    """The nodes from Input to Output along the edges: one path, no branches or recurrence."""
    successors: dict[str, list[str]] = {}
    for a, b in graph.edges:
        successors.setdefault(a, []).append(b)
    starts = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(starts) != 1:
        raise ValueError(f"a NIR graph to import needs one Input node, this one has {len(starts)}")
    chain, name, seen = [], starts[0], set()
    while True:
        node = graph.nodes[name]
        chain.append(node)
        seen.add(name)
        if isinstance(node, nir.Output):
            return chain
        nxt = successors.get(name, [])
        if len(nxt) != 1 or nxt[0] in seen:
            raise ValueError(
                f"NIR node {name!r} has successors {nxt}: only feed-forward chains Input -> (Affine -> LIF)* -> "
                "Output are imported"
            )
        if not isinstance(node, nir.Input | nir.Affine | nir.Linear | nir.LIF | nir.CubaLIF | nir.Flatten):
            raise ValueError(f"NIR node {name!r} is a {type(node).__name__}; imported are Affine, Linear, LIF, CubaLIF")
        name = nxt[0]


def _metadata(graph: nir.NIRGraph) -> dict[str, Any] | None:
    raw = (graph.metadata or {}).get(METADATA_KEY) if isinstance(graph.metadata, dict) else None
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode()
    return json.loads(str(raw))


def _uniform(values: Any, what: str) -> float:
    array = np.unique(np.asarray(values, dtype=np.float64))
    if array.size != 1:
        raise ValueError(f"NIR {what} differs between neurons of a layer ({array[:4]} ...); one value per network here")
    return float(array[0])


def _foreign_neuron(neurons: list[nir.NIRNode], dt: float) -> tuple[LIFParams, list[float]]:
    """LIFParams shared by all neuron nodes of a foreign graph, and r per layer (folded into W, b)."""
    if not neurons:
        raise ValueError("the NIR graph has no LIF or CubaLIF node")
    taus, syns, thresholds, scales = set(), set(), set(), []
    for node in neurons:
        if not np.allclose(node.v_leak, 0.0):
            raise ValueError("NIR neurons with v_leak != 0 have no counterpart here (the resting potential is 0)")
        if not np.allclose(node.v_reset, 0.0):
            raise ValueError("NIR neurons with v_reset != 0 have no counterpart here (reset to 0 or by subtraction)")
        if isinstance(node, nir.CubaLIF):
            taus.add(_uniform(node.tau_mem, "tau_mem"))
            syns.add(_uniform(node.tau_syn, "tau_syn"))
            scales.append(_uniform(np.asarray(node.r) * np.asarray(node.w_in), "r * w_in"))
        else:
            taus.add(_uniform(node.tau, "tau"))
            syns.add(0.0)
            scales.append(_uniform(node.r, "r"))
        thresholds.add(_uniform(node.v_threshold, "v_threshold"))
    if len(taus) > 1 or len(syns) > 1 or len(thresholds) > 1:
        raise ValueError(
            f"NIR layers differ in tau {sorted(taus)}, tau_syn {sorted(syns)} or threshold {sorted(thresholds)}; "
            "the engines here use one neuron parameter set per network"
        )
    neuron = LIFParams(dt=dt, tau_mem=taus.pop(), tau_syn=syns.pop(), threshold=thresholds.pop(), reset="zero")
    return neuron, scales


def write_nir(path: str | Path, params: Params, neuron: LIFParams) -> Path:
    """:func:`to_nir` written to an HDF5 ``.nir`` file (atomically); missing parent folders are
    created, a ``path`` that is a folder (or lies under a file) is refused before anything is written."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the .nir file to write, e.g. {path / (params.spec.name + '.nir')}")
    blocker = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
    if blocker is not None:
        raise ValueError(
            f"cannot write {path}: {blocker} is a file, not a folder; choose another path for the .nir file"
        )
    buffer = io.BytesIO()
    nir.write(buffer, to_nir(params, neuron))
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def read_nir(path: str | Path, dt: float = 1e-3) -> tuple[Params, LIFParams]:
    """:func:`from_nir` of a ``.nir`` file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no NIR file {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a NIR file; give a .nir file (snn-drtp nir export RUN FILE.nir)")
    try:
        graph = nir.read(path)
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        kind = "not an HDF5 file" if isinstance(exc, OSError) else "an HDF5 file without a NIR graph"
        raise ValueError(
            f"{path} is not a NIR file ({kind}: {type(exc).__name__}: {reason}); give a .nir file written by "
            "nir.write, e.g. by snn-drtp nir export RUN FILE.nir"
        ) from None
    return from_nir(graph, dt)
