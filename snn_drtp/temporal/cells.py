"""The units of a temporal network, one step at a time: LIF and ALIF neurons (the spiking engine)
and leaky tanh units (the rate twin).

Hidden layer k at step t receives, from the layer below (x = its output at t) and from itself
(z = its own output at t - 1; R_jj = 0 unless self-connections are asked for),

    I_j(t) = sum_i W_ji x_i(t) + sum_l R_jl z_l(t-1) + b_j,

and integrates it in Bellec et al. (2020)'s form, v_j(t) = alpha u_j(t-1) + I_j(t), alpha =
exp(-dt / tau_mem), u being the membrane after the reset: unlike the static engine's LIF, the
input is not scaled by 1 - alpha, so a weight is the jump in potential one spike causes.

* LIF / ALIF: a_j(t) = rho a_j(t-1) + z_j(t-1), rho = exp(-dt / tau_adapt) (Bellec et al. 2020's
  adaptation; beta = 0 is LIF); the threshold A_j(t) = theta + beta a_j(t); z_j(t) = H(v_j(t) - A_j(t));
  reset by subtraction u_j(t) = v_j(t) - theta z_j(t); pseudo-derivative psi_j(t) = dz_j/dv_j =
  surrogate(v_j(t) - beta a_j(t)), peaking where v reaches A.
* tanh: z_j(t) = tanh(v_j(t)), u_j(t) = v_j(t), psi_j(t) = 1 - z_j(t)^2 (no reset, no adaptation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from snn_drtp.spiking.surrogate import SpikeFunction, get_surrogate

SpikeFn = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class Cell:
    """One layer's unit: ``spiking`` (LIF, ALIF when beta > 0) or a leaky tanh unit; ``alpha`` the
    membrane's decay per step, ``rho`` the adaptation's, ``beta`` its strength, ``threshold``
    theta; ``surrogate`` and ``slope`` give psi. ``detach_reset``: the reset's dependence on the
    spike is left out of every derivative (traces and BPTT alike), as Bellec et al. do."""

    spiking: bool
    alpha: float
    threshold: float = 1.0
    rho: float = 0.0
    beta: float = 0.0
    surrogate: str = "fast_sigmoid"
    slope: float = 4.0
    detach_reset: bool = True

    @classmethod
    def from_times(
        cls,
        spiking: bool,
        dt: float,
        tau_mem: float,
        tau_adapt: float = 0.0,
        adapt: float = 0.0,
        threshold: float = 1.0,
        surrogate: str = "fast_sigmoid",
        slope: float = 4.0,
        detach_reset: bool = True,
    ) -> Cell:
        """alpha = exp(-dt / tau_mem); rho = exp(-dt / tau_adapt) (0 without adaptation); a tanh
        unit does not adapt."""
        rho = math.exp(-dt / tau_adapt) if tau_adapt > 0 else 0.0
        beta = adapt if spiking else 0.0
        return cls(spiking, math.exp(-dt / tau_mem), threshold, rho, beta, surrogate, slope, detach_reset)

    @property
    def adaptive(self) -> bool:
        return self.beta != 0.0

    @property
    def reset_in_derivative(self) -> float:
        """r: d u(t) / d z(t) as the derivatives see it, -theta for a spiking unit whose reset is
        kept, 0 otherwise (written as the positive theta that the traces subtract)."""
        return self.threshold if self.spiking and not self.detach_reset else 0.0


class CellState(NamedTuple):
    """u(t-1) (membrane after reset), a(t-1) (adaptation; None without), z(t-1) (last output)."""

    u: torch.Tensor
    a: torch.Tensor | None
    z: torch.Tensor

    @classmethod
    def zeros(cls, batch: int, units: int, cell: Cell, dtype: torch.dtype, device: torch.device) -> CellState:
        zero = torch.zeros(batch, units, dtype=dtype, device=device)
        return cls(zero, zero.clone() if cell.adaptive else None, zero.clone())


class CellOutput(NamedTuple):
    """z(t), v(t) before the reset, psi(t) = dz(t)/dv(t) (the pseudo-derivative)."""

    z: torch.Tensor
    v: torch.Tensor
    psi: torch.Tensor


def surrogate_spike(cell: Cell) -> SpikeFn:
    """H(v - theta) forward, the cell's surrogate psi(v) backward (for BPTT)."""

    def spike(v: torch.Tensor, threshold: float) -> torch.Tensor:
        out: torch.Tensor = SpikeFunction.apply(v, threshold, cell.slope, cell.surrogate)
        return out

    return spike


def heaviside(v: torch.Tensor, threshold: float) -> torch.Tensor:
    return (v >= threshold).to(v.dtype)


def cell_step(
    cell: Cell, current: torch.Tensor, state: CellState, spike_fn: SpikeFn = heaviside
) -> tuple[CellOutput, CellState]:
    """One step of the module docstring's equations: I(t), state at t - 1 -> output at t, state at t.
    ``spike_fn`` makes the spikes (BPTT passes :func:`surrogate_spike`); psi is always computed
    without a graph, for the traces."""
    v = cell.alpha * state.u + current
    if not cell.spiking:
        z = torch.tanh(v)
        return CellOutput(z, v, (1.0 - z.detach() ** 2)), CellState(v, None, z)
    a = None
    distance = v
    if state.a is not None:
        a = cell.rho * state.a + state.z
        distance = v - cell.beta * a
    z = spike_fn(distance, cell.threshold)
    psi = get_surrogate(cell.surrogate)(distance.detach(), cell.threshold, cell.slope)
    resetting = z.detach() if cell.detach_reset else z
    return CellOutput(z, v, psi), CellState(v - cell.threshold * resetting, a, z)
