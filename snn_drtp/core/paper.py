"""Numbers from Frenkel, Lefebvre & Bol, "Learning without feedback", Front. Neurosci. 2021.

``LEARNING_RATES`` is Table 3 (Adam, fixed rate from the authors' grid search); ``MNIST_TABLE1``
is Table 1 with Supplementary Table 1's sDFA column (mean and std of the test error in percent
over 10 trials, each the mean of the last 10 of 100 epochs), by topology and dropout. The
synthetic tasks' rate (5e-4) is from the paper's text; ``SYNTH_CLASSIFICATION_FINAL`` is the
final train and test errors of Figure 3 (its caption, panels A and B; Section 2.1.2).
"""

from __future__ import annotations

LEARNING_RATES: dict[tuple[str, str], dict[str, float]] = {
    ("mnist", "fc1"): {"bp": 1.5e-4, "fa": 5e-4, "dfa": 1.5e-4, "sdfa": 5e-4, "drtp": 1.5e-4, "shallow": 1.5e-2},
    ("mnist", "fc2"): {"bp": 5e-4, "fa": 1.5e-4, "dfa": 5e-4, "sdfa": 5e-4, "drtp": 1.5e-4, "shallow": 5e-3},
    ("mnist", "conv-random"): {"bp": 5e-5, "fa": 1.5e-4, "dfa": 5e-5, "sdfa": 5e-4, "drtp": 5e-4, "shallow": 5e-3},
    ("mnist", "conv-trained"): {"bp": 5e-4, "fa": 5e-5, "dfa": 5e-5, "sdfa": 1.5e-4, "drtp": 1.5e-4},
    ("cifar10", "fc1"): {"bp": 1.5e-5, "fa": 1.5e-5, "dfa": 1.5e-5, "sdfa": 5e-5, "drtp": 1.5e-4, "shallow": 1.5e-4},
    ("cifar10", "fc2"): {"bp": 5e-6, "fa": 5e-6, "dfa": 5e-6, "sdfa": 5e-5, "drtp": 5e-5, "shallow": 5e-4},
    ("cifar10", "conv-random"): {
        "bp": 5e-6,
        "fa": 5e-6,
        "dfa": 5e-6,
        "sdfa": 1.5e-4,
        "drtp": 1.5e-4,
        "shallow": 1.5e-3,
    },
    ("cifar10", "conv-trained"): {"bp": 1.5e-4, "fa": 5e-6, "dfa": 5e-6, "sdfa": 1.5e-5, "drtp": 5e-5},
}
SYNTHETIC_LR = 5e-4

DROPOUTS = (0.0, 0.1, 0.25)
"""The dropout probabilities of Table 1's rows (on the input of every fully connected layer)."""
_TABLE1_ROWS: dict[str, dict[str, tuple[tuple[float, float], ...]]] = {
    # Table 1: test error (%) mean, std over 10 trials at DO 0.0, 0.1, 0.25; Supplementary Table 1
    # for sDFA (its DRTP column repeats Table 1's). In ../shared/papers/drtp-frenkel-lefebvre-bol-2021.txt
    # (the paper with its supplementary material; no page numbers): lines 142-157 and 305-313.
    "fc1-500": {
        "bp": ((1.65, 0.06), (1.59, 0.03), (1.76, 0.05)),
        "fa": ((1.71, 0.05), (1.63, 0.05), (1.74, 0.04)),
        "dfa": ((1.76, 0.05), (1.68, 0.03), (1.86, 0.03)),
        "drtp": ((4.61, 0.13), (4.92, 0.13), (5.75, 0.09)),
        "shallow": ((8.25, 0.09), (9.17, 0.11), (10.15, 0.11)),
        "sdfa": ((4.74, 0.15), (5.10, 0.13), (6.06, 0.10)),
    },
    "fc1-1000": {
        "bp": ((1.57, 0.04), (1.48, 0.03), (1.54, 0.04)),
        "fa": ((1.62, 0.05), (1.55, 0.05), (1.56, 0.02)),
        "dfa": ((1.67, 0.03), (1.58, 0.05), (1.63, 0.03)),
        "drtp": ((4.10, 0.07), (4.31, 0.06), (4.94, 0.06)),
        "shallow": ((7.92, 0.10), (9.29, 0.12), (10.01, 0.17)),
        "sdfa": ((4.22, 0.11), (4.42, 0.12), (5.23, 0.12)),
    },
    "fc2-500": {
        "bp": ((1.46, 0.08), (1.46, 0.04), (1.38, 0.04)),
        "fa": ((1.72, 0.04), (1.51, 0.04), (1.69, 0.02)),
        "dfa": ((1.69, 0.06), (1.57, 0.06), (1.52, 0.03)),
        "drtp": ((4.58, 0.09), (5.00, 0.07), (5.94, 0.06)),
        "shallow": ((8.25, 0.10), (9.33, 0.09), (11.01, 0.12)),
        "sdfa": ((4.78, 0.11), (5.16, 0.13), (6.13, 0.10)),
    },
    "fc2-1000": {
        "bp": ((1.50, 0.09), (1.46, 0.02), (1.38, 0.03)),
        "fa": ((1.57, 0.06), (1.46, 0.03), (1.50, 0.05)),
        "dfa": ((1.65, 0.07), (1.57, 0.03), (1.45, 0.03)),
        "drtp": ((4.00, 0.10), (4.25, 0.06), (5.05, 0.09)),
        "shallow": ((7.85, 0.09), (8.73, 0.08), (9.84, 0.05)),
        "sdfa": ((4.24, 0.09), (4.51, 0.12), (5.39, 0.05)),
    },
    "conv-random": {
        "bp": ((1.21, 0.05), (1.25, 0.03), (1.29, 0.04)),
        "fa": ((1.30, 0.06), (1.33, 0.06), (1.32, 0.06)),
        "dfa": ((1.25, 0.08), (1.30, 0.06), (1.33, 0.05)),
        "drtp": ((1.82, 0.11), (2.06, 0.08), (2.60, 0.14)),
        "shallow": ((2.83, 0.19), (4.74, 0.30), (6.49, 0.35)),
        "sdfa": ((1.88, 0.10), (2.17, 0.13), (2.80, 0.17)),
    },
    "conv-trained": {
        "bp": ((0.93, 0.04), (1.03, 0.04), (1.00, 0.03)),
        "fa": ((1.22, 0.06), (1.27, 0.06), (1.29, 0.04)),
        "dfa": ((1.31, 0.06), (1.34, 0.06), (1.40, 0.06)),
        "drtp": ((1.48, 0.15), (1.50, 0.17), (1.81, 0.20)),
        "sdfa": ((1.69, 0.10), (1.83, 0.11), (2.20, 0.15)),
    },
}
MNIST_TABLE1: dict[tuple[str, float], dict[str, tuple[float, float]]] = {
    (topology, dropout): {rule: cells[i] for rule, cells in rules.items()}
    for topology, rules in _TABLE1_ROWS.items()
    for i, dropout in enumerate(DROPOUTS)
}
"""Table 1 and Supplementary Table 1: (topology, dropout) -> rule -> (mean, std) of the test error
in percent over 10 trials, each the mean of the last 10 of 100 epochs. Topologies are the
networks' ``lr_key`` with their width (fc1-500 ... fc2-1000) or conv-random / conv-trained."""
TABLE1_NETWORKS = {
    "fc1-500": "fc1-500",
    "fc1-1000": "fc1-1000",
    "fc2-500": "fc2-500",
    "fc2-1000": "fc2-1000",
    "conv-mnist-random": "conv-random",
    "conv-mnist": "conv-trained",
}
"""This project's network spec for each of Table 1's rows."""
MNIST_RESULTS: dict[str, dict[str, tuple[float, float]]] = {
    network: MNIST_TABLE1[(topology, 0.0)] for network, topology in TABLE1_NETWORKS.items()
}
"""Table 1 at dropout 0.0, by this project's network name."""


SYNTH_CLASSIFICATION_FINAL: dict[str, tuple[float, float]] = {
    "bp": (0.19, 1.85),
    "fa": (0.64, 1.81),
    "dfa": (0.05, 3.48),
    "sdfa": (1.54, 4.07),
    "shallow": (8.95, 9.57),
}
"""Figure 3 (synthetic classification, 256-500-500-10): rule -> (train error, test error) in percent
after 500 epochs, the mean of 10 runs (the caption's panels A and B; no DRTP in this figure)."""


def paper_mnist(network: str, rule: str, dropout: float) -> tuple[float, float] | None:
    """(mean, std) of the paper's MNIST test error (%) for one of this project's networks, or None
    where Table 1 has no such cell."""
    topology = TABLE1_NETWORKS.get(network)
    return None if topology is None else MNIST_TABLE1.get((topology, dropout), {}).get(rule)


def paper_learning_rate(dataset: str, lr_key: str, rule: str) -> float:
    """The paper's Table 3 rate for (dataset, topology, rule); a clear error when it has none."""
    if lr_key == "synth":
        return SYNTHETIC_LR
    family = "cifar10" if dataset.startswith("cifar") else "mnist"
    try:
        return LEARNING_RATES[(family, lr_key)][rule]
    except KeyError:
        raise ValueError(
            f"the paper's Table 3 gives no learning rate for rule {rule!r} on {family}/{lr_key}; pass one with --lr"
        ) from None
