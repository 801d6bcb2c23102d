"""From a configuration to an engine: the shared parameter set, then the engine that simulates it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from snn_drtp.core.engines import Engine, get_engine
from snn_drtp.core.networks import NetworkSpec, load_spec
from snn_drtp.core.params import Params
from snn_drtp.runs.config import SPIKING_FIELDS, TrainConfig
from snn_drtp.spiking.neuron import LIFParams
from snn_drtp.spiking.options import SpikingOptions
from snn_drtp.temporal.engine import TemporalOptions
from snn_drtp.temporal.readout import ReadoutParams


def spiking_options(config: TrainConfig, spec: NetworkSpec) -> SpikingOptions:
    """Simulation options: the spec's ``[neuron]`` table, overridden by ``config.neuron``."""
    fields = {name: getattr(config, name) for name in SPIKING_FIELDS if name != "neuron"}
    return SpikingOptions(**fields, neuron=LIFParams.from_dict({**spec.neuron, **config.neuron}))


def temporal_options(config: TrainConfig, spec: NetworkSpec) -> TemporalOptions:
    """A temporal network's options: its ``[neuron]`` and ``[readout]`` tables (the neurons
    overridden by ``config.neuron``), the config's surrogate and reset treatment."""
    return TemporalOptions(
        neuron=LIFParams.from_dict({**spec.neuron, **config.neuron}),
        surrogate=config.surrogate,
        slope=config.slope,
        detach_reset=config.detach_reset,
        readout=ReadoutParams.from_dict(spec.readout, f"network {spec.name}: [readout] "),
    )


def build_params(config: TrainConfig, spec: NetworkSpec | None = None) -> Params:
    """W_k, b_k, B_k and F_k of ``config.network`` from ``config.seed``, on ``config.device``."""
    return Params(spec or load_spec(config.network), seed=config.seed, zero_init=config.zero_init, device=config.device)


def build_engine(config: TrainConfig, params: Params | None = None) -> Engine:
    """The engine ``config.engine`` (from the registry) over ``params`` (built from the config when
    not given); spiking engines get the config's spiking options, and each engine the config fields
    its registry entry names. A temporal network (ending in a readout) gets the entry's temporal
    counterpart with :func:`temporal_options`."""
    entry = get_engine(config.engine)
    params = params if params is not None else build_params(config)
    if params.spec.temporal:
        temporal: Engine = entry.load(temporal=True)(params, temporal_options(config, params.spec))
        return temporal
    kwargs = {argument: getattr(config, name) for argument, name in entry.settings.items()}
    if entry.spiking:
        kwargs["options"] = spiking_options(config, params.spec)
    engine: Engine = entry.load()(params, **kwargs)
    return engine


if TYPE_CHECKING:  # every registered engine class satisfies the Engine protocol (checked by mypy)
    from snn_drtp.brian.engine import Brian2Engine
    from snn_drtp.rate.engine import RateEngine
    from snn_drtp.spiking.engine import SpikingEngine
    from snn_drtp.temporal.engine import TemporalRateEngine, TemporalSpikingEngine

    CHECKED: tuple[type[Engine], ...] = (
        RateEngine,
        SpikingEngine,
        Brian2Engine,
        TemporalRateEngine,
        TemporalSpikingEngine,
    )
