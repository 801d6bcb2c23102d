"""The output of a spiking network: spike counts over the presentation.

y_hat = count / T estimates the target y*; the running estimate count(t) / t gives the running
error e(t) = count(t) / t - y* that DFA and sDFA project before the presentation ends. The
predicted class is the output with most spikes, ties going to the larger mean membrane potential.
"""

from __future__ import annotations

import torch

from snn_drtp.spiking.neuron import LIFOutput


def decide(counts: torch.Tensor, v_sum: torch.Tensor, steps: int) -> torch.Tensor:
    """The class with most output spikes; ties go to the larger mean membrane potential."""
    return (counts + 0.5 * torch.sigmoid(v_sum / steps)).argmax(1)


def squared_error(y_hat: torch.Tensor, y_star: torch.Tensor) -> torch.Tensor:
    """J = sum (y_hat - y*)^2 / (2 N C): the loss whose gradient dJ/dy_hat = (y_hat - y*) / (N C) is
    the output layer's error in the spiking engine (three-factor rule and BPTT alike)."""
    return 0.5 * torch.nn.functional.mse_loss(y_hat, y_star)


class SpikeCountReadout:
    """Output spike counts and summed membrane potentials of one presentation, window by window
    (y_hat and the decision are taken from them when the presentation ends)."""

    def __init__(
        self, batch: int, n_outputs: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None
    ):
        self.counts = torch.zeros(batch, n_outputs, dtype=dtype, device=device)
        self.v_sum = torch.zeros_like(self.counts)

    def running_error(self, spikes: torch.Tensor, t0: int, y_star: torch.Tensor) -> torch.Tensor:
        """e(t) = count(t) / t - y* for the window's steps t = t0 + 1 ... t0 + n (before :meth:`add`)."""
        running = self.counts.unsqueeze(0) + spikes.cumsum(0)
        elapsed = torch.arange(t0 + 1, t0 + spikes.shape[0] + 1, dtype=running.dtype, device=running.device).view(
            -1, 1, 1
        )
        return running / elapsed - y_star

    def add(self, out: LIFOutput) -> None:
        self.counts += out.spikes.sum(0)
        self.v_sum += out.v.sum(0)
