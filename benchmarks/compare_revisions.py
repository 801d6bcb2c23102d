"""Benchmark: the same training epochs at two revisions of snn-drtp, interleaved in one run.

Each case trains one epoch through the public ``train()`` API, which both revisions share, in a
fresh process per measurement whose ``PYTHONPATH`` points at that revision's tree (the baseline is
unpacked from git with ``git archive``; both package layouts, before and after the grouping by role,
are imported). The time is the epoch's training time from
``metrics["seconds"]``: no process start, data loading or evaluation. After a short warm-up epoch the
heap is frozen (``gc.freeze()``): otherwise whether one of Python's full garbage collections
(about 80 ms each with torch's heap) falls inside the timed epoch depends on each revision's exact
allocation count, which moved BPTT's epoch by 20 % between revisions with identical steps. Repeats alternate between
the revisions; the report gives medians and the ratio current / baseline (below 1: faster now).

    python benchmarks/compare_revisions.py --baseline 15e9f39 --threads 1 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import torch

from snn_drtp.core.atomic import write_json_and_markdown

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
CASES = {
    "rate DRTP, MNIST FC1-500, 60,000 examples, batch 60": {
        "network": "fc1-500",
        "rule": "drtp",
    },
    "spiking DRTP, MNIST 784-1000-10, T = 25, 2,000 examples, batch 100": {
        "engine": "spiking",
        "network": "fc1-1000",
        "rule": "drtp",
        "steps": 25,
        "batch_size": 100,
        "lr": 1e-3,
        "train_subset": 2000,
    },
    "spiking DRTP, emulated N-MNIST nmnist-conv, T = 10, 1,000 examples, batch 100": {
        "engine": "spiking",
        "network": "nmnist-conv",
        "dataset": "emulated-nmnist",
        "rule": "drtp",
        "steps": 10,
        "batch_size": 100,
        "lr": 1e-3,
        "train_subset": 1000,
    },
    "spiking BPTT, MNIST 784-1000-10, T = 25, 1,000 examples, batch 100": {
        "engine": "spiking",
        "network": "fc1-1000",
        "rule": "bp",
        "steps": 25,
        "batch_size": 100,
        "lr": 1e-3,
        "train_subset": 1000,
    },
}
SNIPPET = """
import gc, json, sys, torch
try:
    from snn_drtp.runs.config import TrainConfig
    from snn_drtp.runs.training import train
except ImportError:  # revisions before the layout by role (snn_drtp/config.py, snn_drtp/training.py)
    from snn_drtp.config import TrainConfig
    from snn_drtp.training import train
fields = json.loads(sys.argv[1])
base = dict(epochs=1, test_subset=100, angle_batch=0, threads=int(sys.argv[2]))
warm = dict(fields, train_subset=min(fields.get("train_subset", 60000), 300))
train(TrainConfig(**{**base, **warm}), None, progress=False, log=None)
gc.collect()
gc.freeze()  # the heap so far out of the collector's way: a full collection inside the epoch costs the same in both
metrics = train(TrainConfig(**{**base, **fields}), None, progress=False, log=None)
print(json.dumps(metrics["seconds"][0]))
"""


def unpack(revision: str, into: Path) -> Path:
    """The tree of ``revision`` (snn_drtp/ and networks/) under ``into``."""
    into.mkdir(parents=True)
    archive = into / "tree.tar"
    with archive.open("wb") as handle:
        subprocess.run(["git", "archive", "--format=tar", revision], cwd=ROOT, check=True, stdout=handle)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def epoch_seconds(tree: Path, fields: dict, threads: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET, json.dumps(fields), str(threads)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="15e9f39", help="git revision to compare with")
    parser.add_argument("--current", default="HEAD", help="git revision measured as current")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS / "compare_revisions"))
    args = parser.parse_args()
    times: dict[str, dict[str, list[float]]] = {case: {"baseline": [], "current": []} for case in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {
            "baseline": unpack(args.baseline, Path(tmp) / "baseline"),
            "current": unpack(args.current, Path(tmp) / "current"),
        }
        for r in range(args.repeats):
            for case, fields in CASES.items():
                for which in ("baseline", "current") if r % 2 == 0 else ("current", "baseline"):
                    times[case][which].append(epoch_seconds(trees[which], fields, args.threads))
            print(
                f"repeat {r + 1}: "
                + "; ".join(f"{c[:22]} {t['baseline'][-1]:.2f} / {t['current'][-1]:.2f} s" for c, t in times.items()),
                flush=True,
            )
    medians = {c: {w: statistics.median(v) for w, v in t.items()} for c, t in times.items()}
    ratios = {c: m["current"] / m["baseline"] for c, m in medians.items()}
    revisions = {
        which: subprocess.run(
            ["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.strip()
        for which, rev in (("baseline", args.baseline), ("current", args.current))
    }
    command = (
        f"python benchmarks/compare_revisions.py --baseline {args.baseline} --threads {args.threads} "
        f"--repeats {args.repeats}"
    )
    report = {
        "command": command,
        "revisions": revisions,
        "torch": torch.__version__,
        "threads": args.threads,
        "machine": platform.machine(),
        "seconds_per_epoch": times,
        "median_seconds_per_epoch": medians,
        "ratio_current_to_baseline": ratios,
    }
    lines = [
        f"# Training speed: {revisions['current']} against {revisions['baseline']}",
        "",
        f"`{command}`, torch {torch.__version__}, {args.threads} thread(s); medians of {args.repeats} runs per "
        "revision, alternating, each in a fresh process; the time is the epoch's training time, after a warm-up "
        "epoch and gc.freeze().",
        "",
        "| case | baseline s/epoch | current s/epoch | current / baseline |",
        "|---|---|---|---|",
    ]
    for case, m in medians.items():
        lines.append(f"| {case} | {m['baseline']:.3f} | {m['current']:.3f} | {ratios[case]:.3f} |")
    print(write_json_and_markdown(args.out, report, lines))


if __name__ == "__main__":
    main()
