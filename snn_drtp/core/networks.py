"""Network descriptions (``networks/*.toml``): one spec builds any engine.

A spec lists the layers after the input; the last one is the output layer::

    name = "fc1-500"
    input_shape = [1, 28, 28]
    lr_key = "fc1"                 # which column of the paper's Table 3 gives default rates
    [[layers]]
    kind = "dense"; units = 500; activation = "tanh"
    [[layers]]
    kind = "dense"; units = 10; activation = "sigmoid"

Convolutional layers: ``kind = "conv"``, ``channels``, ``kernel``, ``stride``, ``padding``,
``pool`` (max-pool size, 1 = none), ``trainable`` (false = fixed random kernels). Hidden
activations: tanh, sigmoid, linear, or lif (the LIF rate curve of the spec's ``[neuron]`` table in
the rate engine); the output layer is sigmoid (binary cross-entropy), or linear or tanh (mean
squared error; tanh as in the paper's regression network).

Temporal networks (the temporal engines, ``snn_drtp.temporal``) end in a leaky-integrator
``kind = "readout"`` layer, whose time constant and loss window are the spec's ``[readout]`` table
(``tau_out``, ``loss_steps``); their hidden layers are ``dense`` (feed-forward) or ``recurrent``
(with recurrent weights R_k, no self-connections unless ``self_connections = true``), and either
adapts its threshold when ``adapt`` (beta) and ``tau_adapt`` (s) are set (ALIF)::

    [[layers]]
    kind = "recurrent"; units = 128; tau_adapt = 0.2; adapt = 0.5
    [[layers]]
    kind = "readout"; units = 20
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snn_drtp.core.checks import accepts, check_field_types, closest, type_error, unknown_keys

NETWORKS_DIR = Path(__file__).resolve().parents[2] / "networks"
ACTIVATIONS = ("tanh", "sigmoid", "linear", "lif")
OUTPUT_ACTIVATIONS = ("sigmoid", "linear", "tanh")
SPEC_KEYS = ("name", "input_shape", "layers", "lr_key", "neuron", "readout")
KINDS = ("dense", "conv", "recurrent", "readout")
"""The top-level keys of a network spec."""
LAYER_EXAMPLES = {
    "units": 100,
    "channels": 16,
    "kernel": 5,
    "stride": 1,
    "padding": 0,
    "pool": 2,
    "tau_adapt": 0.2,
    "adapt": 0.5,
}
"""Example values that error messages suggest for a layer's fields (their defaults are not examples)."""


@dataclass(frozen=True)
class LayerSpec:
    kind: str
    units: int = 0
    channels: int = 0
    kernel: int = 3
    stride: int = 1
    padding: int = 0
    pool: int = 1
    activation: str = "tanh"
    trainable: bool = True
    tau_adapt: float = 0.0
    adapt: float = 0.0
    self_connections: bool = False


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerSpec, ...]
    lr_key: str = "fc1"
    neuron: dict[str, Any] = field(default_factory=dict)
    readout: dict[str, Any] = field(default_factory=dict)

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].units

    @property
    def temporal(self) -> bool:
        """Whether the network ends in a leaky-integrator readout (the temporal engines simulate it)."""
        return self.layers[-1].kind == "readout"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "lr_key": self.lr_key,
            "layers": [vars(layer) for layer in self.layers],
            "neuron": dict(self.neuron),
            "readout": dict(self.readout),
        }


def parse_spec(data: dict[str, Any], origin: str = "<dict>") -> NetworkSpec:
    """Validate a spec dictionary; errors name the file, the offending layer, field and value, and
    say how to write it: unknown keys, wrong types, missing or unknown layer kinds, layers of 0
    units and a ``[neuron]`` table the engines would refuse are found here, at load time."""
    where = f"{origin}: "
    for key in ("name", "input_shape", "layers"):
        if key not in data:
            raise ValueError(f"{where}network spec lacks the required key {key!r}")
    unknown_keys(data, SPEC_KEYS, where, "top-level keys")
    if not isinstance(data["name"], str):
        raise ValueError(f'{where}name = {data["name"]!r} is not a string; write e.g. name = "my-network"')
    shape = data["input_shape"]
    if not (accepts(shape, list[int]) and shape and all(s >= 1 for s in shape)):
        raise ValueError(
            f"{where}input_shape = {shape!r} is not a list of positive integers; write the shape of one "
            "example, e.g. input_shape = [1, 28, 28]"
        )
    for key, kind in (("lr_key", str), ("neuron", dict), ("readout", dict)):
        problem = type_error(key, data[key], kind, "fc1" if kind is str else None) if key in data else None
        if problem:
            raise ValueError(where + problem)
    if not isinstance(data["layers"], list) or not all(isinstance(raw, dict) for raw in data["layers"]):
        raise ValueError(f"{where}layers must be an array of tables: write each layer as a [[layers]] section")
    layers = []
    allowed = set(LayerSpec.__dataclass_fields__)
    for i, raw in enumerate(data["layers"]):
        at = f"{where}layer {i}: "
        unknown = set(raw) - allowed
        if unknown:
            raise ValueError(f"{origin}: layer {i} has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "kind" not in raw:
            raise ValueError(f'{at}no kind; write kind = "dense" or kind = "conv" (or "recurrent", "readout")')
        check_field_types(raw, LayerSpec, at, LAYER_EXAMPLES)
        layer = LayerSpec(**raw)
        if layer.kind not in KINDS:
            hint = closest(layer.kind, KINDS)
            raise ValueError(f"{origin}: layer {i} kind {layer.kind!r} is not one of {', '.join(KINDS)}{hint}")
        if layer.kind == "readout" and i != len(data["layers"]) - 1:
            raise ValueError(f"{origin}: layer {i} is a readout, which only the last (output) layer can be")
        if layer.tau_adapt < 0 or (layer.adapt != 0 and layer.tau_adapt <= 0):
            raise ValueError(
                f"{origin}: layer {i}: an adaptive threshold needs tau_adapt > 0 s, got tau_adapt = {layer.tau_adapt} "
                f"with adapt = {layer.adapt}; e.g. tau_adapt = 0.2, adapt = 0.5 (or adapt = 0 for LIF)"
            )
        if layer.activation not in ACTIVATIONS:
            raise ValueError(
                f"{origin}: layer {i} activation {layer.activation!r} not in {ACTIVATIONS}"
                + closest(layer.activation, ACTIVATIONS)
            )
        if layer.kind != "conv" and layer.units <= 0:
            raise ValueError(
                f"{origin}: {layer.kind} layer {i} needs units > 0, got units = {layer.units}; a layer needs at least "
                "one unit, e.g. units = 100"
            )
        if layer.kind == "conv" and layer.channels <= 0:
            raise ValueError(
                f"{origin}: conv layer {i} needs channels > 0, got channels = {layer.channels}; e.g. channels = 16"
            )
        if layer.kind == "conv":
            for name, least in (("kernel", 1), ("stride", 1), ("padding", 0), ("pool", 1)):
                if getattr(layer, name) < least:
                    raise ValueError(
                        f"{origin}: conv layer {i} needs {name} >= {least}, got {name} = {getattr(layer, name)}; "
                        f"e.g. {name} = {LAYER_EXAMPLES[name]}"
                    )
        layers.append(layer)
    if not layers or layers[-1].kind not in ("dense", "readout"):
        raise ValueError(f"{origin}: the last layer must be a dense output layer (or a readout)")
    if layers[-1].kind == "dense" and layers[-1].activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"{origin}: output layer activation {layers[-1].activation!r} has no loss here; use 'sigmoid' "
            "(binary cross-entropy), or 'linear' or 'tanh' (mean squared error)"
        )
    neuron = dict(data.get("neuron", {}))
    if not all(isinstance(key, str) for key in neuron):
        raise ValueError(f"{origin}: [neuron] holds a key that is not a name")
    return NetworkSpec(
        name=data["name"],
        input_shape=tuple(shape),
        layers=tuple(layers),
        lr_key=str(data.get("lr_key", "fc1")),
        neuron=neuron,
        readout=dict(data.get("readout", {})),
    )


def available_networks() -> list[str]:
    return sorted(p.stem for p in NETWORKS_DIR.glob("*.toml"))


def load_spec(name_or_path: str | Path) -> NetworkSpec:
    """Load ``networks/NAME.toml`` or a spec file at a path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = NETWORKS_DIR / f"{name_or_path}.toml"
    if not path.exists():
        raise FileNotFoundError(
            f"no network spec {name_or_path!r}: looked for {path}; "
            f"known networks: {', '.join(available_networks()) or 'none'}"
        )
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    return parse_spec(data, str(path))
