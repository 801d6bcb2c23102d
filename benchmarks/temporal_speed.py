"""Seconds of one temporal training step, SHD-sized: e-prop's filtered trace folded at every step
(``chunk_steps = 1``, the per-step baseline) against folded a chunk of K steps at a time (the
default, 32), beside OSTTP and BPTT, all measured in one run.

700 input channels at 2 % spike density, 256 LIF neurons (recurrent or feed-forward), 20 readout
units, T = 100 steps, batch 32, one thread; each case is stepped once to warm up, then the median
of ``--repeats`` steps.

    python benchmarks/temporal_speed.py [--repeats 5] [--device cuda] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from snn_drtp.core.networks import parse_spec
from snn_drtp.core.params import Params
from snn_drtp.rules import get_rule
from snn_drtp.temporal.engine import TemporalOptions, TemporalRateEngine, TemporalSpikingEngine

CASES = [("eprop", 1), ("eprop", 8), ("eprop", 32), ("osttp", 32), ("bp", 32)]


def step_seconds(kind: str, spiking: bool, rule: str, chunk: int, repeats: int, device: str = "cpu") -> float:
    spec = parse_spec(
        {
            "name": "shd-bench",
            "input_shape": [700],
            "layers": [{"kind": kind, "units": 256}, {"kind": "readout", "units": 20}],
        }
    )
    engine_class = TemporalSpikingEngine if spiking else TemporalRateEngine
    engine = engine_class(Params(spec, seed=0).to(device), TemporalOptions(chunk_steps=chunk))
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(100, 32, 700, generator=gen) < 0.02).float().to(device)
    y = torch.nn.functional.one_hot(torch.arange(32) % 20, 20).float().to(device)
    engine.train_step(x, y, get_rule(rule))
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        engine.train_step(x, y, get_rule(rule))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (results then go to *_cuda.*)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for kind in ("recurrent", "dense"):
        for spiking in (True, False):
            for rule, chunk in CASES:
                seconds = step_seconds(kind, spiking, rule, chunk, args.repeats, args.device)
                rows.append(
                    {
                        "layer": kind,
                        "engine": "spiking" if spiking else "rate",
                        "rule": rule,
                        "chunk_steps": chunk,
                        "seconds": round(seconds, 4),
                    }
                )
                print(f"{kind:9s} {rows[-1]['engine']:7s} {rule:5s} chunk {chunk:3d}: {seconds:7.3f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.device == "cpu" else f"_{args.device.split(':')[0]}"
    (args.out / f"temporal_speed{suffix}.json").write_text(
        json.dumps(
            {"date": time.strftime("%Y-%m-%d"), "device": args.device, "repeats": args.repeats, "rows": rows}, indent=1
        )
    )
    head = [f"{rule} (K = {chunk})" for rule, chunk in CASES]
    lines = ["| network | " + " | ".join(head) + " | e-prop K = 1 / K = 32 |", "|---|" + "---|" * (len(CASES) + 1)]
    for kind in ("recurrent", "dense"):
        for engine in ("spiking", "rate"):
            cells = [r for r in rows if r["layer"] == kind and r["engine"] == engine]
            eprop = {r["chunk_steps"]: r["seconds"] for r in cells if r["rule"] == "eprop"}
            ratio = eprop[1] / eprop[32]
            lines.append(
                f"| {kind} {engine} | " + " | ".join(f"{r['seconds']:.3f} s" for r in cells) + f" | {ratio:.1f}x |"
            )
    (args.out / f"temporal_speed{suffix}.md").write_text(
        f"Median seconds of one training step on {args.device} (`python benchmarks/temporal_speed.py`;\n"
        "700 inputs at 2 % density, 256 LIF or leaky tanh units, 20 readout units, T = 100, batch 32,\n"
        "1 thread; K: the steps e-prop's filtered trace buffers, `chunk_steps`; the K of OSTTP and BPTT\n"
        "does nothing):\n\n" + "\n".join(lines) + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
