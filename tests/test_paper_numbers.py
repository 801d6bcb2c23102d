"""The paper's Table 1 and Supplementary Table 1 as transcribed in snn_drtp.core.paper, read back
from the paper's text (where ../shared/papers holds it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from snn_drtp.core.paper import DROPOUTS, MNIST_TABLE1, SYNTH_CLASSIFICATION_FINAL, paper_mnist

PAPER = Path(__file__).resolve().parents[2] / "shared/papers/drtp-frenkel-lefebvre-bol-2021.txt"
CELL = re.compile(r"(\d+\.\d+)\s*(?:±|\{\\pm\}|\\pm)\s*(\d+\.\d+)")
ROWS = {
    "FC1-500": "fc1-500",
    "FC1-1000": "fc1-1000",
    "FC2-500": "fc2-500",
    "FC2-1000": "fc2-1000",
    "CONV (random)": "conv-random",
    "CONV (trained)": "conv-trained",
}


def table_rows(lines: list[str]) -> dict[str, list[tuple[float, float]]]:
    """Each topology's cells in reading order (column by column, DO 0.0, 0.1, 0.25 within each)."""
    found = {}
    for line in lines:
        for name, topology in ROWS.items():
            if line.startswith(name + "\t"):
                found[topology] = [(float(m), float(s)) for m, s in CELL.findall(line)]
    return found


@pytest.mark.skipif(not PAPER.exists(), reason="the paper's text is in ../shared/papers")
def test_table1_and_supplementary_table1_match_the_paper_text():
    text = PAPER.read_text().splitlines()
    table1 = table_rows(text[140:160])
    supplementary = table_rows(text[304:314])
    assert set(table1) == set(supplementary) == set(ROWS.values())
    for topology, cells in table1.items():
        rules = ["bp", "fa", "dfa", "drtp"] + (["shallow"] if topology != "conv-trained" else [])
        assert len(cells) == 3 * len(rules), topology
        for r, rule in enumerate(rules):
            for d, dropout in enumerate(DROPOUTS):
                assert MNIST_TABLE1[(topology, dropout)][rule] == cells[3 * r + d], (topology, rule, dropout)
    for topology, cells in supplementary.items():
        for r, rule in enumerate(["sdfa", "drtp"]):
            for d, dropout in enumerate(DROPOUTS):
                assert MNIST_TABLE1[(topology, dropout)][rule] == cells[3 * r + d], (topology, rule, dropout)


def test_cells_by_network_name():
    assert paper_mnist("fc1-500", "drtp", 0.0) == (4.61, 0.13)
    assert paper_mnist("conv-mnist", "bp", 0.1) == (1.03, 0.04)
    assert paper_mnist("conv-mnist-random", "sdfa", 0.25) == (2.80, 0.17)
    assert paper_mnist("conv-mnist", "shallow", 0.0) is None
    assert paper_mnist("nmnist-conv", "drtp", 0.0) is None


@pytest.mark.skipif(not PAPER.exists(), reason="the paper's text is in ../shared/papers")
def test_figure3_final_errors_match_the_caption():
    caption = next(line for line in PAPER.read_text().splitlines() if line.startswith("Figure 3:"))
    names = {"bp": "BP", "fa": "FA", "dfa": "DFA", "sdfa": "sDFA", "shallow": "shallow learning"}
    train = caption.split("(A)")[1].split("(B)")[0]
    test = caption.split("(B)")[1].split("(C)")[0]
    for rule, name in names.items():
        for panel, value in zip((train, test), SYNTH_CLASSIFICATION_FINAL[rule], strict=True):
            assert re.search(rf"\b{value:.2f}% for {name}\b", panel), (rule, value)
    assert set(SYNTH_CLASSIFICATION_FINAL) == set(names)
