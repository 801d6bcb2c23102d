"""The rate-coded (ANN) DRTP reference engine."""

from snn_drtp.rate.network import RateNetwork, StepResult

__all__ = ["RateNetwork", "StepResult"]
