"""Feedback alignment (FA; Lillicrap et al. 2016): m_k = F_{k+1}^T delta z_{k+1}, F fixed random."""

from __future__ import annotations

import torch

from snn_drtp.rules.base import LayerView, Rule, Timing, register


@register
class FA(Rule):
    """delta y_k = F_{k+1}^T delta z_{k+1} with F_{k+1} a fixed random matrix of W_{k+1}'s shape: no
    weight transport, still a backward sweep (update locking)."""

    name = "fa"
    timing = Timing.BACKWARD
    summary = "F_{k+1}^T delta z_{k+1}, F fixed random: update locking"
    paper_lr_of = "fa"

    def third_factor(self, view: LayerView) -> torch.Tensor:
        return view.carried(view.need("F_above", self.name), self.name)
