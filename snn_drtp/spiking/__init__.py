"""The spiking engine: LIF dynamics, spike input and encoders, surrogate derivatives, layers that own
their three-factor updates, and backpropagation through time for backward-sweep rules."""

from snn_drtp.spiking.engine import SpikingEngine
from snn_drtp.spiking.inputs import EncodedInput, SpikeInput, SpikeTrain
from snn_drtp.spiking.neuron import LIF, LIFOutput, LIFParams, LIFState, lif_scan, lif_step
from snn_drtp.spiking.options import SpikingOptions

__all__ = [
    "LIF",
    "EncodedInput",
    "LIFOutput",
    "LIFParams",
    "LIFState",
    "SpikeInput",
    "SpikeTrain",
    "SpikingEngine",
    "SpikingOptions",
    "lif_scan",
    "lif_step",
]
