"""Monitors: what a spiking network did during one presentation (spike trains, firing rates,
membrane traces of chosen neurons)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from snn_drtp.spiking.engine import SpikingEngine


@dataclass
class Recording:
    """Per layer k (k = 0: the encoded input): spikes [T, B, N_k] and the membrane potentials
    [T, B, n] of the chosen neurons (``neurons``: the first n of every layer, or a list of
    indices, each clipped to the layer's width)."""

    spikes: dict[int, list[torch.Tensor]] = field(default_factory=dict)
    v: dict[int, list[torch.Tensor]] = field(default_factory=dict)
    neurons: int | list[int] = 5

    def collect(self, k: int, spikes: torch.Tensor, v: torch.Tensor) -> None:
        width = v.shape[-1]
        chosen = range(min(self.neurons, width)) if isinstance(self.neurons, int) else self.neurons
        index = torch.tensor([i for i in chosen if i < width], dtype=torch.long, device=v.device)
        self.spikes.setdefault(k, []).append(spikes.cpu().clone())
        self.v.setdefault(k, []).append(v.index_select(-1, index).cpu())

    @property
    def layers(self) -> list[int]:
        return sorted(k for k in self.spikes if k > 0)

    def layer_spikes(self, k: int) -> torch.Tensor:
        return torch.cat(self.spikes[k])

    def layer_v(self, k: int) -> torch.Tensor:
        return torch.cat(self.v[k])

    def rates(self, k: int) -> torch.Tensor:
        """Firing rate of every neuron of layer k in spikes per step, [B, N_k]."""
        return self.layer_spikes(k).mean(0)

    def summary(self) -> dict[str, Any]:
        """Per layer: mean rate (spikes/step), spikes per example, fraction of silent neurons."""
        out = {}
        for k in self.layers:
            s = self.layer_spikes(k)
            out[f"layer{k}"] = {
                "mean_rate": float(s.mean()),
                "spikes_per_example": float(s.sum((0, 2)).mean()),
                "silent_fraction": float((s.sum((0, 1)) == 0).float().mean()),
            }
        return out


def record(
    engine: SpikingEngine, x: Any, neurons: int | list[int] = 5, example_ids: torch.Tensor | None = None
) -> Recording:
    """Present ``x`` once, no learning, and record every layer, with the membrane potentials of
    ``neurons`` (the first n, or a list of indices). Static input is encoded as in evaluation:
    example i from its own seed (``example_ids``, default 0 ... N-1)."""
    rec = Recording(neurons=neurons)
    engine.simulate(x, example_ids, monitor=rec.collect)
    return rec
