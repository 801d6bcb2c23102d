"""Benchmarks of the spiking engine on MNIST, 784-1000-10, batch 100, rate-encoded input.

Speed: training samples per second at T = 25 for three-factor DRTP (event-driven products, the
default), DRTP with dense products, and surrogate-gradient BPTT, interleaved in one process,
``--repeats`` times; medians and ratios of medians.

Memory: peak resident memory (ru_maxrss) of a fresh process that loads MNIST and trains
``--mem-batches`` batches, for DRTP (streaming over time in windows of 25 steps) and BPTT at
T = 25 and T = 400.

    python benchmarks/spiking_step.py --threads 1 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from snn_drtp.core.atomic import write_json_and_markdown
from snn_drtp.core.memory import retain_freed_memory
from snn_drtp.data import load_dataset
from snn_drtp.rules import get_rule
from snn_drtp.runs.build import build_engine
from snn_drtp.runs.config import TrainConfig

RESULTS = Path(__file__).parent / "results"
BATCH = 100


def _engine(steps: int, event_driven: bool = True, time_chunk: int = 0):
    config = TrainConfig(
        engine="spiking", network="fc1-1000", steps=steps, event_driven=event_driven, time_chunk=time_chunk, lr=1e-3
    )
    return build_engine(config), config


def train_batches(rule: str, steps: int, batches: int, event_driven: bool = True, time_chunk: int = 0) -> float:
    """Train ``batches`` minibatches of 100 MNIST digits with Adam; returns samples per second."""
    data, _ = load_dataset("mnist")
    engine, config = _engine(steps, event_driven, time_chunk)
    opt = torch.optim.Adam(engine.params.trainable_tensors(), lr=config.lr, fused=True)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for b in range(batches):
        idx = slice(b * BATCH, (b + 1) * BATCH)
        engine.train_step(data.x[idx], data.targets(idx), get_rule(rule), 0.0, gen)
        opt.step()
    return batches * BATCH / (time.perf_counter() - t0)


def peak_rss_mb(rule: str, steps: int, batches: int, threads: int) -> float:
    """Peak RSS of a fresh process running :func:`train_batches` (MB)."""
    code = (
        "import resource, torch, sys; sys.path.insert(0, 'benchmarks');"
        f"torch.set_num_threads({threads});"
        "from spiking_step import train_batches;"
        f"train_batches({rule!r}, {steps}, {batches}, True, 25);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=30, help="batches per speed measurement")
    parser.add_argument("--mem-batches", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "spiking_step"))
    args = parser.parse_args()
    retain_freed_memory()
    torch.set_num_threads(args.threads)
    cases = {
        "drtp_event_driven": lambda: train_batches("drtp", 25, args.batches, True),
        "drtp_dense": lambda: train_batches("drtp", 25, args.batches, False),
        "bptt": lambda: train_batches("bp", 25, args.batches, True),
    }
    for fn in cases.values():
        fn()
    speed: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(args.repeats):
        for name, fn in cases.items():
            speed[name].append(fn())
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in speed.items()), flush=True)
    med = {k: statistics.median(v) for k, v in speed.items()}
    memory = {
        f"{rule}_T{steps}": peak_rss_mb(rule, steps, args.mem_batches, args.threads)
        for rule in ("drtp", "bp")
        for steps in (25, 400)
    }
    print(json.dumps(memory))
    command = (
        f"python benchmarks/spiking_step.py --threads {args.threads} --repeats {args.repeats} --batches {args.batches}"
    )
    report = {
        "command": command,
        "torch": torch.__version__,
        "threads": args.threads,
        "samples_per_second": speed,
        "median_samples_per_second": med,
        "ratio_drtp_to_bptt": med["drtp_event_driven"] / med["bptt"],
        "ratio_drtp_dense_to_bptt": med["drtp_dense"] / med["bptt"],
        "peak_rss_mb": memory,
        "drtp_memory_ratio_T400_to_T25": memory["drtp_T400"] / memory["drtp_T25"],
        "bptt_memory_ratio_T400_to_T25": memory["bp_T400"] / memory["bp_T25"],
        "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    lines = [
        "# Spiking engine: MNIST 784-1000-10, batch 100, rate-encoded input",
        "",
        f"`{command}`, torch {torch.__version__}, {args.threads} thread(s); speed: medians of {args.repeats} "
        f"interleaved runs of {args.batches} batches each.",
        "",
        "| training at T = 25 | samples/s | ratio to BPTT |",
        "|---|---|---|",
        f"| DRTP, event-driven products | {med['drtp_event_driven']:.0f} | {report['ratio_drtp_to_bptt']:.2f} |",
        f"| DRTP, dense products | {med['drtp_dense']:.0f} | {report['ratio_drtp_dense_to_bptt']:.2f} |",
        f"| BPTT (surrogate gradient) | {med['bptt']:.0f} | 1.00 |",
        "",
        "| peak resident memory (MB) | T = 25 | T = 400 | ratio |",
        "|---|---|---|---|",
        f"| DRTP (windows of 25 steps) | {memory['drtp_T25']:.0f} | {memory['drtp_T400']:.0f} | "
        f"{report['drtp_memory_ratio_T400_to_T25']:.3f} |",
        f"| BPTT | {memory['bp_T25']:.0f} | {memory['bp_T400']:.0f} | {report['bptt_memory_ratio_T400_to_T25']:.3f} |",
    ]
    print(write_json_and_markdown(args.out, report, lines))


if __name__ == "__main__":
    main()
