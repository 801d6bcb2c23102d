"""Benchmark: one MNIST FC1-500 training epoch (60,000 examples, batch 60) under DRTP, against
(a) the same network trained with BP through autograd and (b) the floor, the dense matrix
products the step must do at the same shapes (forward x W_1^T, y_1 W_2^T and weight updates
delta_1^T x, delta_2^T y_1). All three are timed in one process, interleaved, ``--repeats``
times; the report gives medians and ratios of medians.

    python benchmarks/rate_epoch.py --threads 1 --repeats 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from snn_drtp.core.atomic import write_json_and_markdown
from snn_drtp.core.networks import load_spec
from snn_drtp.core.params import Params
from snn_drtp.data import TensorData, load_dataset
from snn_drtp.rate.autograd_bp import autograd_step
from snn_drtp.rate.engine import RateEngine
from snn_drtp.rules import get_rule
from snn_drtp.runs.config import TrainConfig
from snn_drtp.runs.training import make_optimizer, train_epoch

RESULTS = Path(__file__).parent / "results"


def drtp_epoch(data: TensorData, config: TrainConfig) -> float:
    """The training loop of ``snn-drtp train``: local DRTP step, fused Adam."""
    engine = RateEngine(Params(load_spec(config.network), seed=0))
    opt = make_optimizer(config, engine)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    train_epoch(engine, opt, data, get_rule("drtp"), config, gen)
    return time.perf_counter() - t0


def autograd_bp_epoch(data: TensorData, config: TrainConfig) -> float:
    """The same network, same fused Adam, gradients from loss.backward()."""
    engine = RateEngine(Params(load_spec(config.network), seed=0))
    opt = make_optimizer(config, engine)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    order = torch.randperm(len(data), generator=gen)
    for start in range(0, len(data), config.batch_size):
        idx = order[start : start + config.batch_size]
        opt.zero_grad(set_to_none=False)
        out = autograd_step(engine, data.x[idx], data.targets(idx))
        opt.step()
        int((out.argmax(1) != data.y[idx]).sum())
    return time.perf_counter() - t0


def matmul_floor_epoch(data: TensorData, config: TrainConfig) -> float:
    """Only the four matrix products per minibatch, into preallocated outputs."""
    n, hidden, c = config.batch_size, 500, 10
    x, w1 = torch.rand(n, 784), torch.rand(hidden, 784)
    y1, w2 = torch.rand(n, hidden), torch.rand(c, hidden)
    d1, d2 = torch.rand(n, hidden), torch.rand(n, c)
    o1, o2, o3, o4 = torch.empty(n, hidden), torch.empty(hidden, 784), torch.empty(n, c), torch.empty(c, hidden)
    t0 = time.perf_counter()
    for _ in range(0, len(data), config.batch_size):
        torch.mm(x, w1.t(), out=o1)
        torch.mm(y1, w2.t(), out=o3)
        torch.mm(d1.t(), x, out=o2)
        torch.mm(d2.t(), y1, out=o4)
    return time.perf_counter() - t0


def adam_only_epoch(data: TensorData, config: TrainConfig) -> float:
    """For the breakdown: only the optimizer steps of an epoch (fused Adam over FC1-500's weights)."""
    engine = RateEngine(Params(load_spec(config.network), seed=0))
    opt = make_optimizer(config, engine)
    for p in engine.params.parameters():
        p.grad = torch.rand_like(p) * 1e-3
    t0 = time.perf_counter()
    for _ in range(0, len(data), config.batch_size):
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS / "rate_epoch"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = TrainConfig(network="fc1-500", rule="drtp").validate()
    data, _ = load_dataset("mnist")
    cases = {
        "drtp": drtp_epoch,
        "bp_autograd": autograd_bp_epoch,
        "matmul_floor": matmul_floor_epoch,
        "adam_only": adam_only_epoch,
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():  # warm-up, not recorded
        fn(data.subset(6000), config)
    for r in range(args.repeats):
        for name, fn in cases.items():
            times[name].append(fn(data, config))
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    command = f"python benchmarks/rate_epoch.py --threads {args.threads} --repeats {args.repeats}"
    report = {
        "command": command,
        "torch": torch.__version__,
        "threads": args.threads,
        "machine": platform.machine(),
        "seconds_per_epoch": times,
        "median_seconds_per_epoch": med,
        "ratio_drtp_to_bp_autograd": med["drtp"] / med["bp_autograd"],
        "ratio_drtp_to_matmul_floor": med["drtp"] / med["matmul_floor"],
        "goals": {"ratio_drtp_to_bp_autograd": 0.9, "ratio_drtp_to_matmul_floor": 1.5},
    }
    lines = [
        "# MNIST FC1-500 training epoch (60,000 examples, batch 60)",
        "",
        f"`{command}`, torch {torch.__version__}, {args.threads} thread(s), "
        f"medians of {args.repeats} interleaved runs.",
        "",
        "| case | median s/epoch | DRTP / case | goal |",
        "|---|---|---|---|",
        f"| DRTP (local rule, fused Adam) | {med['drtp']:.3f} | 1.00 | |",
        f"| BP through autograd | {med['bp_autograd']:.3f} | {report['ratio_drtp_to_bp_autograd']:.2f} | <= 0.9 |",
        f"| matrix-product floor | {med['matmul_floor']:.3f} | {report['ratio_drtp_to_matmul_floor']:.2f} | <= 1.5 |",
        "",
        "Where DRTP's time goes beyond the floor (medians): the Adam steps alone take "
        f"{med['adam_only']:.3f} s ({med['adam_only'] / med['matmul_floor']:.2f} x the floor); the rest, "
        f"{med['drtp'] - med['matmul_floor'] - med['adam_only']:.3f} s, is the activation, third factor, "
        "batch gathering, error counting and Python dispatch.",
    ]
    print(write_json_and_markdown(args.out, report, lines))


if __name__ == "__main__":
    main()
