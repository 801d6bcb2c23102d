"""Direct feedback alignment (DFA; Nøkland 2016): m_k = B_k^T e, e = y_K - y*."""

from __future__ import annotations

import torch

from snn_drtp.rules.base import LayerView, Rule, Timing, register


@register
class DFA(Rule):
    """delta y_k = e B_k (row vectors), the output error projected by the fixed random B_k [C, N_k]:
    no weight transport, but the output must exist (update locking)."""

    name = "dfa"
    timing = Timing.OUTPUT
    summary = "B_k^T (y_K - y*): the output error, update locking"
    paper_lr_of = "dfa"

    def third_factor(self, view: LayerView) -> torch.Tensor:
        return view.need("error", self.name) @ view.B
