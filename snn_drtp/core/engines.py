"""What every engine provides, and the registry of engines by name.

An engine simulates a network whose weights live in a :class:`~snn_drtp.core.params.Params` it
shares with every other engine; it computes ``post`` and ``pre`` its own way and asks the rule for
the third factor when its timing allows (``snn_drtp.rules``). Configurations, the engine builder
and the CLI read :data:`ENGINES` instead of naming engines themselves; an entry names its class by
module path, imported on first use (Brian2 takes a second to import).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch

from snn_drtp.core.params import Params
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
    """The interface of an engine class (rate, spiking, brian2)."""

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

    def train_step(
        self,
        x: Any,
        y_star: torch.Tensor,
        rule: Rule,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> StepResult:
        """Present a batch and write the rule's updates into the parameters' ``.grad``."""
        ...

    def predict(self, x: Any, example_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, predicted class) without learning; example i encoded as example ``example_ids[i]``."""
        ...

    def loss_sum(self, output: torch.Tensor, y_star: torch.Tensor) -> float:
        """The engine's loss summed over the examples of a batch."""
        ...

    def learning_signals(
        self, x: Any, y_star: torch.Tensor, rule: Rule, example_ids: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Each hidden layer's learning signal under ``rule``, weights and ``.grad`` unchanged."""
        ...


BRIAN2_TARGETS = ("numpy", "cython")
"""Brian2 code generation targets: numpy works everywhere; cython compiles C (first use ~1 min)."""


@dataclass(frozen=True)
class EngineEntry:
    """An engine by name: where its class lives, whether it simulates LIF neurons (and so reads the
    spiking options: T, encoder, surrogate, neurons), and the configuration fields its constructor
    takes by keyword (constructor argument -> config field)."""

    name: str
    path: str
    """``module:Class``."""
    spiking: bool
    summary: str
    settings: dict[str, str] = field(default_factory=dict)
    temporal: str | None = None
    """``module:Class`` of the engine's counterpart for temporal networks (a spec ending in a
    readout layer; ``snn_drtp.temporal``), None where there is none yet."""

    def load(self, temporal: bool = False) -> type:
        """The engine class; with ``temporal``, its counterpart for temporal networks."""
        path = self.temporal if temporal else self.path
        if path is None:
            raise ValueError(
                f"engine {self.name!r} does not simulate temporal networks (recurrent layers and a readout) yet; "
                f"use one of {', '.join(name for name, entry in ENGINES.items() if entry.temporal)}"
            )
        module, _, cls = path.partition(":")
        engine_class: type = getattr(importlib.import_module(module), cls)
        return engine_class


ENGINES: dict[str, EngineEntry] = {
    entry.name: entry
    for entry in (
        EngineEntry(
            "rate",
            "snn_drtp.rate.engine:RateEngine",
            False,
            "rate-coded ANN (tanh/sigmoid units; leaky tanh units for temporal networks)",
            temporal="snn_drtp.temporal.engine:TemporalRateEngine",
        ),
        EngineEntry(
            "spiking",
            "snn_drtp.spiking.engine:SpikingEngine",
            True,
            "LIF neurons in PyTorch (LIF / ALIF with a readout for temporal networks)",
            temporal="snn_drtp.temporal.engine:TemporalSpikingEngine",
        ),
        EngineEntry(
            "brian2",
            "snn_drtp.brian.engine:Brian2Engine",
            True,
            "the same LIF network and rule in Brian2: small dense networks, label- or output-timed rules, slow",
            {"target": "brian2_target"},
        ),
    )
}


def engine_names() -> tuple[str, ...]:
    return tuple(ENGINES)


def spiking_engine_names() -> tuple[str, ...]:
    """Engines that simulate LIF neurons (and read the spiking fields of a configuration)."""
    return tuple(name for name, entry in ENGINES.items() if entry.spiking)


def get_engine(name: str) -> EngineEntry:
    """The registry entry of engine ``name``; a clear error naming the known ones otherwise."""
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(f"engine {name!r} is not one of {', '.join(ENGINES)}") from None
