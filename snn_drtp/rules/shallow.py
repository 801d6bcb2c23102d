"""Shallow learning: hidden layers keep their random weights; only the output layer learns."""

from __future__ import annotations

import torch

from snn_drtp.rules.base import LayerView, Rule, Timing, register


@register
class Shallow(Rule):
    """No third factor reaches the hidden layers."""

    name = "shallow"
    timing = Timing.NEVER
    summary = "none: hidden layers frozen"
    paper_lr_of = "shallow"

    def third_factor(self, view: LayerView) -> torch.Tensor:
        raise ValueError(f"rule {self.name} gives hidden layer {view.k} no third factor")
