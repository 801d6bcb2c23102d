"""The paper's alignment theorem (Supplementary Note 1) as a property test, extended from one
training example to one example per class.

Setting of the proof: linear hidden layers, zero-initialised weights (no biases), sigmoid output
with binary cross-entropy, DRTP updates by SGD. For a single example any fixed third factor
aligns with BP (the network learns to use whatever direction its hidden layers move along), so the
single-example statement cannot tell DRTP from a label-independent vector. With one orthogonal
example per class it can: when B_k's rows are orthogonal, layer k's representation of class c
stays a negative multiple of row c of B_k, and BP's signal for an example of class c then has a
positive component along DRTP's, the dot product of two errors whose signs are fixed by the
same label (e_c = sigmoid(z_c) - y*_c < 0 exactly at c = c*). A third factor that does not select
by the label (ones @ B_k) or selects against it ((1 - y*) @ B_k) breaks this, and hypothesis
finds the examples where its signal points away from BP's.
"""

import torch
from conftest import tiny_spec
from hypothesis import given, settings
from hypothesis import strategies as st

from snn_drtp.core.metrics import angle_degrees
from snn_drtp.core.params import Params
from snn_drtp.rate.engine import RateEngine
from snn_drtp.rules import get_rule


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    depth=st.integers(1, 3),
    n_out=st.integers(2, 10),
    extra_width=st.lists(st.integers(0, 10), min_size=3, max_size=3),
    extra_inputs=st.integers(0, 5),
    n_classes_seen=st.integers(1, 10),
    seed=st.integers(0, 10_000),
    lr=st.sampled_from([1e-2, 1e-1, 0.3]),
)
def test_drtp_signal_within_90_degrees_of_bp_for_every_example(
    depth, n_out, extra_width, extra_inputs, n_classes_seen, seed, lr
):
    widths = tuple(n_out + extra for extra in extra_width[:depth])
    n_in = n_out + extra_inputs
    params = Params(tiny_spec(("linear",) * depth, widths, n_in, n_out), seed=seed, zero_init=True).double()
    for k in range(1, depth + 1):
        B = params.feedback(k)
        q, _ = torch.linalg.qr(B.T)
        B.copy_(q.T * B.norm(dim=1, keepdim=True))
    engine = RateEngine(params)
    g = torch.Generator().manual_seed(seed)
    n = min(n_classes_seen, n_out)
    q, _ = torch.linalg.qr(torch.randn(n_in, n_in, generator=g, dtype=torch.float64))
    x = q[:n].reshape(n, 1, 1, n_in)
    y_star = torch.eye(n_out, dtype=torch.float64)[torch.randperm(n_out, generator=g)[:n]]
    opt = torch.optim.SGD([layer.weight for layer in params.layers], lr=lr)
    checked = 0
    for _ in range(depth + 8):
        drtp = engine.learning_signals(x, y_star, get_rule("drtp"))
        bp = engine.learning_signals(x, y_star, get_rule("bp"))
        for d, b in zip(drtp, bp, strict=True):
            for i in range(n):
                if b[i].norm() > 0:
                    assert angle_degrees(d[i], b[i]) < 90.0
                    checked += 1
        engine.train_step(x, y_star, get_rule("drtp"))
        opt.step()
    assert checked > 0
