"""Direct random target projection (DRTP; Frenkel et al. 2021): m_k = B_k^T y*."""

from __future__ import annotations

import torch

from snn_drtp.rules.base import LayerView, Rule, Timing, register


@register
class DRTP(Rule):
    """delta y_k = y* B_k: for a one-hot target, row c* of the fixed random B_k [C, N_k], a
    label-selected vector known before the forward pass. No feedback path and no update locking:
    each layer updates as soon as its own output exists."""

    name = "drtp"
    timing = Timing.LABEL
    summary = "B_k^T y*: the label only, no feedback, no locking"
    paper_lr_of = "drtp"

    def third_factor(self, view: LayerView) -> torch.Tensor:
        return view.y_star @ view.B
