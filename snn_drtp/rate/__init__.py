"""The rate-coded (ANN) DRTP reference engine."""

from snn_drtp.rate.engine import RateEngine

__all__ = ["RateEngine"]
