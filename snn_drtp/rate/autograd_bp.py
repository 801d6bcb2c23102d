"""Backpropagation through PyTorch autograd: the baseline the local rules are checked and timed
against. Same layers, same dropout draws, same loss as :meth:`RateEngine.train_step`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from snn_drtp.rate.engine import RateEngine


def autograd_step(
    engine: RateEngine,
    x: torch.Tensor,
    y_star: torch.Tensor,
    dropout: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Forward with a graph, J = BCE(sigmoid(z_K), y*) (or MSE for a linear or tanh output), J.backward();
    returns y_K. Gradients land in ``.grad`` of every trainable parameter (frozen layers' tensors
    do not require gradients)."""
    p = dropout if generator is not None else 0.0
    h = x
    with torch.enable_grad():
        for layer in engine.layers:
            h, cache = layer.forward(h, p if layer.params.spec.kind == "dense" else 0.0, generator)
        if engine.output_activation != "sigmoid":
            loss = F.mse_loss(h, y_star)
        else:
            loss = F.binary_cross_entropy_with_logits(cache.z, y_star)
        loss.backward()
    return h.detach()
