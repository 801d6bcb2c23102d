"""Spike input for the spiking engine: time-first windows [n, N, ...] of one presentation.

Two kinds, one interface (``steps``, ``batch``, ``windows(chunk)``):

* :class:`SpikeTrain`: an already time-first spike or frame tensor [T, N, ...] (event-camera
  frames, spike-encoded datasets); T is taken from the tensor.
* :class:`EncodedInput`: static input [N, ...] turned into spikes by an encoder (rate, latency)
  window by window, outside the network's step, so memory does not grow with T.

Random encoders draw either from one generator for the whole batch (training: consecutive
windows draw consecutive numbers) or from one generator per example, seeded with that example's
own seed (evaluation: an example's spikes do not depend on the batch it is in).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch

from snn_drtp.spiking.encoders import ENCODERS, latency, rate

EVAL_SEED = 12345
"""Example i of an evaluation is encoded from its own seed EVAL_SEED + i."""


class SpikeInput(Protocol):
    @property
    def steps(self) -> int: ...

    @property
    def batch(self) -> int: ...

    def windows(self, chunk: int) -> Iterator[tuple[int, torch.Tensor]]:
        """(t0, steps [t0, t0 + n) as [n, N, ...]) for consecutive windows of at most ``chunk``
        steps (0: one window of all T steps)."""
        ...


def window_bounds(steps: int, chunk: int) -> Iterator[tuple[int, int]]:
    """(t0, n) of consecutive windows of ``chunk`` steps (0 or >= steps: one window)."""
    size = chunk if 0 < chunk < steps else steps
    for t0 in range(0, steps, size):
        yield t0, min(size, steps - t0)


class SpikeTrain:
    """A time-first tensor [T, N, ...] of spikes (0/1) or event frames (counts)."""

    def __init__(self, spikes: torch.Tensor):
        if spikes.dim() < 3:
            raise ValueError(
                f"a spike train is time-first [T, N, features...]; got shape {tuple(spikes.shape)}. "
                "For static input [N, features...] use EncodedInput (or pass the tensor to the engine's step)"
            )
        self.spikes = spikes

    @property
    def steps(self) -> int:
        return int(self.spikes.shape[0])

    @property
    def batch(self) -> int:
        return int(self.spikes.shape[1])

    def windows(self, chunk: int) -> Iterator[tuple[int, torch.Tensor]]:
        for t0, n in window_bounds(self.steps, chunk):
            yield t0, self.spikes[t0 : t0 + n]

    def to(self, device: torch.device) -> SpikeTrain:
        """The same train on ``device`` (itself when already there)."""
        return self if self.spikes.device == device else SpikeTrain(self.spikes.to(device))


class EncodedInput:
    """Static input x [N, ...] presented for ``steps`` steps through the encoder ``encoder``.

    ``generator`` draws the whole batch's random spikes (window after window); ``seeds`` [N], when
    given, seeds one generator per example instead.
    """

    def __init__(
        self,
        x: torch.Tensor,
        encoder: str,
        steps: int,
        generator: torch.Generator | None = None,
        seeds: torch.Tensor | None = None,
    ):
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r} for static data; choose one of {', '.join(ENCODERS)}")
        if steps < 1:
            raise ValueError(f"steps (T) must be >= 1, got {steps}")
        if seeds is not None and seeds.shape != (x.shape[0],):
            raise ValueError(f"seeds must hold one seed per example, shape ({x.shape[0]},); got {tuple(seeds.shape)}")
        self.x, self.encoder, self._steps = x, encoder, steps
        self.generator = generator
        self.seeds = seeds

    @property
    def steps(self) -> int:
        return self._steps

    @property
    def batch(self) -> int:
        return int(self.x.shape[0])

    def windows(self, chunk: int) -> Iterator[tuple[int, torch.Tensor]]:
        per_example = None
        if self.seeds is not None and self.encoder == "rate":
            per_example = [torch.Generator(device=self.x.device).manual_seed(int(s)) for s in self.seeds]
        for t0, n in window_bounds(self.steps, chunk):
            if self.encoder == "latency":
                yield t0, latency(self.x, self.steps, start=t0, count=n)
            elif per_example is not None:
                yield t0, torch.stack([rate(x, n, g) for x, g in zip(self.x, per_example, strict=True)], dim=1)
            else:
                yield t0, rate(self.x, n, self.generator)


def spike_input(
    x: torch.Tensor | SpikeInput,
    encoder: str,
    steps: int,
    generator: torch.Generator | None = None,
    example_ids: torch.Tensor | None = None,
    device: torch.device | None = None,
) -> SpikeInput:
    """``x`` as spike input for any spiking engine, on ``device`` when given: a :class:`SpikeTrain`
    moved there, any other :class:`SpikeInput` as it is; a static tensor [N, ...] through
    ``encoder`` for ``steps`` steps, drawing from ``generator``, or, given ``example_ids``, each
    example from its own seed EVAL_SEED + id."""
    if isinstance(x, SpikeTrain):
        return x.to(device) if device is not None else x
    if not isinstance(x, torch.Tensor):
        return x
    if device is not None:
        x = x.to(device)
    if example_ids is not None:
        return EncodedInput(x, encoder, steps, seeds=EVAL_SEED + example_ids)
    return EncodedInput(x, encoder, steps, generator=generator)
