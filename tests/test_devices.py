"""Every tensor an engine makes takes its device from the parameters or the input.

Without a GPU, a stray allocation is caught by running the engines and the training loop with the
default device set to ``meta`` (``with torch.device("meta")``): the parameters and the data are on
the CPU, so any tensor created without an explicit device lands on ``meta``, and the first time it
meets a CPU tensor torch raises "Tensor on device meta is not on the expected device cpu", or a
result comes out on ``meta``. The same computation without the context must give the very same
numbers, so nothing was silently computed on ``meta``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from conftest import tiny_spec

from snn_drtp.core.devices import resolve_device
from snn_drtp.core.networks import parse_spec
from snn_drtp.core.params import Params
from snn_drtp.data.tensors import TensorData
from snn_drtp.rate.engine import RateEngine
from snn_drtp.rules import get_rule
from snn_drtp.runs.config import TrainConfig
from snn_drtp.runs.training import alignment, evaluate, evaluate_run, train, train_epoch
from snn_drtp.spiking import LIFParams, SpikeTrain, SpikingEngine, SpikingOptions
from snn_drtp.spiking.monitors import record
from snn_drtp.temporal.engine import TemporalOptions, TemporalRateEngine, TemporalSpikingEngine


def conv_spec():
    return parse_spec(
        {
            "name": "tiny-conv",
            "input_shape": [2, 6, 6],
            "layers": [
                {"kind": "conv", "channels": 3, "kernel": 3, "padding": 1, "pool": 2},
                {"kind": "dense", "units": 100},
                {"kind": "dense", "units": 4, "activation": "sigmoid"},
            ],
        }
    )


def spiking(spec, **options: Any) -> SpikingEngine:
    neuron = options.pop("neuron", LIFParams(tau_mem=5e-3, threshold=0.3))
    engine = SpikingEngine(Params(spec, seed=2), SpikingOptions(neuron=neuron, **options))
    with torch.no_grad():
        for layer in engine.params.layers:
            layer.weight.mul_(4.0)
    return engine


def run_everything(make: Callable[[], Any], work: Callable[[Any], list[torch.Tensor]]) -> list[torch.Tensor]:
    """``work(make())`` once with the default device ``meta`` and once without; both must give CPU
    tensors with the same values."""
    with torch.device("meta"):
        got = work(make())
    expected = work(make())
    for g, e in zip(got, expected, strict=True):
        assert g.device.type == "cpu", "a result was computed on the default device instead of the parameters'"
        torch.testing.assert_close(g, e, rtol=0, atol=0)
    return got


def step_outputs(engine: Any, x: Any, y_star: torch.Tensor, rule: str, dropout: float = 0.0) -> list[torch.Tensor]:
    res = engine.train_step(x, y_star, get_rule(rule), dropout, torch.Generator().manual_seed(1))
    grads = [p.grad for p in engine.params.parameters() if p.grad is not None]
    return [res.output, res.prediction, *grads]


STATIC = torch.rand(6, 1, 1, 40, generator=torch.Generator().manual_seed(0))
Y = torch.eye(3)[torch.arange(6) % 3]


@pytest.mark.parametrize("rule", ["drtp", "dfa", "bp", "shallow"])
@pytest.mark.parametrize(
    "options",
    [
        {"steps": 12, "time_chunk": 5},
        {"steps": 9, "tau_pre": 3e-3, "encoder": "latency"},
        {"steps": 8, "neuron": LIFParams(tau_mem=5e-3, tau_syn=2e-3, threshold=0.3, refractory=2)},
    ],
    ids=["windows", "trace-latency", "synapse-refractory"],
)
def test_spiking_dense_engine_allocates_on_the_parameters_device(rule: str, options: dict[str, Any]) -> None:
    spec = tiny_spec(("tanh",), (20,), 40, 3)
    run_everything(lambda: spiking(spec, **dict(options)), lambda e: step_outputs(e, STATIC, Y, rule, dropout=0.3))


@pytest.mark.parametrize("rule", ["drtp", "dfa", "bp"])
def test_spiking_conv_and_event_driven_layers_allocate_on_the_parameters_device(rule: str) -> None:
    """Conv -> pool -> 100 units (event-driven products: sparse input into >= 100 units) -> 4."""
    frames = (torch.rand(6, 5, 2, 6, 6, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    y = torch.eye(4)[torch.arange(5) % 4]
    run_everything(lambda: spiking(conv_spec(), steps=6), lambda e: step_outputs(e, SpikeTrain(frames), y, rule))


def test_simulation_monitors_and_learning_signals_allocate_on_the_parameters_device() -> None:
    spec = tiny_spec(("tanh",), (20,), 40, 3)

    def work(engine: SpikingEngine) -> list[torch.Tensor]:
        rec = record(engine, STATIC, neurons=3)
        signals = engine.learning_signals(STATIC, Y, get_rule("drtp"))
        signals += engine.learning_signals(STATIC, Y, get_rule("bp"))
        return [rec.layer_spikes(1), rec.layer_v(2), *signals, *engine.predict(STATIC)]

    run_everything(lambda: spiking(spec, steps=10), work)


@pytest.mark.parametrize("rule", ["drtp", "dfa", "bp", "fa"])
def test_rate_engine_allocates_on_the_parameters_device(rule: str) -> None:
    conv = parse_spec(
        {
            "name": "tiny-conv",
            "input_shape": [2, 6, 6],
            "layers": [
                {"kind": "conv", "channels": 3, "kernel": 3, "padding": 1, "pool": 2},
                {"kind": "dense", "units": 4, "activation": "sigmoid"},
            ],
        }
    )
    x = torch.rand(5, 2, 6, 6, generator=torch.Generator().manual_seed(4))
    y = torch.eye(4)[torch.arange(5) % 4]
    run_everything(lambda: RateEngine(Params(conv, seed=1)), lambda e: step_outputs(e, x, y, rule, dropout=0.2))


@pytest.mark.parametrize("engine", ["rate", "spiking"])
def test_training_loop_moves_batches_to_the_parameters_device(engine: str) -> None:
    """An epoch (order, batches, optimizer), evaluation and alignment angles on data held on the CPU."""
    g = torch.Generator().manual_seed(5)
    data = TensorData(torch.rand(24, 1, 1, 40, generator=g), torch.randint(0, 3, (24,), generator=g), 3)
    config = TrainConfig(engine=engine, network="tiny", batch_size=8, dropout=0.2, lr=1e-3).validate()
    spec = tiny_spec(("tanh",), (20,), 40, 3)

    def make() -> Any:
        return spiking(spec, steps=6) if engine == "spiking" else RateEngine(Params(spec, seed=2))

    def work(model: Any) -> list[torch.Tensor]:
        opt = torch.optim.Adam(model.params.trainable_tensors(), lr=1e-3)
        wrong, loss = train_epoch(model, opt, data, get_rule("drtp"), config, torch.Generator().manual_seed(6))
        error, test_loss = evaluate(model, data, batch=10)
        angles = alignment(model, data, get_rule("drtp"), 12)
        numbers = torch.tensor([wrong, loss, error, test_loss, *angles.values()], device="cpu")
        return [numbers, *model.params.parameters()]

    run_everything(make, work)


def test_params_move_to_a_device_and_record_it() -> None:
    params = Params(tiny_spec(), seed=0, device="meta")
    assert params.device.type == "meta" and params.feedback(1).device.type == "meta"
    assert Params(tiny_spec(), seed=0).device.type == "cpu"


@pytest.mark.parametrize(
    ("name", "message"),
    [("gpu", "is not a torch device"), ("cuda:7", "CUDA is not available|CUDA device"), ("xla", "cpu, cuda or mps")],
)
def test_unknown_or_missing_devices_are_refused_by_name(name: str, message: str) -> None:
    if name == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 CUDA devices")
    with pytest.raises(ValueError, match=message):
        resolve_device(name)
    with pytest.raises(ValueError, match=message):
        TrainConfig(device=name).validate()


@pytest.mark.parametrize("rule", ["drtp", "dfa"])
def test_event_driven_products_allocate_on_the_parameters_device(rule: str) -> None:
    """Sparse spikes (10 %) into 100 units: the current and the update are computed per event."""
    spikes = (torch.rand(8, 6, 1, 1, 30, generator=torch.Generator().manual_seed(7)) < 0.1).float()
    make = lambda: spiking(tiny_spec(("tanh",), (100,), 30, 3), steps=8)  # noqa: E731
    engine = make()
    assert engine.layers[0].events(spikes[0], engine.layers[0].start(6, None)) is not None, "not event-driven"
    run_everything(make, lambda e: step_outputs(e, SpikeTrain(spikes), Y, rule))


def temporal(kind: str, spiking: bool, adaptive: bool = False) -> Any:
    hidden = {"kind": kind, "units": 7} | ({"tau_adapt": 0.03, "adapt": 0.2} if adaptive else {})
    spec = parse_spec(
        {"name": "tiny-temporal", "input_shape": [9], "layers": [hidden, {"kind": "readout", "units": 3}]}
    )
    options = TemporalOptions(neuron=LIFParams(tau_mem=0.01, threshold=0.3), chunk_steps=4)
    return (TemporalSpikingEngine if spiking else TemporalRateEngine)(Params(spec, seed=3), options)


TEMPORAL_X = (torch.rand(11, 6, 9, generator=torch.Generator().manual_seed(5)) < 0.4).float()


@pytest.mark.parametrize("rule", ["eprop", "osttp", "drtp", "bp", "eprop-sym"])
@pytest.mark.parametrize(
    ("kind", "spiking", "adaptive"),
    [("recurrent", True, False), ("recurrent", True, True), ("dense", False, False)],
    ids=["recurrent-LIF", "recurrent-ALIF", "dense-tanh"],
)
def test_temporal_engines_allocate_on_the_parameters_device(
    rule: str, kind: str, spiking: bool, adaptive: bool
) -> None:
    """Every rule of the temporal engines (e-prop's chunked and per-synapse filtered traces, OSTTP's
    trace, the instant eligibility, BPTT), a simulation and the traces' history."""

    def work(engine: Any) -> list[torch.Tensor]:
        history = engine.eligibility_history(TEMPORAL_X[:, :2], 1)
        return [*step_outputs(engine, TEMPORAL_X, Y, rule), history, *engine.predict(TEMPORAL_X)]

    run_everything(lambda: temporal(kind, spiking, adaptive), work)


CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (run where the device tool lends one)"
)


@CUDA
@pytest.mark.parametrize(
    "engine",
    [
        "rate",
        "spiking-drtp",
        "spiking-bp",
        "spiking-conv",
        "temporal-eprop",
        "temporal-osttp-alif",
        "temporal-bptt-rate",
    ],
)
def test_cuda_steps_match_the_cpu(engine: str) -> None:
    """The same step on cuda and on the CPU: outputs and updates equal up to float32 rounding
    (the input is a fixed spike train or image batch, so no random draw differs)."""
    spikes = (torch.rand(8, 6, 1, 1, 40, generator=torch.Generator().manual_seed(9)) < 0.3).float()
    frames = (torch.rand(6, 5, 2, 6, 6, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    cases = {
        "rate": (lambda: RateEngine(Params(tiny_spec(("tanh",), (20,), 40, 3), seed=2)), STATIC, Y, "drtp"),
        "spiking-drtp": (lambda: spiking(tiny_spec(("tanh",), (20,), 40, 3)), SpikeTrain(spikes), Y, "drtp"),
        "spiking-bp": (lambda: spiking(tiny_spec(("tanh",), (20,), 40, 3)), SpikeTrain(spikes), Y, "bp"),
        "spiking-conv": (lambda: spiking(conv_spec()), SpikeTrain(frames), torch.eye(4)[torch.arange(5) % 4], "dfa"),
        "temporal-eprop": (lambda: temporal("recurrent", True), TEMPORAL_X, Y, "eprop"),
        "temporal-osttp-alif": (lambda: temporal("recurrent", True, adaptive=True), TEMPORAL_X, Y, "osttp"),
        "temporal-bptt-rate": (lambda: temporal("dense", False), TEMPORAL_X, Y, "bp"),
    }
    make, x, y, rule = cases[engine]
    on_cpu = step_outputs(make(), x, y, rule)
    model = make()
    model.params.to("cuda")
    on_gpu = step_outputs(model, x, y, rule)  # inputs and targets stay on the CPU: the engine moves them
    for g, c in zip(on_gpu, on_cpu, strict=True):
        assert g.device.type == "cuda"
        torch.testing.assert_close(g.cpu().float(), c.float(), rtol=1e-4, atol=1e-5)


@CUDA
def test_cuda_training_run_resumes_and_evaluates(tmp_path: Any) -> None:
    config = TrainConfig(
        engine="spiking",
        network="synth-classification",
        dataset="synth-classification",
        epochs=1,
        lr=1e-3,
        train_subset=200,
        test_subset=100,
        angle_batch=50,
        steps=5,
        device="cuda",
    )
    train(config, tmp_path / "run", progress=False, log=None)
    metrics = train(TrainConfig(**{**config.to_dict(), "epochs": 2}), tmp_path / "run", progress=False, log=None)
    assert metrics["epoch"] == [1, 2]
    result = evaluate_run(tmp_path / "run", "synth-classification", progress=False, examples=50, device="cpu")
    assert result["examples"] == 50
