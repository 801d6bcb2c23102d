"""The readout of a temporal network: leaky integrators whose membrane over time is the output.

    y_c(t) = kappa y_c(t-1) + sum_j W_cj z_j(t) + b_c,     kappa = exp(-dt / tau_out)

(Bellec et al. 2020's readout: the input is not scaled by 1 - kappa.)

The loss is the cross-entropy of pi(t) = softmax(y(t)) against y*(t), averaged over the examples
and over the last ``loss_steps`` steps (the window where the task defines its target; 0: every
step), w(t) = 1 / (N W) inside the window and 0 outside:

    E = -sum_t w(t) sum_{n,c} y*_nc(t) log pi_nc(t),     dE/dy(t) = w(t) (pi(t) - y*(t)).

Its gradient with respect to W is exact online: dE/dW = sum_t dE/dy(t)^T zbar(t), with
zbar(t) = kappa zbar(t-1) + z(t) (and the same filter of 1 for b).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from snn_drtp.core.checks import check_field_types, unknown_keys


@dataclass(frozen=True)
class ReadoutParams:
    """``tau_out`` (s): the readout's membrane time constant; ``loss_steps``: the final steps that
    carry the loss (0: all)."""

    tau_out: float = 20e-3
    loss_steps: int = 0

    def __post_init__(self) -> None:
        if not self.tau_out > 0:
            raise ValueError(f"readout: tau_out must be > 0 s, got {self.tau_out}; e.g. tau_out = 0.02")
        if self.loss_steps < 0:
            raise ValueError(
                f"readout: loss_steps must be >= 0 (0 = every step), got {self.loss_steps}; e.g. loss_steps = 10"
            )

    def kappa(self, dt: float) -> float:
        return math.exp(-dt / self.tau_out)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "[readout] ") -> ReadoutParams:
        unknown_keys(data, cls.__dataclass_fields__, where, "readout parameters")
        check_field_types(data, cls, where, {"tau_out": 0.02, "loss_steps": 10})
        return cls(**data)

    def weights(self, steps: int, batch: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """w(t) [T]: 1 / (N W) over the last W = loss_steps steps (all when 0 or more than T)."""
        window = steps if self.loss_steps == 0 else min(self.loss_steps, steps)
        w = torch.zeros(steps, dtype=dtype, device=device)
        w[steps - window :] = 1.0 / (batch * window)
        return w


def step_targets(y_star: torch.Tensor, steps: int) -> torch.Tensor:
    """y*(t) as [T, N, C]: a per-step target as given, a per-example one [N, C] repeated."""
    if y_star.dim() == 3:
        if y_star.shape[0] != steps:
            raise ValueError(f"per-step targets have {y_star.shape[0]} steps, the input {steps}")
        return y_star
    return y_star.unsqueeze(0).expand(steps, *y_star.shape)
