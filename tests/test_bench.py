"""benchmarks/bench.py (``make bench``): its spiking rows at a tiny size and its table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"test_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_bench_rows_and_table_at_a_tiny_size():
    """Each spiking row has ours measured, DRTP's ratio to our BPTT computed from the two speeds,
    snnTorch measured or reported as not installed; the table shows every row."""
    bench = load("bench")
    rows = bench.spiking_rows(bench.sibling("gpu"), repeats=1, size_name="tiny")
    assert [row["case"].rsplit(", ", 1)[1] for row in rows] == ["DRTP", "BPTT"] * 2
    for drtp, bptt in (rows[0:2], rows[2:4]):
        assert drtp["samples_per_s"] > 0 and bptt["samples_per_s"] > 0
        assert drtp["vs_our_bptt"] == pytest.approx(drtp["samples_per_s"] / bptt["samples_per_s"])
        assert isinstance(drtp["vs_snntorch"], float) or drtp["vs_snntorch"] == "not installed"
    report = {
        "machine": "x86_64",
        "threads": 1,
        "command": "python benchmarks/bench.py",
        "torch": "2.13.0",
        "baseline": "abc1234",
        "rows": rows,
        "revisions": [{"case": "rate epoch", "baseline": 2.0, "current": 1.0, "vs_previous_revision": 2.0}],
    }
    table = "\n".join(bench.markdown(report))
    for row in rows:
        assert f"| {row['case']} | " in table
    assert "| rate epoch | 2.000 | 1.000 | 2.00x |" in table
