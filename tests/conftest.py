from __future__ import annotations

import os

import pytest
import torch

from snn_drtp.core.networks import NetworkSpec, parse_spec

torch.set_num_threads(int(os.environ.get("SNN_DRTP_TEST_THREADS", "1")))


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
