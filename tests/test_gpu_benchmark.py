"""benchmarks/gpu.py runs on the CPU at a tiny size: every case, this project's runs measured, the
optional libraries measured or reported as not installed, and the report written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "gpu_benchmark", Path(__file__).resolve().parents[1] / "benchmarks/gpu.py"
)
assert _SPEC is not None and _SPEC.loader is not None
gpu = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gpu)


@pytest.mark.slow
def test_gpu_benchmark_runs_on_the_cpu_at_a_tiny_size(tmp_path: Path) -> None:
    report = gpu.main(["--device", "cpu", "--size", "tiny", "--threads", "1", "--out", str(tmp_path / "gpu")])
    assert json.loads((tmp_path / "gpu.json").read_text())["cases"] == json.loads(json.dumps(report["cases"]))
    assert "# GPU benchmark on" in (tmp_path / "gpu.md").read_text()
    cases = report["cases"]
    assert set(cases) == {"fc", "conv", "open-neuromorphic", "memory"}
    for case in ("fc", "conv"):
        results = cases[case]["results"]
        assert results["ours DRTP"] > 0 and results["ours BPTT"] > 0
        for library, module in (("snnTorch BPTT", "snntorch"), ("norse BPTT", "norse")):
            installed = importlib.util.find_spec(module) is not None
            assert (results[library] > 0) if installed else (results[library] == "not installed")
    steps = cases["open-neuromorphic"]["results"]["ours DRTP, 64 neurons"]
    assert steps["seconds"] > 0 and steps["peak_mb"] is None  # no GPU memory on the CPU
    assert set(cases["memory"]["results"]) == {"DRTP, T = 4", "BPTT, T = 4", "DRTP, T = 8", "BPTT, T = 8"}


def test_unknown_cases_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown cases \['gpu'\]; choose from fc, conv"):
        gpu.run("cpu", "tiny", cases=("gpu",))
