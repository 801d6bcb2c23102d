"""The Brian2 engine: the same LIF networks and three-factor rules as equations for Brian2, used to
cross-check the PyTorch spiking engine (``snn_drtp.studies.crosscheck``)."""

from snn_drtp.brian.engine import Brian2Engine

__all__ = ["Brian2Engine"]
