"""``make bench``: the CPU benchmarks a user cares about, in a few minutes, as one table.

In one run on this machine (1 thread by default):

* spiking training steps, samples/s: DRTP and our BPTT on 784-1000-10 (T = 25, batch 100,
  rate-encoded MNIST) and on the N-MNIST conv network (T = 10, batch 100, event frames with 5 % of
  the entries set), next to snnTorch 1.0 BPTT on the same shapes when it is installed (an optional
  extra: ``pip install snntorch==1.0.0``); the steps of ``benchmarks/gpu.py``;
* the rate reference's MNIST FC1-500 epoch (batch 60), samples/s, against BP through autograd and
  against the floor of its four matrix products (``benchmarks/rate_epoch.py``);
* against the previous revision (``--baseline``, a git revision): the same training epochs at both
  revisions, alternating, each in a fresh process (``benchmarks/compare_revisions.py``).

Ratios are "how many times faster than": above 1, ours is faster; against the floor, the floor's
speed over ours (1.5 means an epoch takes 1.5x its matrix products).

    python benchmarks/bench.py --threads 1 --baseline b38ed56
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import subprocess
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from snn_drtp.core.atomic import write_json_and_markdown
from snn_drtp.core.memory import retain_freed_memory
from snn_drtp.data import load_dataset
from snn_drtp.runs.config import TrainConfig

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def sibling(name: str) -> ModuleType:
    """Another benchmark script of this folder, imported as a module."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ratio(a: Any, b: Any) -> float | None:
    return a / b if isinstance(a, float) and isinstance(b, float) else None


def spiking_rows(gpu: ModuleType, repeats: int, size_name: str = "full") -> list[dict[str, Any]]:
    """samples/s of the fc and conv training steps: ours (DRTP, BPTT) and snnTorch's BPTT, at the
    sizes of ``benchmarks/gpu.py`` (``tiny`` for the tests)."""
    cpu = torch.device("cpu")
    size = gpu.SIZES[size_name]
    fc, conv = size["fc"], size["conv"]
    cases = {
        f"spiking 784-{fc['hidden']}-10, T = {fc['steps']}, batch {fc['batch']}": gpu.fc_case(fc, cpu, repeats, False),
        f"spiking nmnist-conv, T = {conv['steps']}, batch {conv['batch']}": gpu.conv_case(conv, cpu, repeats, False),
    }
    rows = []
    for name, case in cases.items():
        results = case["results"]
        snntorch = results["snnTorch BPTT"]
        for run, key in (("DRTP", "ours DRTP"), ("BPTT", "ours BPTT")):
            rows.append(
                {
                    "case": f"{name}, {run}",
                    "samples_per_s": results[key],
                    "vs_our_bptt": ratio(results[key], results["ours BPTT"]) if run == "DRTP" else None,
                    "vs_snntorch": ratio(results[key], snntorch) if isinstance(snntorch, float) else snntorch,
                }
            )
    return rows


def rate_row(rate: ModuleType, repeats: int) -> dict[str, Any]:
    """samples/s of the rate engine's DRTP epoch, against autograd BP and the matrix-product floor."""
    config = TrainConfig(network="fc1-500", rule="drtp").validate()
    data, _ = load_dataset("mnist")
    cases = {"drtp": rate.drtp_epoch, "bp": rate.autograd_bp_epoch, "floor": rate.matmul_floor_epoch}
    for fn in cases.values():
        fn(data.subset(6000), config)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            times[name].append(fn(data, config))
    median = {name: statistics.median(t) for name, t in times.items()}
    return {
        "case": "rate FC1-500 epoch, batch 60, DRTP",
        "samples_per_s": len(data) / median["drtp"],
        "vs_autograd_bp": median["bp"] / median["drtp"],
        "floor_over_ours": median["drtp"] / median["floor"],
    }


def revision_rows(compare: ModuleType, baseline: str, threads: int, repeats: int) -> list[dict[str, Any]]:
    """The training epochs of ``compare_revisions.py`` at ``baseline`` and at the working tree's HEAD."""
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        trees = {
            which: compare.unpack(rev, Path(tmp) / which)
            for which, rev in (("baseline", baseline), ("current", "HEAD"))
        }
        for case, fields in compare.CASES.items():
            seconds: dict[str, list[float]] = {"baseline": [], "current": []}
            for r in range(repeats):
                for which in ("baseline", "current") if r % 2 == 0 else ("current", "baseline"):
                    seconds[which].append(compare.epoch_seconds(trees[which], fields, threads))
            median = {which: statistics.median(s) for which, s in seconds.items()}
            ratios.append({"case": case, "vs_previous_revision": median["baseline"] / median["current"], **median})
    return ratios


def short(revision: str) -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", revision], cwd=HERE, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def shown(value: Any, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return f"{value:,.0f}" if value >= 100 else f"{value:.{digits}f}x"


def markdown(report: dict[str, Any]) -> list[str]:
    lines = [
        f"# CPU benchmarks on {report['machine']}, {report['threads']} torch thread(s)",
        "",
        f"`{report['command']}`, torch {report['torch']}; medians in one run; ratios are times faster than the "
        "other (above 1: ours faster), except against the floor: the floor's speed over ours (how many times "
        "its matrix products the epoch takes).",
        "",
        "| case | samples/s | vs our BPTT | vs snnTorch 1.0 BPTT | vs autograd BP | floor / ours |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['case']} | {shown(row['samples_per_s'])} | {shown(row.get('vs_our_bptt'))} | "
            f"{shown(row.get('vs_snntorch'))} | {shown(row.get('vs_autograd_bp'))} | "
            f"{shown(row.get('floor_over_ours'))} |"
        )
    if report["revisions"]:
        lines += [
            "",
            f"Against the previous revision {report['baseline']} (same training epochs, fresh processes, "
            "alternating; above 1: faster now):",
            "",
            "| epoch | baseline s | current s | vs previous revision |",
            "|---|---:|---:|---:|",
        ]
        for row in report["revisions"]:
            lines.append(
                f"| {row['case']} | {row['baseline']:.3f} | {row['current']:.3f} | {row['vs_previous_revision']:.2f}x |"
            )
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps (spiking) per run")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per case (rate, revisions)")
    parser.add_argument("--baseline", default=None, help="git revision to compare with (unset: no comparison)")
    parser.add_argument("--out", default=str(RESULTS / "bench"))
    args = parser.parse_args(argv)
    retain_freed_memory()
    torch.set_num_threads(args.threads)
    rows = spiking_rows(sibling("gpu"), args.repeats)
    rows.append(rate_row(sibling("rate_epoch"), args.epochs))
    revisions = (
        revision_rows(sibling("compare_revisions"), args.baseline, args.threads, args.epochs) if args.baseline else []
    )
    command = f"python benchmarks/bench.py --threads {args.threads} --repeats {args.repeats} --epochs {args.epochs}"
    command += f" --baseline {args.baseline}" if args.baseline else ""
    report = {
        "command": command,
        "machine": platform.machine(),
        "threads": args.threads,
        "torch": torch.__version__,
        "current": short("HEAD"),
        "baseline": short(args.baseline) if args.baseline else None,
        "rows": rows,
        "revisions": revisions,
    }
    lines = markdown(report)
    print("\n".join(lines))
    write_json_and_markdown(args.out, report, lines)
    return report


if __name__ == "__main__":
    main()
