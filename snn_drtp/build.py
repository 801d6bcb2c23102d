"""From a configuration to an engine: the shared parameter set, then the engine that simulates it."""

from __future__ import annotations

from snn_drtp.config import SPIKING_FIELDS, TrainConfig
from snn_drtp.engine import Engine
from snn_drtp.networks import NetworkSpec, load_spec
from snn_drtp.params import Params
from snn_drtp.rate.engine import RateEngine
from snn_drtp.spiking.engine import SpikingEngine
from snn_drtp.spiking.neuron import LIFParams
from snn_drtp.spiking.options import SpikingOptions


def spiking_options(config: TrainConfig, spec: NetworkSpec) -> SpikingOptions:
    """Simulation options: the spec's ``[neuron]`` table, overridden by ``config.neuron``."""
    fields = {name: getattr(config, name) for name in SPIKING_FIELDS if name != "neuron"}
    return SpikingOptions(**fields, neuron=LIFParams.from_dict({**spec.neuron, **config.neuron}))


def build_params(config: TrainConfig, spec: NetworkSpec | None = None) -> Params:
    """W_k, b_k, B_k and F_k of ``config.network`` from ``config.seed``."""
    return Params(spec or load_spec(config.network), seed=config.seed, zero_init=config.zero_init)


def build_engine(config: TrainConfig, params: Params | None = None) -> Engine:
    """The engine ``config.engine`` over ``params`` (built from the config when not given)."""
    params = params if params is not None else build_params(config)
    if config.engine == "spiking":
        return SpikingEngine(params, spiking_options(config, params.spec))
    if config.engine == "brian2":
        from snn_drtp.brian import Brian2Engine

        return Brian2Engine(params, spiking_options(config, params.spec), target=config.brian2_target)
    return RateEngine(params)
