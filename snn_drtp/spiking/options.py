"""How a spiking network is simulated and how its rule reads activity."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from snn_drtp.spiking.encoders import ENCODERS
from snn_drtp.spiking.neuron import LIFParams
from snn_drtp.spiking.surrogate import SURROGATES


@dataclass(frozen=True)
class SpikingOptions:
    """``steps`` (T) and ``encoder`` present static input; input that is already time-first
    brings its own T. ``surrogate`` and ``slope`` give the post factor psi(v); ``tau_pre`` the
    pre-synaptic trace (0: raw spikes); ``time_chunk`` the steps simulated at once (0: all);
    ``event_driven`` allows work-per-spike products; ``neuron`` the LIF parameters."""

    steps: int = 25
    encoder: str = "rate"
    surrogate: str = "fast_sigmoid"
    slope: float = 4.0
    tau_pre: float = 0.0
    time_chunk: int = 0
    event_driven: bool = True
    neuron: LIFParams = field(default_factory=LIFParams)

    def __post_init__(self) -> None:
        checks = [
            (self.steps >= 1, f"steps (T) must be >= 1, got {self.steps}"),
            (self.encoder in ENCODERS, f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}"),
            (
                self.surrogate in SURROGATES,
                f"surrogate must be one of {', '.join(SURROGATES)}, got {self.surrogate!r}",
            ),
            (self.slope > 0, f"surrogate slope must be > 0, got {self.slope}"),
            (self.tau_pre >= 0, f"tau_pre must be >= 0 s (0 = raw spikes), got {self.tau_pre}"),
            (self.time_chunk >= 0, f"time_chunk must be >= 0 steps (0 = all T at once), got {self.time_chunk}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"spiking options: {message}")

    @property
    def gamma(self) -> float:
        """Decay of the pre-synaptic trace per step, exp(-dt / tau_pre) (0: raw spikes)."""
        return math.exp(-self.neuron.dt / self.tau_pre) if self.tau_pre > 0 else 0.0
