"""The spiking engine: LIF dynamics, encoders, surrogate derivatives, the three-factor network and
the BPTT baseline."""

from snn_drtp.spiking.network import SpikingNetwork, SpikingOptions
from snn_drtp.spiking.neuron import LIF, LIFParams, LIFState, lif_scan, lif_step

__all__ = ["LIF", "LIFParams", "LIFState", "SpikingNetwork", "SpikingOptions", "lif_scan", "lif_step"]
