"""The paper's alignment theorem (Supplementary Note 1) as a property test: with linear hidden
layers, zero-initialised weights and training by SGD on a single example, DRTP's modulatory
signal delta z_k stays within 90 degrees of BP's in every hidden layer."""

import torch
from conftest import tiny_spec
from hypothesis import given, settings
from hypothesis import strategies as st

from snn_drtp.rate.network import RateNetwork
from snn_drtp.rules import Rule, angle_degrees


@settings(max_examples=40, deadline=None)
@given(
    widths=st.lists(st.integers(2, 12), min_size=1, max_size=3),
    n_in=st.integers(2, 12),
    n_out=st.integers(2, 10),
    label=st.integers(0, 9),
    seed=st.integers(0, 10_000),
    lr=st.sampled_from([1e-3, 1e-2, 1e-1]),
)
def test_drtp_signal_within_90_degrees_of_bp(widths, n_in, n_out, label, seed, lr):
    spec = tiny_spec(tuple("linear" for _ in widths), tuple(widths), n_in, n_out)
    net = RateNetwork(spec, seed=seed, zero_init=True).double()
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, 1, n_in, generator=g, dtype=torch.float64) + 0.1
    y_star = torch.zeros(1, n_out, dtype=torch.float64)
    y_star[0, label % n_out] = 1.0
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    checked = 0
    for _ in range(len(widths) + 4):
        drtp = net.modulatory_signals(x, y_star, Rule("drtp"))
        bp = net.modulatory_signals(x, y_star, Rule("bp"))
        for d, b in zip(drtp, bp, strict=True):
            if b.norm() > 1e-12:
                assert angle_degrees(d, b) < 90.0
                checked += 1
        opt.zero_grad(set_to_none=True)
        net.step(x, y_star, Rule("drtp"))
        opt.step()
    assert checked > 0
