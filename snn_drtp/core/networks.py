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
the rate engine); the output layer is sigmoid (binary cross-entropy) or linear (mean squared error).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NETWORKS_DIR = Path(__file__).resolve().parents[2] / "networks"
ACTIVATIONS = ("tanh", "sigmoid", "linear", "lif")
OUTPUT_ACTIVATIONS = ("sigmoid", "linear")


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


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerSpec, ...]
    lr_key: str = "fc1"
    neuron: dict[str, Any] = field(default_factory=dict)

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].units

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "lr_key": self.lr_key,
            "layers": [vars(layer) for layer in self.layers],
            "neuron": dict(self.neuron),
        }


def parse_spec(data: dict[str, Any], origin: str = "<dict>") -> NetworkSpec:
    """Validate a spec dictionary; errors name the offending layer and field."""
    for key in ("name", "input_shape", "layers"):
        if key not in data:
            raise ValueError(f"{origin}: network spec lacks the required key {key!r}")
    layers = []
    allowed = set(LayerSpec.__dataclass_fields__)
    for i, raw in enumerate(data["layers"]):
        unknown = set(raw) - allowed
        if unknown:
            raise ValueError(f"{origin}: layer {i} has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        layer = LayerSpec(**raw)
        if layer.kind not in ("dense", "conv"):
            raise ValueError(f"{origin}: layer {i} kind {layer.kind!r} is not 'dense' or 'conv'")
        if layer.activation not in ACTIVATIONS:
            raise ValueError(f"{origin}: layer {i} activation {layer.activation!r} not in {ACTIVATIONS}")
        if layer.kind == "dense" and layer.units <= 0:
            raise ValueError(f"{origin}: dense layer {i} needs units > 0")
        if layer.kind == "conv" and layer.channels <= 0:
            raise ValueError(f"{origin}: conv layer {i} needs channels > 0")
        layers.append(layer)
    if not layers or layers[-1].kind != "dense":
        raise ValueError(f"{origin}: the last layer must be a dense output layer")
    if layers[-1].activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"{origin}: output layer activation {layers[-1].activation!r} has no loss here; use 'sigmoid' "
            "(binary cross-entropy) or 'linear' (mean squared error)"
        )
    return NetworkSpec(
        name=str(data["name"]),
        input_shape=tuple(int(s) for s in data["input_shape"]),
        layers=tuple(layers),
        lr_key=str(data.get("lr_key", "fc1")),
        neuron=dict(data.get("neuron", {})),
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
