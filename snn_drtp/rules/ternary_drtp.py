"""DRTP with ternary projections, a hardware-friendly variant not in the paper.

On chip, B_k costs memory: C x N_k multi-bit entries. Rounding every entry of B_k to the nearest
of {-beta_k, 0, +beta_k}, beta_k = sqrt(6 / N_k) its bound, stores 2 bits an entry and turns the
projection into additions and subtractions; for uniform B_k about half the entries become 0.
"""

from __future__ import annotations

import math

import torch

from snn_drtp.rules.base import LayerView, Rule, Timing, register


def ternary(B: torch.Tensor) -> torch.Tensor:
    """B_k rounded to the nearest of {-beta, 0, +beta}, beta = sqrt(6 / N_k): beta round(B / beta)."""
    beta = math.sqrt(6.0 / B.shape[-1])
    return torch.round(B / beta) * beta


@register
class TernaryDRTP(Rule):
    """delta y_k = y* T_k with T_k = ternary(B_k): label-selected, like DRTP, from a 2-bit matrix."""

    name = "drtp-ternary"
    timing = Timing.LABEL
    summary = "T_k^T y*, T_k = B_k rounded to {-beta, 0, +beta}: DRTP with 2-bit projections"
    paper_lr_of = "drtp"

    def third_factor(self, view: LayerView) -> torch.Tensor:
        return view.y_star @ ternary(view.B)
