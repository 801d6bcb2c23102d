"""e-prop's filtered factorised trace folded a chunk of K steps at a time gives the update of the
step-by-step recursion, written here:

    pbar(t) = alpha pbar(t-1) + p(t),  ebar_bji(t) = kappa ebar_bji(t-1) + psi_bj(t) pbar_bi(t),
    U_ji = sum_t sum_b L_bj(t) ebar_bji(t)

for any K (dividing T or not), with steps that carry no learning signal, and whether or not the
eligibility is read in between (``current()``, which folds the chunk early)."""

from __future__ import annotations

import math

import pytest
import torch

from snn_drtp.rules import Eligibility
from snn_drtp.temporal.cells import Cell
from snn_drtp.temporal.traces import Trace

T, B, N, P = 23, 3, 4, 5
ALPHA, KAPPA = math.exp(-1 / 10), math.exp(-1 / 15)


def sequence(seed=0):
    gen = torch.Generator().manual_seed(seed)
    pre = (torch.rand(T, B, P, generator=gen) < 0.4).double()
    psi = torch.rand(T, B, N, generator=gen, dtype=torch.float64)
    signal = torch.randn(T, B, N, generator=gen, dtype=torch.float64)
    signal[:7] = 0.0  # steps before the loss window: no signal at all (learn() not called)
    return pre, psi, signal


def reference(pre, psi, signal):
    pbar = torch.zeros(B, P, dtype=torch.float64)
    ebar = torch.zeros(B, N, P, dtype=torch.float64)
    U = torch.zeros(N, P, dtype=torch.float64)
    history = []
    for t in range(T):
        pbar = ALPHA * pbar + pre[t]
        ebar = KAPPA * ebar + psi[t][:, :, None] * pbar[:, None, :]
        history.append(ebar.clone())
        for b in range(B):
            U += signal[t, b][:, None] * ebar[b]
    return U, torch.stack(history)


def cell():
    return Cell.from_times(True, 1.0, 10.0, 0.0, 0.0, threshold=1.0, surrogate="fast_sigmoid", slope=4.0)


@pytest.mark.parametrize("chunk", [1, 2, 5, 23, 64])
@pytest.mark.parametrize("read", [False, True], ids=["unread", "read-every-step"])
@pytest.mark.parametrize("parts", [1, 2], ids=["one-signal", "signal-in-two-parts"])
def test_chunked_filtered_trace_update_is_the_step_by_step_update(chunk, read, parts):
    """``parts`` = 2: a step's signal L(t) given in two calls, 0.25 L(t) then 0.75 L(t), adds up."""
    pre, psi, signal = sequence()
    expected, history = reference(pre, psi, signal)
    lif = cell()
    assert math.isclose(lif.alpha, ALPHA) and lif.reset_in_derivative == 0.0 and not lif.adaptive
    trace = Trace(lif, Eligibility.FILTERED, KAPPA, (B, N, P), pre, chunk)
    assert trace.chunks is not None  # the chunked path runs
    for t in range(T):
        trace.step(pre[t], psi[t])
        if read:
            torch.testing.assert_close(trace.current(), history[t], rtol=1e-12, atol=1e-12)
        if t >= 7:
            for share in [1.0] if parts == 1 else [0.25, 0.75]:
                trace.learn(share * signal[t])
    torch.testing.assert_close(trace.total(), expected, rtol=1e-12, atol=1e-12)
