"""e-prop (Bellec et al. 2020, Nature Communications 11:3625): the readout's error at each step,
sent to the hidden units through fixed random (random e-prop) or the readout's own weights
(symmetric e-prop), times the eligibility trace filtered by the readout."""

from __future__ import annotations

import torch

from snn_drtp.rules.base import Eligibility, LayerView, Rule, Timing, register


@register
class EProp(Rule):
    """Random e-prop: L_k(t) = B_k^T (pi(t) - y*(t)), the update sum_t L_k(t) ebar_k(t) with
    ebar_k(t) = kappa ebar_k(t-1) + e_k(t) (the readout's leak kappa folded into the
    trace, so that L_k(t) needs only the error of the present step)."""

    name = "eprop"
    timing = Timing.OUTPUT
    summary = "B_k^T (pi(t) - y*(t)) times the filtered trace ebar_k(t): random e-prop (temporal engine)"
    eligibility = Eligibility.FILTERED

    def third_factor(self, view: LayerView) -> torch.Tensor:
        return view.need("error", self.name) @ view.B


@register
class SymmetricEProp(Rule):
    """Symmetric e-prop: L_k(t) = W_out^T (pi(t) - y*(t)), the readout's own weights in the feedback
    path (weight transport), so it reaches only the hidden layer under the readout."""

    name = "eprop-sym"
    timing = Timing.OUTPUT
    summary = "W_out^T (pi(t) - y*(t)) times ebar_k(t): symmetric e-prop, top hidden layer (temporal engine)"
    eligibility = Eligibility.FILTERED

    def third_factor(self, view: LayerView) -> torch.Tensor:
        error = view.need("error", self.name)
        W_out = view.need("W_above", self.name)
        if W_out.shape[0] != error.shape[-1]:
            raise ValueError(
                f"rule {self.name}: hidden layer {view.k} is not under the readout (its layer above has "
                f"{W_out.shape[0]} units, the readout {error.shape[-1]}); symmetric e-prop sends the error through "
                "W_out^T, which reaches only the top hidden layer: use --rule eprop (random feedback) in deeper "
                "networks"
            )
        return error @ W_out
