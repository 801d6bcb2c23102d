"""One parameter set for every engine: forward weights W_k, biases b_k, DRTP/DFA's fixed B_k and
FA's fixed F_k, built from (network spec, seed).

Initialisation follows the authors' public code: W_k and b_k uniform in +-1/sqrt(fan_in)
(PyTorch's default for Linear and Conv2d; the paper's text says He uniform) from generator
``seed``, or zeros; B_k [C, N_k] uniform in +-sqrt(6 / N_k) from generator ``seed + 1``, with N_k
the number of units that receive a third factor (a convolution's output *before* pooling); F_k,
of W_k's shape, He uniform from generator ``seed + 2``. B_k and F_k are never trained. State-dict
keys (``layers.{i}.weight``, ``layers.{i}.bias``, ``B_k``, ``fa_k``) are those of the run folders
written before this module existed, so their checkpoints load unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast, overload

import torch
from torch import nn

from snn_drtp.core.networks import LayerSpec, NetworkSpec


@dataclass(frozen=True)
class LayerGeometry:
    """Shapes of one layer: its input, its activation z_k / y_k before pooling, its output after
    pooling (what the next layer sees), and its weight."""

    in_shape: tuple[int, ...]
    act_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]

    @property
    def fan_in(self) -> int:
        return math.prod(self.weight_shape[1:])

    @property
    def n_signal(self) -> int:
        """N_k: the units that receive a third factor (before pooling)."""
        return math.prod(self.act_shape)


def layer_geometry(in_shape: tuple[int, ...], spec: LayerSpec) -> LayerGeometry:
    """Dense: [units, prod(in_shape)] weights. Conv: [channels, C_in, kernel, kernel] weights,
    output (H + 2 padding - kernel) // stride + 1 per side, then max-pooled by ``pool``."""
    if spec.kind == "conv":
        c_in, h, w = in_shape
        ho = (h + 2 * spec.padding - spec.kernel) // spec.stride + 1
        wo = (w + 2 * spec.padding - spec.kernel) // spec.stride + 1
        act = (spec.channels, ho, wo)
        out = (spec.channels, ho // spec.pool, wo // spec.pool)
        return LayerGeometry(in_shape, act, out, (spec.channels, c_in, spec.kernel, spec.kernel))
    return LayerGeometry(in_shape, (spec.units,), (spec.units,), (spec.units, math.prod(in_shape)))


def network_geometry(spec: NetworkSpec) -> list[LayerGeometry]:
    shapes, shape = [], tuple(spec.input_shape)
    for layer in spec.layers:
        geometry = layer_geometry(shape, layer)
        shapes.append(geometry)
        shape = geometry.out_shape
    return shapes


def kaiming_uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform in +-sqrt(6 / fan_in) (He/Kaiming uniform, gain sqrt(2))."""
    bound = math.sqrt(6.0 / fan_in)
    return (torch.rand(shape, generator=generator, device=generator.device) * 2 - 1) * bound


def feedback_matrices(layer_sizes: list[int], n_classes: int, seed: int) -> list[torch.Tensor]:
    """The fixed random B_k [C, N_k] of the direct rules, uniform in +-sqrt(6 / N_k), drawn in layer
    order from generator ``seed``."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return [kaiming_uniform((n_classes, n), n, gen) for n in layer_sizes]


def _default_init(shape: tuple[int, ...], fan_in: int, generator: torch.Generator, zero: bool) -> torch.Tensor:
    """PyTorch's default Linear/Conv init, uniform in +-1/sqrt(fan_in), or zeros."""
    if zero:
        return torch.zeros(shape, device=generator.device)
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator, device=generator.device) * 2 - 1) * bound


class LayerParams(nn.Module):
    """W_k and b_k of one layer, with its spec and shapes, and for a recurrent layer R_k [N_k, N_k]
    (``recurrent``), uniform in +-1/sqrt(N_k) drawn after b_k, its diagonal 0 without
    self-connections. A frozen layer's (``trainable = false``) tensors do not require gradients."""

    def __init__(self, spec: LayerSpec, geometry: LayerGeometry, generator: torch.Generator, zero_init: bool):
        super().__init__()
        self.spec = spec
        self.geometry = geometry
        weight = _default_init(geometry.weight_shape, geometry.fan_in, generator, zero_init)
        bias = _default_init((geometry.weight_shape[0],), geometry.fan_in, generator, zero_init)
        self.weight = nn.Parameter(weight, requires_grad=spec.trainable)
        self.bias = nn.Parameter(bias, requires_grad=spec.trainable)
        self.recurrent: nn.Parameter | None = None
        if spec.kind == "recurrent":
            units = geometry.weight_shape[0]
            recurrent = _default_init((units, units), units, generator, zero_init)
            if not spec.self_connections:
                recurrent.fill_diagonal_(0.0)
            self.recurrent = nn.Parameter(recurrent, requires_grad=spec.trainable)

    @property
    def trainable(self) -> bool:
        return self.spec.trainable

    def tensors(self) -> list[nn.Parameter]:
        """W_k, b_k, and R_k for a recurrent layer."""
        return [self.weight, self.bias] + ([self.recurrent] if self.recurrent is not None else [])


class LayerList(nn.ModuleList):
    """The layers' :class:`LayerParams` in order: an ``nn.ModuleList`` (state-dict keys
    ``layers.{i}.weight``) whose items are typed as what they are."""

    @overload
    def __getitem__(self, idx: slice) -> LayerList: ...

    @overload
    def __getitem__(self, idx: int) -> LayerParams: ...

    def __getitem__(self, idx: int | slice) -> LayerParams | LayerList:
        return super().__getitem__(idx)  # type: ignore[return-value]

    def __iter__(self) -> Iterator[LayerParams]:
        return cast(Iterator[LayerParams], super().__iter__())


class Params(nn.Module):
    """The parameter set of a network: ``layers[k-1]`` holds W_k, b_k; ``feedback(k)`` is B_k and
    ``fa(k)`` is F_k. Every engine reads and updates this one object.

    The tensors are drawn on the CPU (so a seed gives the same network on every device), then moved
    to ``device`` (default: the CPU); ``params.to(device)`` moves them later."""

    def __init__(
        self, spec: NetworkSpec, seed: int = 0, zero_init: bool = False, device: torch.device | str | None = None
    ):
        super().__init__()
        self.spec = spec
        self.seed = seed
        gen = torch.Generator(device="cpu").manual_seed(seed)
        self.layers = LayerList(
            LayerParams(layer, geometry, gen, zero_init)
            for layer, geometry in zip(spec.layers, network_geometry(spec), strict=True)
        )
        sizes = [layer.geometry.n_signal for layer in self.hidden]
        for k, B in enumerate(feedback_matrices(sizes, spec.n_outputs, seed + 1), start=1):
            self.register_buffer(f"B_{k}", B)
        fa_gen = torch.Generator(device="cpu").manual_seed(seed + 2)
        for k, layer in enumerate(list(self.layers)[1:], start=2):
            shape = layer.geometry.weight_shape
            self.register_buffer(f"fa_{k}", kaiming_uniform(shape, layer.geometry.fan_in, fa_gen))
        if device is not None:
            self.to(device)

    @property
    def hidden(self) -> list[LayerParams]:
        return list(self.layers)[:-1]

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def layer(self, k: int) -> LayerParams:
        """W_k, b_k of layer k (1-based)."""
        return self.layers[k - 1]

    def feedback(self, k: int) -> torch.Tensor:
        """B_k [C, N_k] of hidden layer k (1-based)."""
        return getattr(self, f"B_{k}")

    def fa(self, k: int) -> torch.Tensor:
        """F_k, FA's fixed random matrix of W_k's shape (k >= 2)."""
        return getattr(self, f"fa_{k}")

    def trainable_tensors(self) -> list[nn.Parameter]:
        """W_k and b_k of every trainable layer, in layer order (what the optimizer steps)."""
        return [t for layer in self.layers if layer.trainable for t in layer.tensors()]

    @property
    def device(self) -> torch.device:
        """Where the parameters live (every engine allocates its state there)."""
        return self.layers[0].weight.device
