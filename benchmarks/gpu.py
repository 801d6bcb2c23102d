"""Benchmark on one device (a GPU where there is one): spiking DRTP and BPTT here against snnTorch
1.0 and norse 1.1 BPTT, in one run.

* ``fc``: 784-1000-10 at T = 25, batch 100, rate-encoded input, Adam: training samples per second.
* ``conv``: the N-MNIST conv network (conv 16 5x5 -> LIF -> max-pool 2 -> 500 -> 10 on 2 x 34 x 34
  event frames), T = 10, batch 100: training samples per second.
* ``open-neuromorphic``: the Open Neuromorphic library-benchmark setting, one Linear + LIF layer,
  batch 16, T = 500, 4,096 and 16,384 neurons: seconds per forward + backward (here: per training
  step of the rule) and peak GPU memory.
* ``memory``: peak GPU memory of a 784-1000-10 training step against T (25 ... 1,000), DRTP against
  BPTT.

snnTorch and norse are optional (``pip install snntorch==1.0.0``; norse 1.1.0 with ``pip install
norse==1.1.0 --no-deps`` and its dependency ``nirtorch``: norse asks for torchvision, which it does
not need for these models and which would replace the pinned torch); a library that is not
installed is reported as such. norse's network is compiled with ``torch.compile`` on a GPU
(``--compile``). Inputs are random (speed, not accuracy), the same shapes for every library.

    python benchmarks/gpu.py --device cuda                  # full sizes; writes benchmarks/results/gpu.{json,md}
    python benchmarks/gpu.py --device cpu --size tiny       # the same code at a tiny size (tested)
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snn_drtp.core.atomic import write_json_and_markdown
from snn_drtp.core.devices import resolve_device
from snn_drtp.core.memory import retain_freed_memory
from snn_drtp.core.networks import load_spec, parse_spec
from snn_drtp.core.params import Params
from snn_drtp.data.datasets import load_dataset
from snn_drtp.rules import get_rule
from snn_drtp.spiking import LIFParams, SpikeTrain, SpikingEngine, SpikingOptions

RESULTS = Path(__file__).parent / "results"
SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "fc": {"hidden": 1000, "steps": 25, "batch": 100},
        "conv": {"steps": 10, "batch": 100},
        "open-neuromorphic": {"neurons": (4096, 16384), "steps": 500, "batch": 16},
        "memory": {"hidden": 1000, "steps": (25, 100, 250, 500, 1000), "batch": 100},
        "repeats": 10,
    },
    "tiny": {
        "fc": {"hidden": 32, "steps": 4, "batch": 4},
        "conv": {"steps": 3, "batch": 2},
        "open-neuromorphic": {"neurons": (64,), "steps": 8, "batch": 2},
        "memory": {"hidden": 32, "steps": (4, 8), "batch": 2},
        "repeats": 2,
    },
}
NEURON = LIFParams(dt=1e-3, tau_mem=5e-3, threshold=0.5)


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], None], device: torch.device, repeats: int) -> float:
    """Median seconds of ``step`` over ``repeats`` calls after two warm-up calls."""
    for _ in range(2):
        step()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory(step: Callable[[], None], device: torch.device) -> float | None:
    """Peak allocated GPU memory (MB) of one call of ``step``; None off the GPU."""
    if device.type != "cuda":
        step()
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def dense_spec(n_in: int, hidden: int | None, n_out: int) -> Any:
    layers = [{"kind": "dense", "units": hidden}] if hidden else []
    layers.append({"kind": "dense", "units": n_out, "activation": "sigmoid"})
    return parse_spec({"name": f"{n_in}-{hidden}-{n_out}", "input_shape": [1, 1, n_in], "layers": layers})


def ours(
    spec: Any, rule: str, x: torch.Tensor, y: torch.Tensor, steps: int, device: torch.device
) -> Callable[[], None]:
    """A training step of this project's spiking engine (the rule's update, then Adam)."""
    engine = SpikingEngine(Params(spec, seed=0, device=device), SpikingOptions(steps=steps, neuron=NEURON))
    opt = torch.optim.Adam(engine.params.trainable_tensors(), lr=1e-3)
    chosen, generator = get_rule(rule), torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        engine.train_step(x, y, chosen, 0.0, generator)
        opt.step()

    return step


def rate_spikes(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Bernoulli rate code [T, B, ...] on x's device (snnTorch's spikegen.rate, written out)."""
    return (torch.rand((steps, *x.shape), device=x.device) < x.clamp(0, 1)).to(x.dtype)


class UnrolledNet(nn.Module):
    """``blocks``, each followed by a library's LIF cell, unrolled over time: y_hat = output spike
    count / T. A subclass gives the cells and their initial states."""

    lifs: nn.ModuleList

    def initial_states(self) -> list[Any]:
        raise NotImplementedError

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        states = self.initial_states()
        count: Any = 0
        for s in spikes:
            for k, (block, lif) in enumerate(zip(self.blocks, self.lifs, strict=True)):
                s, states[k] = lif(block(s), states[k])
            count = count + s
        return count / spikes.shape[0]


class SnnTorchNet(UnrolledNet):
    """The same layers with snnTorch Leaky neurons (beta = exp(-dt / tau_mem), fast-sigmoid surrogate)."""

    def __init__(self, blocks: list[nn.Module]):
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        grad = surrogate.fast_sigmoid(slope=4.0)
        self.lifs = nn.ModuleList(
            snn.Leaky(beta=NEURON.alpha, threshold=NEURON.threshold, spike_grad=grad, reset_delay=False) for _ in blocks
        )

    def initial_states(self) -> list[Any]:
        return [lif.init_leaky() for lif in self.lifs]


class NorseNet(UnrolledNet):
    """The same layers with norse LIFBox neurons (no synaptic current), unrolled over time."""

    def __init__(self, blocks: list[nn.Module]):
        import norse.torch as norse

        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(1.0 / NEURON.tau_mem), v_th=torch.tensor(NEURON.threshold))
        self.lifs = nn.ModuleList(norse.LIFBoxCell(p, dt=NEURON.dt) for _ in blocks)

    def initial_states(self) -> list[Any]:
        return [None] * len(self.lifs)


def baseline(
    library: str,
    blocks: list[nn.Module],
    spikes: Callable[[], torch.Tensor],
    y: torch.Tensor,
    device: torch.device,
    compiled: bool,
) -> Callable[[], None] | str:
    """A BPTT training step of ``library`` (snntorch or norse) over ``blocks``, each followed by LIF
    neurons, on the input spikes [T, B, ...] that ``spikes()`` gives; a note when it is not installed."""
    module = {"snntorch": "snntorch", "norse": "norse.torch"}[library]
    if not available(module.split(".")[0]):
        return "not installed"
    net: nn.Module = (SnnTorchNet if library == "snntorch" else NorseNet)(blocks).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    forward = torch.compile(net) if compiled else net

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = forward(spikes())
        (0.5 * torch.nn.functional.mse_loss(out, y)).backward()
        opt.step()

    return step


Factory = Callable[[], "Callable[[], None] | str"]


def contenders(
    spec: Any,
    blocks: Callable[[], list[nn.Module]],
    engine_input: Any,
    spikes: Callable[[], torch.Tensor],
    y: torch.Tensor,
    steps: int,
    device: torch.device,
    compiled: bool,
) -> dict[str, Factory]:
    """Each run's training step, built when asked (one model on the device at a time): this
    project's DRTP and BPTT on ``engine_input``, snnTorch's and norse's BPTT over ``blocks()`` on
    ``spikes()``."""
    return {
        "ours DRTP": partial(ours, spec, "drtp", engine_input, y, steps, device),
        "ours BPTT": partial(ours, spec, "bp", engine_input, y, steps, device),
        "snnTorch BPTT": lambda: baseline("snntorch", blocks(), spikes, y, device, False),
        "norse BPTT": lambda: baseline("norse", blocks(), spikes, y, device, compiled),
    }


def samples_per_second(runs: dict[str, Factory], batch: int, device: torch.device, repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, make in runs.items():
        step = make()
        results[name] = step if isinstance(step, str) else batch / timed(step, device, repeats)
        del step
    return results


def digits(batch: int, device: torch.device) -> tuple[torch.Tensor, str]:
    """``batch`` MNIST training images [B, 1, 1, 784] from the dataset cache, or, where MNIST cannot
    be had (a machine without network access or cache), images as sparse as MNIST's (19 % of the
    pixels lit, mean intensity 0.13): the rate code's spike density decides the engine's products."""
    try:
        train, _ = load_dataset("mnist")
        return train.x[:batch].reshape(batch, 1, 1, 784).to(device), "MNIST training images"
    except (OSError, RuntimeError, ValueError):
        generator = torch.Generator().manual_seed(0)
        lit = torch.rand(batch, 1, 1, 784, generator=generator) < 0.19
        x = lit * (0.2 + 0.8 * torch.rand(batch, 1, 1, 784, generator=generator)) * 1.1
        return x.clamp(0, 1).to(device), "random images as sparse as MNIST's"


def fc_case(size: dict[str, Any], device: torch.device, repeats: int, compiled: bool) -> dict[str, Any]:
    """784-hidden-10 on rate-encoded digits (the baselines encode each batch, as the engine does)."""
    hidden, steps, batch = size["hidden"], size["steps"], size["batch"]
    x, source = digits(batch, device)
    y = torch.eye(10, device=device)[torch.arange(batch, device=device) % 10]
    runs = contenders(
        dense_spec(784, hidden, 10),
        partial(fc_blocks, hidden),
        x,
        partial(rate_spikes, x.flatten(1), steps),
        y,
        steps,
        device,
        compiled,
    )
    results = samples_per_second(runs, batch, device, repeats)
    setting = f"784-{hidden}-10, T = {steps}, batch {batch}, {source}"
    return {"setting": setting, "unit": "samples/s", "results": results}


def fc_blocks(hidden: int) -> list[nn.Module]:
    return [nn.Linear(784, hidden), nn.Linear(hidden, 10)]


def conv_blocks() -> list[nn.Module]:
    """conv 16 5x5 (pad 2) | max-pool 2 of its spikes -> 500 | 10, each followed by LIF neurons."""
    return [
        nn.Conv2d(2, 16, 5, padding=2),
        nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 17 * 17, 500)),
        nn.Linear(500, 10),
    ]


def conv_case(size: dict[str, Any], device: torch.device, repeats: int, compiled: bool) -> dict[str, Any]:
    """The conv network of ``networks/nmnist-conv.toml`` on event frames with 5 % of the entries set."""
    steps, batch = size["steps"], size["batch"]
    frames = (torch.rand(steps, batch, 2, 34, 34, device=device) < 0.05).float()
    y = torch.eye(10, device=device)[torch.arange(batch, device=device) % 10]
    runs = contenders(
        load_spec("nmnist-conv"),
        conv_blocks,
        SpikeTrain(frames),
        partial(torch.clone, frames),
        y,
        steps,
        device,
        compiled,
    )
    results = samples_per_second(runs, batch, device, repeats)
    return {"setting": f"nmnist-conv, T = {steps}, batch {batch}", "unit": "samples/s", "results": results}


def open_neuromorphic_case(size: dict[str, Any], device: torch.device, repeats: int, compiled: bool) -> dict[str, Any]:
    """One Linear (n -> n) + LIF layer, random spikes in (10 %), seconds per training step and peak
    GPU memory. Here the layer is the network's output layer: DRTP's step is its three-factor update."""
    steps, batch = size["steps"], size["batch"]
    rows: dict[str, Any] = {}
    for n in size["neurons"]:
        spikes = (torch.rand(steps, batch, 1, 1, n, device=device) < 0.1).float()
        y = torch.rand(batch, n, device=device)
        runs = contenders(
            dense_spec(n, None, n),
            partial(single_layer, n),
            SpikeTrain(spikes),
            partial(torch.flatten, spikes, 2),
            y,
            steps,
            device,
            compiled,
        )
        for name, make in runs.items():
            step = make()
            if isinstance(step, str):
                rows[f"{name}, {n} neurons"] = {"seconds": step, "peak_mb": None}
            else:
                rows[f"{name}, {n} neurons"] = {
                    "seconds": timed(step, device, repeats),
                    "peak_mb": peak_memory(step, device),
                }
            del step
    return {"setting": f"Linear + LIF, batch {batch}, T = {steps}", "unit": "s per step, peak MB", "results": rows}


def single_layer(n: int) -> list[nn.Module]:
    return [nn.Linear(n, n)]


def memory_case(size: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Peak GPU memory (MB) of one 784-hidden-10 training step against T: DRTP streams in windows of
    25 steps (memory independent of T), BPTT keeps the graph of the whole presentation."""
    batch, hidden = size["batch"], size["hidden"]
    x, _ = digits(batch, device)
    y = torch.eye(10, device=device)[torch.arange(batch, device=device) % 10]
    spec = dense_spec(784, hidden, 10)
    rows: dict[str, Any] = {}
    for steps in size["steps"]:
        for name, rule in (("DRTP", "drtp"), ("BPTT", "bp")):
            options = SpikingOptions(steps=steps, time_chunk=25, neuron=NEURON)
            engine = SpikingEngine(Params(spec, seed=0, device=device), options)
            step = partial(engine.train_step, x, y, get_rule(rule), 0.0, torch.Generator(device=device).manual_seed(0))
            rows[f"{name}, T = {steps}"] = peak_memory(step, device)
    return {"setting": f"784-{hidden}-10, batch {batch}", "unit": "peak MB (None: not a GPU)", "results": rows}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


CASES = ("fc", "conv", "open-neuromorphic", "memory")


def run(
    device_name: str,
    size_name: str,
    compiled: bool | None = None,
    repeats: int | None = None,
    cases: tuple[str, ...] = CASES,
) -> dict[str, Any]:
    """The chosen ``cases`` at size ``size_name`` on one device; norse compiled by default on a GPU."""
    unknown = set(cases) - set(CASES)
    if unknown:
        raise ValueError(f"unknown cases {sorted(unknown)}; choose from {', '.join(CASES)}")
    device = resolve_device(device_name)
    size = SIZES[size_name]
    compiled = device.type == "cuda" if compiled is None else compiled
    repeats = repeats or size["repeats"]
    torch.manual_seed(0)
    measure = {
        "fc": lambda: fc_case(size["fc"], device, repeats, compiled),
        "conv": lambda: conv_case(size["conv"], device, repeats, compiled),
        "open-neuromorphic": lambda: open_neuromorphic_case(size["open-neuromorphic"], device, repeats, compiled),
        "memory": lambda: memory_case(size["memory"], device),
    }
    results = {case: measure[case]() for case in cases}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {
        "device": str(device),
        "device_name": name,
        "size": size_name,
        "torch": torch.__version__,
        "compiled_norse": compiled,
        "repeats": repeats,
        "cases": results,
    }


def markdown(report: dict[str, Any], command: str) -> list[str]:
    lines = [
        f"# GPU benchmark on {report['device_name']} ({report['device']})",
        "",
        f"`{command}`, torch {report['torch']}, size {report['size']}, medians of {report['repeats']} steps "
        f"after 2 warm-up steps; norse compiled: {report['compiled_norse']}.",
    ]
    for case, data in report["cases"].items():
        lines += ["", f"## {case}: {data['setting']} ({data['unit']})", "", "| run | value |", "|---|---|"]
        for run_name, value in data["results"].items():
            shown = " / ".join(_cell(v) for v in value.values()) if isinstance(value, dict) else _cell(value)
            lines.append(f"| {run_name} | {shown} |")
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--compile", dest="compiled", action="store_true", default=None, help="torch.compile norse")
    parser.add_argument("--no-compile", dest="compiled", action="store_false")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--cases", nargs="+", default=list(CASES), help=f"some of {', '.join(CASES)}")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (unset: torch's default)")
    parser.add_argument("--out", default=str(RESULTS / "gpu"))
    args = parser.parse_args(argv)
    retain_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    report = run(args.device, args.size, args.compiled, args.repeats, tuple(args.cases))
    command = f"python benchmarks/gpu.py --device {args.device} --size {args.size} --cases {' '.join(args.cases)}"
    command += f" --threads {args.threads}" if args.threads else ""
    print(write_json_and_markdown(args.out, report, markdown(report, command)))
    return report


if __name__ == "__main__":
    main()
