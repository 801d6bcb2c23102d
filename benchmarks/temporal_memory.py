"""Memory of one temporal training step against the number of steps T: OSTTP and e-prop keep
states and eligibility traces only (flat in T), BPTT keeps the graph of every step (growing).

Each case runs in a fresh process: it builds the network (SHD-sized: 700 input channels, 256
recurrent LIF neurons, 20 readout units, batch 16, 2 % input spike density) and its input, records
its resident memory, runs one step at T and reads its peak resident memory (``ru_maxrss``); the
figure is the difference, in MiB. One thread. No step runs before (a warm-up step's freed blocks
would stay in the allocator's heap and be counted in the memory before); the first step's one-off
costs are in every figure alike.

    python benchmarks/temporal_memory.py [--steps 100 250 500 1000] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CASE = """
import resource, time, torch
torch.set_num_threads(1)
from snn_drtp.core.memory import retain_freed_memory
from snn_drtp.core.networks import parse_spec
from snn_drtp.core.params import Params
from snn_drtp.rules import get_rule
from snn_drtp.temporal.engine import TemporalSpikingEngine
spec = parse_spec({{"name": "shd-rsnn-bench", "input_shape": [700],
    "layers": [{{"kind": "recurrent", "units": 256}}, {{"kind": "readout", "units": 20}}]}})
engine = TemporalSpikingEngine(Params(spec, seed=0))
gen = torch.Generator().manual_seed(0)
y = torch.nn.functional.one_hot(torch.arange(16) % 20, 20).float()
rule = get_rule("{rule}")
x = (torch.rand({steps}, 16, 700, generator=gen) < 0.02).float()
with open("/proc/self/statm") as f:
    before = int(f.read().split()[1]) * 4096 / 2**20
t0 = time.perf_counter()
engine.train_step(x, y, rule)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(peak - before, seconds)
"""


def measure(rule: str, steps: int) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", CASE.format(rule=rule, steps=steps)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    mib, seconds = out.stdout.split()
    return float(mib), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 250, 500, 1000])
    parser.add_argument("--rules", nargs="+", default=["osttp", "eprop", "bp"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    rows = []
    for rule in args.rules:
        for steps in args.steps:
            mib, seconds = measure(rule, steps)
            rows.append({"rule": rule, "steps": steps, "peak_extra_mib": round(mib, 1), "seconds": round(seconds, 2)})
            print(f"{rule:6s} T={steps:5d}: {mib:8.1f} MiB above the step before, {seconds:6.2f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "temporal_memory.json").write_text(
        json.dumps({"date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=1)
    )
    lines = ["| rule | " + " | ".join(f"T = {s}" for s in args.steps) + " |", "|---|" + "---|" * len(args.steps)]
    for rule in args.rules:
        cells = [f"{r['peak_extra_mib']:.0f} MiB" for r in rows if r["rule"] == rule]
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    (args.out / "temporal_memory.md").write_text(
        "Peak memory of a process's first training step above the memory before it\n"
        "(`python benchmarks/temporal_memory.py`; 700 inputs, 256 recurrent LIF neurons, 20 readout units,\n"
        "batch 16, 1 thread):\n\n" + "\n".join(lines) + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
