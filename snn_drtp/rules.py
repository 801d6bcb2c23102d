"""Learning rules as third-factor providers, shared by the rate and spiking engines.

Every rule updates a synapse from unit j of layer k-1 to unit i of layer k as

    dW_k[i, j] = -eta * m_k[i] * post_k[i] * pre_k[j]

with ``m_k`` the rule's estimate of the loss gradient delta y_k at the layer's output (the
*third factor*), ``post_k`` the local derivative (f'(z_k) in the rate network, a surrogate
psi(v_k(t)) in the spiking one) and ``pre_k`` the layer's input. ``delta z_k = m_k * post_k`` is
the *modulatory signal*. The third factors of hidden layer k (Frenkel et al. 2021, Fig. 1):

=========  ==============================  ========================================
rule       m_k = delta y_k                  needs
=========  ==============================  ========================================
bp         W_{k+1}^T delta z_{k+1}          weight transport, update locking
fa         B_{k+1}^T delta z_{k+1}          update locking (B fixed, W's shape)
dfa        B_k^T (y_K - y*)                 the output error: update locking
sdfa       B_k^T sign(y_K - y*)             the output
drtp       B_k^T y*                         the label only: no feedback, no locking
shallow    none (hidden layers frozen)      nothing
=========  ==============================  ========================================

Conventions (those of the authors' public code, which reproduce the paper with Adam): the
hidden-layer estimates are per example and summed over the minibatch; the output layer uses the
exact gradient of the BCE (sigmoid) or MSE (linear) loss averaged over batch x outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

RULES = ("bp", "fa", "dfa", "sdfa", "drtp", "shallow")


@dataclass(frozen=True)
class Rule:
    """A learning rule: which third factor its hidden layers receive."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in RULES:
            raise ValueError(f"unknown rule {self.name!r}; choose one of {', '.join(RULES)}")

    @property
    def trains_hidden(self) -> bool:
        return self.name != "shallow"

    @property
    def propagates(self) -> bool:
        """Whether the third factor travels backwards layer by layer (BP, FA)."""
        return self.name in ("bp", "fa")

    @property
    def update_locked(self) -> bool:
        """Whether hidden layers must wait for the output before they can update."""
        return self.name in ("bp", "fa", "dfa", "sdfa")

    def direct_third_factor(
        self, B_k: torch.Tensor, y_star: torch.Tensor, y_out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """m_k for the direct rules, [N, N_k] from B_k [C, N_k], targets y* and outputs y_K [N, C].

        drtp: y* B_k (row c* of B_k, a label-selected vector); dfa: (y_K - y*) B_k;
        sdfa: sign(y_K - y*) B_k.
        """
        if self.name == "drtp":
            return y_star @ B_k
        if y_out is None:
            raise ValueError(f"rule {self.name} needs the network output y_K")
        if self.name == "dfa":
            return (y_out - y_star) @ B_k
        if self.name == "sdfa":
            return torch.sign(y_out - y_star) @ B_k
        raise ValueError(f"rule {self.name} has no direct third factor")


def kaiming_uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform in +-sqrt(6 / fan_in) (He/Kaiming uniform, gain sqrt(2))."""
    bound = math.sqrt(6.0 / fan_in)
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


def feedback_matrices(layer_sizes: list[int], n_classes: int, seed: int) -> list[torch.Tensor]:
    """The fixed random matrices B_k [C, N_k] of the direct rules, from their own seeded generator,
    uniform in +-sqrt(6 / N_k); never trained."""
    gen = torch.Generator().manual_seed(seed)
    return [kaiming_uniform((n_classes, n), n, gen) for n in layer_sizes]


def angle_degrees(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle between two signals seen as flat vectors: arccos(<a, b> / (|a| |b|)), in degrees;
    NaN when either is zero."""
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return float("nan")
    cos = torch.clamp(torch.dot(a, b) / (na * nb), -1.0, 1.0)
    return math.degrees(math.acos(float(cos)))
