"""Numbers from Frenkel, Lefebvre & Bol, "Learning without feedback", Front. Neurosci. 2021.

``LEARNING_RATES`` is Table 3 (Adam, fixed rate from the authors' grid search); ``MNIST_RESULTS``
is Table 1 at dropout 0.0 (mean and std of the test error in percent over 10 trials, each the
mean of the last 10 of 100 epochs). The synthetic tasks' rate (5e-4) is from the paper's text.
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

MNIST_RESULTS: dict[str, dict[str, tuple[float, float]]] = {
    "fc1-500": {
        "bp": (1.65, 0.06),
        "fa": (1.71, 0.05),
        "dfa": (1.76, 0.05),
        "sdfa": (4.74, 0.15),
        "drtp": (4.61, 0.13),
        "shallow": (8.25, 0.09),
    },
}


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
