"""Every Python block of the README runs on its own, as a reader would paste it: in a fresh
namespace, from an empty working folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from snn_drtp.rules.base import _REGISTRY

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.slow
@pytest.mark.mnist
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Executed in this process (its imports are already loaded), in a namespace of its own; the
    rules it registers and the thread count it sets are undone afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("snn_drtp.rules.base._REGISTRY", dict(_REGISTRY))
    threads = torch.get_num_threads()
    code = compile(BLOCKS[index], f"README.md python block {index}", "exec")
    try:
        exec(code, {"__name__": "__main__"})
    finally:
        torch.set_num_threads(threads)
