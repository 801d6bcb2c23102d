"""Backpropagation (BP): the exact gradient, m_k = W_{k+1}^T delta z_{k+1}."""

from __future__ import annotations

import torch

from snn_drtp.rules.base import LayerView, Rule, Timing, register


@register
class BP(Rule):
    """delta y_k = W_{k+1}^T delta z_{k+1}: needs the forward weights in the feedback path (weight
    transport) and a backward sweep (update locking). In the spiking engine: surrogate-gradient
    backpropagation through time."""

    name = "bp"
    timing = Timing.BACKWARD
    summary = "W_{k+1}^T delta z_{k+1}: weight transport, update locking"
    exact = True
    paper_lr_of = "bp"

    def third_factor(self, view: LayerView) -> torch.Tensor:
        return view.carried(view.need("W_above", self.name), self.name)
