"""One place that turns a configuration and a network spec into a network of either engine."""

from __future__ import annotations

from snn_drtp.config import SPIKING_FIELDS, TrainConfig
from snn_drtp.networks import NetworkSpec
from snn_drtp.rate.network import RateNetwork
from snn_drtp.spiking.network import SpikingNetwork, SpikingOptions
from snn_drtp.spiking.neuron import LIFParams


def spiking_options(config: TrainConfig, spec: NetworkSpec) -> SpikingOptions:
    """Simulation options: the spec's ``[neuron]`` table, overridden by ``config.neuron``."""
    fields = {name: getattr(config, name) for name in SPIKING_FIELDS if name != "neuron"}
    return SpikingOptions(**fields, neuron=LIFParams.from_dict({**spec.neuron, **config.neuron}))


def build_network(config: TrainConfig, spec: NetworkSpec) -> RateNetwork:
    """The rate network, or the spiking network with the same weights and B_k for the same seed."""
    if config.engine == "spiking":
        return SpikingNetwork(spec, seed=config.seed, options=spiking_options(config, spec), zero_init=config.zero_init)
    return RateNetwork(spec, seed=config.seed, zero_init=config.zero_init)
