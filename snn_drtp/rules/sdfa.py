"""Error-sign DFA (sDFA; Frenkel et al. 2021): m_k = B_k^T sign(e)."""

from __future__ import annotations

import torch

from snn_drtp.rules.base import LayerView, Rule, Timing, register


@register
class SignDFA(Rule):
    """delta y_k = sign(e) B_k: only the sign of the output error travels back."""

    name = "sdfa"
    timing = Timing.OUTPUT
    summary = "B_k^T sign(y_K - y*): the output error's sign, update locking"
    paper_lr_of = "sdfa"

    def third_factor(self, view: LayerView) -> torch.Tensor:
        return torch.sign(view.need("error", self.name)) @ view.B
