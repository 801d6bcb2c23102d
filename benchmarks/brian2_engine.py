"""Speed of the PyTorch spiking engine against the Brian2 engine (numpy and cython targets) on
the same network, rule and input: FC1-100 (784-100-10), DRTP, MNIST digits rate-encoded for
T = 25 steps, training batches of ``--batch`` examples (Brian2: all of them as replicas in one run).

All three engines train the same batches, interleaved, ``--repeats`` times in one process after
one warm-up batch each (Brian2's code generation, cython's compilation); reported are median
training samples per second and the torch engine's speed over each Brian2 target's.

    python benchmarks/brian2_engine.py --threads 1 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from snn_drtp.core.atomic import write_json_and_markdown
from snn_drtp.data import load_dataset
from snn_drtp.rules import get_rule
from snn_drtp.runs.build import build_engine
from snn_drtp.runs.config import TrainConfig

RESULTS = Path(__file__).parent / "results"
ENGINES = {"torch": ("spiking", "numpy"), "brian2-numpy": ("brian2", "numpy"), "brian2-cython": ("brian2", "cython")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, _ = load_dataset("mnist")
    rule = get_rule("drtp")
    engines = {}
    for label, (engine, target) in ENGINES.items():
        config = TrainConfig(network="fc1-100", engine=engine, brian2_target=target, steps=args.steps, lr=1e-3)
        engines[label] = build_engine(config)
    samples = {label: [] for label in engines}
    batches = [slice(i * args.batch, (i + 1) * args.batch) for i in range(args.repeats + 1)]
    for i, index in enumerate(batches):
        for label, engine in engines.items():
            gen = torch.Generator().manual_seed(i)
            t0 = time.perf_counter()
            engine.train_step(train.inputs(index), train.targets(index), rule, generator=gen)
            seconds = time.perf_counter() - t0
            if i > 0:
                samples[label].append(args.batch / seconds)
    medians = {label: statistics.median(values) for label, values in samples.items()}
    result = {
        "network": "fc1-100 (784-100-10)",
        "rule": "drtp",
        "steps": args.steps,
        "batch": args.batch,
        "threads": args.threads,
        "repeats": args.repeats,
        "samples_per_second": samples,
        "median_samples_per_second": medians,
        "torch_over": {label: medians["torch"] / m for label, m in medians.items() if label != "torch"},
    }
    lines = [
        "# Torch spiking engine vs Brian2 engine",
        "",
        f"FC1-100 (784-100-10), DRTP training steps on MNIST, T = {args.steps}, batch {args.batch}, "
        f"{args.threads} torch thread(s), median of {args.repeats} interleaved repeats after a warm-up batch.",
        "Command: `python benchmarks/brian2_engine.py --threads 1 --repeats 5`",
        "",
        "| engine | training samples/s | torch engine's speed over it |",
        "|---|---:|---:|",
    ]
    for label, m in medians.items():
        ratio = "1" if label == "torch" else f"{result['torch_over'][label]:.0f}x"
        lines.append(f"| {label} | {m:.1f} | {ratio} |")
    print(write_json_and_markdown(RESULTS / "brian2_engine", result, lines))


if __name__ == "__main__":
    main()
