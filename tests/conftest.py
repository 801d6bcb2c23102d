from __future__ import annotations

import os

import pytest
import torch

from snn_drtp.core.networks import NetworkSpec, parse_spec

torch.set_num_threads(int(os.environ.get("SNN_DRTP_TEST_THREADS", "1")))

SMALL_SPEC = """name = "small"
input_shape = [1, 16, 16]
[[layers]]
kind = "dense"
units = 12
[[layers]]
kind = "dense"
units = 10
activation = "sigmoid"
[neuron]
tau_mem = 5e-3
threshold = 0.3
"""
"""A 256-12-10 network spec as a TOML text (the synthetic classification task's input), for tests
that write spec files."""


def tiny_spec(
    activations: tuple[str, ...] = ("tanh", "tanh"),
    widths: tuple[int, ...] = (4, 3),
    n_in: int = 5,
    n_out: int = 2,
    output: str = "sigmoid",
    neuron: dict | None = None,
) -> NetworkSpec:
    layers = [{"kind": "dense", "units": w, "activation": a} for w, a in zip(widths, activations, strict=True)]
    layers.append({"kind": "dense", "units": n_out, "activation": output})
    return parse_spec({"name": "tiny", "input_shape": [1, 1, n_in], "layers": layers, "neuron": neuron or {}})


@pytest.fixture
def tiny() -> NetworkSpec:
    return tiny_spec()
