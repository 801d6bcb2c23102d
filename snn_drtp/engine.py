"""What every engine provides, so training, validation and experiments can drive any of them.

An engine simulates a network whose weights live in a :class:`~snn_drtp.params.Params` it shares
with every other engine; it computes ``post`` and ``pre`` its own way and asks the rule for the
third factor when its timing allows (``snn_drtp.rules``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch

from snn_drtp.params import Params
from snn_drtp.rules import Rule, Timing


@dataclass
class StepResult:
    """One training step: the output y_K, the loss J the engine descends, each hidden layer's
    learning signal when asked (delta z_k in the rate engine, dJ/dW_k in the spiking one) and the
    predicted classes."""

    output: torch.Tensor
    loss: float
    signals: list[torch.Tensor]
    prediction: torch.Tensor


class Engine(Protocol):
    """The interface of an engine class (rate, spiking, ...)."""

    name: ClassVar[str]
    numbers_version: ClassVar[int]
    """Raised whenever a change makes the engine's numbers differ for the same configuration."""
    exact_reference: ClassVar[str]
    """What the engine calls the exact gradient that alignment angles are measured against."""
    signal_batch: ClassVar[int | None]
    """Examples per call when summing learning signals over many (None: all at once)."""
    timings: ClassVar[frozenset[Timing]]
    """The rule timings it can simulate (a rule of another timing gets a clear error)."""
    input_layout: ClassVar[str]
    """"static": the engine takes [N, ...] (time-first data reaches it as its mean frame);
    "any": it also takes time-first spike input."""
    params: Params

    def step(
        self,
        x: Any,
        y_star: torch.Tensor,
        rule: Rule,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
        write_grads: bool = True,
        keep_signals: bool = False,
    ) -> StepResult: ...

    def predict(self, x: Any, example_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def loss_sum(self, output: torch.Tensor, y_star: torch.Tensor) -> float: ...

    def learning_signals(
        self, x: Any, y_star: torch.Tensor, rule: Rule, example_ids: torch.Tensor | None = None
    ) -> list[torch.Tensor]: ...
