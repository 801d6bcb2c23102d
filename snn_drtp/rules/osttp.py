"""Online spatio-temporal learning with target projection (OSTTP; Ortner, Pes, Gentinetta, Frenkel &
Pantazi 2023, arXiv 2304.05124): DRTP's label-selected learning signal on OSTL's eligibility traces."""

from __future__ import annotations

import torch

from snn_drtp.rules.base import Eligibility, LayerView, Rule, Timing, register


@register
class OSTTP(Rule):
    """L_k(t) = B_k^T y*(t), the update sum_t L_k(t) e_k(t): the spatial credit from the target alone
    (no feedback path, no update locking, as DRTP), the temporal credit from the trace e_k(t) =
    dz_k(t)/dW_k that each synapse carries forward (no backward pass in time)."""

    name = "osttp"
    timing = Timing.LABEL
    summary = "B_k^T y*(t) times the trace e_k(t): the label only, online in time (temporal engine)"
    eligibility = Eligibility.TRACE

    def third_factor(self, view: LayerView) -> torch.Tensor:
        return view.y_star @ view.B
