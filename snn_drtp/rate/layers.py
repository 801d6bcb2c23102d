"""Rate-coded (ANN) layers that compute their own local updates, with no autograd graph.

Each layer maps its input y_{k-1} to z_k = W_k y_{k-1} + b_k and y_k = f_k(z_k) (a convolution,
then optional max-pooling, for :class:`RateConv`). Given a modulatory signal delta z_k it writes

    dJ/dW_k = delta z_k^T y_{k-1}        dJ/db_k = sum_n delta z_k

into ``.grad`` of the shared :class:`~snn_drtp.core.params.LayerParams` so that any torch optimizer
applies it, and it can send a signal to its input, delta y_{k-1} = delta z_k M, with M = W_k (BP)
or a fixed random matrix of W_k's shape (FA).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input, conv2d_weight

from snn_drtp.core.params import LayerParams


@dataclass(frozen=True)
class SoftLIF:
    """The firing rate of a LIF neuron (spikes per step) under a constant drive z, smoothed at
    threshold (Hunsberger & Eliasmith 2015):

        f(z) = 1 / (tau ln(1 + theta / rho(z - theta))),   rho(u) = gamma ln(1 + exp(u / gamma)),

    with tau = tau_mem / dt in steps and gamma = ``smoothing`` x theta. It is the rate curve the
    spiking engine's LIF neurons follow, used as a rate activation to compare spike and rate."""

    tau_steps: float
    threshold: float
    smoothing: float = 0.05

    def _parts(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gamma = self.smoothing * self.threshold
        u = gamma * F.softplus((z - self.threshold) / gamma) + 1e-12
        log_term = torch.log1p(self.threshold / u)
        return u, log_term, torch.sigmoid((z - self.threshold) / gamma)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        _, log_term, _ = self._parts(z)
        return 1.0 / (self.tau_steps * log_term)

    def derivative(self, z: torch.Tensor) -> torch.Tensor:
        """f'(z) = theta sigma((z - theta) / gamma) / (tau L^2 rho (rho + theta)), L = ln(1 + theta / rho)."""
        u, log_term, gate = self._parts(z)
        return self.threshold * gate / (self.tau_steps * log_term.square() * u * (u + self.threshold))


@dataclass(frozen=True)
class Activation:
    """f and f' of a layer: tanh, sigmoid, linear, or lif (the :class:`SoftLIF` rate curve)."""

    name: str
    soft_lif: SoftLIF | None = None

    def __post_init__(self) -> None:
        if (self.name == "lif") != (self.soft_lif is not None):
            raise ValueError(
                f"activation {self.name!r}: a SoftLIF rate curve goes with activation 'lif' and only with it"
            )

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if self.soft_lif is not None:
            return self.soft_lif(z)
        if self.name == "tanh":
            return torch.tanh(z)
        if self.name == "sigmoid":
            return torch.sigmoid(z)
        return z

    def derivative(self, cache: LayerCache) -> torch.Tensor:
        """f'(z), written with y = f(z) where it can be: tanh 1 - y^2, sigmoid y (1 - y), linear 1;
        lif from z."""
        y = cache.y
        if self.soft_lif is not None:
            return self.soft_lif.derivative(cache.z)
        if self.name == "tanh":
            return 1 - y * y
        if self.name == "sigmoid":
            return y * (1 - y)
        return torch.ones_like(y)


@dataclass
class LayerCache:
    """What a layer keeps from its forward pass until its update: its (dropped-out) input, the
    dropout scale mask, pre-activation z, activation y (before pooling) and pooling indices."""

    x: torch.Tensor
    keep: torch.Tensor | None
    in_shape: torch.Size
    z: torch.Tensor
    y: torch.Tensor
    pool_indices: torch.Tensor | None = None


def dropout(x: torch.Tensor, p: float, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Inverted dropout: x * m / (1 - p), m ~ Bernoulli(1 - p), from ``generator``."""
    if p <= 0.0 or generator is None:
        return x, None
    keep = (torch.rand(x.shape, generator=generator, device=x.device) >= p).to(x.dtype).div_(1.0 - p)
    return x * keep, keep


class RateDense:
    """Fully connected layer; dropout (rate ``p``) acts on its input during training."""

    def __init__(self, params: LayerParams, activation: Activation):
        self.params = params
        self.activation = activation

    def forward(
        self, x: torch.Tensor, p: float = 0.0, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, LayerCache]:
        in_shape = x.shape
        x = x.reshape(x.shape[0], -1)
        x, keep = dropout(x, p, generator)
        z = torch.addmm(self.params.bias, x, self.params.weight.t())
        y = self.activation(z)
        return y, LayerCache(x, keep, in_shape, z, y)

    def signal_at_activation(self, cache: LayerCache, delta_out: torch.Tensor) -> torch.Tensor:
        """delta y_k from the signal at the layer's output (identity: no pooling)."""
        return delta_out.reshape(cache.y.shape)

    def modulate(self, cache: LayerCache, delta_y: torch.Tensor) -> torch.Tensor:
        """delta z_k = delta y_k * f'(z_k)."""
        return delta_y.reshape(cache.y.shape) * self.activation.derivative(cache)

    def write_grad(self, cache: LayerCache, delta_z: torch.Tensor) -> None:
        """.grad of W_k <- delta z_k^T y_{k-1}; of b_k <- sum over the batch of delta z_k
        (overwrites, reusing the gradient buffers)."""
        weight, bias = self.params.weight, self.params.bias
        if weight.grad is None or bias.grad is None:
            weight.grad = torch.empty_like(weight)
            bias.grad = torch.empty_like(bias)
        torch.mm(delta_z.t(), cache.x, out=weight.grad)
        torch.sum(delta_z, 0, out=bias.grad)

    def input_signal(self, cache: LayerCache, delta_z: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        """delta y_{k-1} = (delta z_k M) * dropout mask, shaped like the layer's input."""
        delta = delta_z @ matrix
        if cache.keep is not None:
            delta = delta * cache.keep
        return delta.reshape(cache.in_shape)


class RateConv:
    """Convolution, activation, then max-pooling; the third factor acts before pooling."""

    def __init__(self, params: LayerParams, activation: Activation):
        self.params = params
        self.activation = activation
        self.spec = params.spec

    def forward(
        self, x: torch.Tensor, p: float = 0.0, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, LayerCache]:
        z = F.conv2d(x, self.params.weight, self.params.bias, self.spec.stride, self.spec.padding)
        y = self.activation(z)
        out, idx = y, None
        if self.spec.pool > 1:
            out, idx = F.max_pool2d(y, self.spec.pool, return_indices=True)
        return out, LayerCache(x, None, x.shape, z, y, idx)

    def signal_at_activation(self, cache: LayerCache, delta_out: torch.Tensor) -> torch.Tensor:
        """delta y_k before pooling: each pooled signal goes back to its window's maximum."""
        if cache.pool_indices is None:
            return delta_out.reshape(cache.y.shape)
        pooled = delta_out.reshape(cache.y.shape[0], *self.params.geometry.out_shape)
        return F.max_unpool2d(
            pooled, cache.pool_indices, (self.spec.pool, self.spec.pool), output_size=cache.y.shape[-2:]
        )

    def modulate(self, cache: LayerCache, delta_y: torch.Tensor) -> torch.Tensor:
        return delta_y.reshape(cache.y.shape) * self.activation.derivative(cache)

    def write_grad(self, cache: LayerCache, delta_z: torch.Tensor) -> None:
        """Correlation of delta z_k with the input: the convolutional form of delta z^T y_{k-1}."""
        self.params.weight.grad = conv2d_weight(
            cache.x, self.params.weight.shape, delta_z, self.spec.stride, self.spec.padding
        )
        self.params.bias.grad = delta_z.sum((0, 2, 3))

    def input_signal(self, cache: LayerCache, delta_z: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        return conv2d_input(cache.in_shape, matrix, delta_z, self.spec.stride, self.spec.padding)


RATE_LAYERS: dict[str, type[RateDense] | type[RateConv]] = {"dense": RateDense, "conv": RateConv}
RateLayer = RateDense | RateConv
