"""A temporal network (one recurrent or feed-forward LIF / ALIF layer and a leaky-integrator
readout, ``snn_drtp.temporal``) as Brian2 objects, with its eligibility traces and the trace
rules' updates as synaptic variables: the Brian2 cross-check of the temporal spiking engine.

Every group holds ``replicas`` copies (replica r simulates example r). One step, in the 'groups'
slot in this order (Brian2's abstract code, float64):

    input        x_i = input(t, i)                                    (0/1, from a TimedArray)
    currents     I_in = sum_i W_ji x_i;  I_rec = sum_l R_jl z_l        (summed variables; z = z(t-1))
    hidden       v = alpha u + I_in + I_rec + b;  a = rho a + z;  d = v - beta a
                 z' = [d >= theta];  psi = surrogate(d);  u = v - theta z';  z_prev = z;  z = z'
    readout      y = kappa y + sum_j W_out z_j + b_out
    softmax      pi_c = exp(y_c) / sum_c' exp(y_c')                    (per replica)
    signal       err_c = w(t) (pi_c - y*_c);  L_j = sum_c B_cj err_c (e-prop) or w(t) (y* B)_j (OSTTP)
    readout's    zbar = kappa zbar + z_j (bbar likewise with 1);  g_out += err_c zbar   (exact)
    update
    traces       per synapse with pre-synaptic p (x_i, z_prev_l or 1):
                 eps_v = alpha (eps_v - r e) + p;  eps_a = rho eps_a + e;  e = psi (eps_v - beta eps_a)
                 ebar = kappa ebar + e;  g += L (ebar or e)

the equations of ``temporal/cells.py``, ``traces.py`` and ``readout.py`` written again as strings.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import brian2 as b2
import numpy as np
import torch

from snn_drtp.rules import Eligibility, Rule, Timing
from snn_drtp.spiking.surrogate import SURROGATE_EXPRESSIONS
from snn_drtp.temporal.engine import TemporalSpikingEngine

INPUT, CURRENT, RECURRENT, HIDDEN, Z_MONITOR, OUT_SUM, READOUT, Y_MONITOR, NORM, BACK, SOFTMAX, SIGNAL, L_SET, TRACE = (
    range(14)
)
"""Orders of the objects in the 'groups' slot of a step."""

TRACE_CODE = """
eps_v = alpha * (eps_v - r * el) + {pre}
eps_a = rho * eps_a + el
el = psi_post * (eps_v - beta_a * eps_a)
ebar = kappa * ebar + el
g += L_post * {elig}
"""
"""A synapse's trace step (pre-synaptic ``pre``) and its update, multiplying e (``el``: Brian2 keeps
the name ``e`` for the constant) or ebar (``elig``)."""
BIAS_TRACE_CODE = """
eps_vb = alpha * (eps_vb - r * eb) + 1
eps_ab = rho * eps_ab + eb
eb = psi * (eps_vb - beta_a * eps_ab)
ebarb = kappa * ebarb + eb
gb += L * {elig}
"""
"""The same for the bias (pre-synaptic 1), held by the hidden neurons."""


@dataclass(frozen=True)
class TemporalSetup:
    """The constants of one temporal network (those of the torch engine's ``Cell`` and readout)."""

    alpha: float
    rho: float
    beta: float
    theta: float
    kappa: float
    reset_in_derivative: float
    surrogate: str
    slope: float


@dataclass
class BrianResult:
    """Hidden spikes z [T, replicas, N], readout y [T, replicas, C], the updates of W [N, I], R [N, N]
    (None without), b [N] and of the readout's W_out [C, N] and b_out [C], summed over replicas."""

    z: np.ndarray
    y: np.ndarray
    W: np.ndarray
    R: np.ndarray | None
    b: np.ndarray
    W_out: np.ndarray
    b_out: np.ndarray


def _within_replicas(
    replicas: int, n_pre: int, n_post: int, self_connections: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Synapse indices joining every unit of replica r below to every unit of replica r above; the
    synapse (r, i_post, j_pre) comes at position (r n_post + i) n_pre + j, so a replica's values
    reshape to [n_post, n_pre] like a weight matrix."""
    r, i, j = np.meshgrid(np.arange(replicas), np.arange(n_post), np.arange(n_pre), indexing="ij")
    keep = np.ones_like(r, dtype=bool) if self_connections else (i != j)
    return (r * n_pre + j)[keep], (r * n_post + i)[keep]


def simulate(
    setup: TemporalSetup,
    W: np.ndarray,
    b: np.ndarray,
    R: np.ndarray | None,
    W_out: np.ndarray,
    b_out: np.ndarray,
    B: np.ndarray,
    x: np.ndarray,
    y_star: np.ndarray,
    loss_weights: np.ndarray,
    signal: str,
    filtered: bool,
) -> BrianResult:
    """One presentation of x [T, replicas, I] (0/1) with targets y* [replicas, C] and loss weights
    w(t) [T]; ``signal`` "error" (e-prop: B^T (pi - y*)) or "label" (OSTTP: B^T y*); ``filtered``:
    the update multiplies ebar (e-prop) instead of e."""
    steps, replicas, n_in = x.shape
    n, classes = W.shape[0], W_out.shape[0]
    b2.start_scope()
    b2.prefs.codegen.target = "numpy"
    dt = 1e-3 * b2.second
    clock = b2.Clock(dt=dt)
    namespace = {
        "alpha": setup.alpha,
        "rho": setup.rho,
        "beta_a": setup.beta,
        "theta": setup.theta,
        "kappa": setup.kappa,
        "r": setup.reset_in_derivative,
        "slope": setup.slope,
        "inputs": b2.TimedArray(x.reshape(steps, replicas * n_in), dt=dt),
        "weight_of_loss": b2.TimedArray(loss_weights, dt=dt),
    }
    inputs = b2.NeuronGroup(replicas * n_in, "x : 1", clock=clock, namespace=namespace, name="inputs")
    inputs.run_regularly("x = inputs(t, i)", when="groups", order=INPUT)
    psi = SURROGATE_EXPRESSIONS[setup.surrogate].replace("v -", "d -")
    hidden = b2.NeuronGroup(
        replicas * n,
        "\n".join(
            f"{name} : 1"
            for name in [
                "v",
                "u",
                "a",
                "z",
                "z_prev",
                "d",
                "psi",
                "b",
                "m",
                "L",
                "I_in",
                "I_rec",
                "L_err",
                "eps_vb",
                "eps_ab",
                "eb",
                "ebarb",
                "gb",
            ]
        ),
        clock=clock,
        namespace=namespace,
        name="hidden",
    )
    hidden.run_regularly(
        "v = alpha * u + I_in + I_rec + b\na = rho * a + z\nd = v - beta_a * a\nz_prev = z\n"
        f"z = int(d >= theta)\npsi = {psi}\nu = v - theta * z",
        when="groups",
        order=HIDDEN,
    )
    set_signal = "L = weight_of_loss(t) * m" if signal == "label" else "L = L_err"
    hidden.run_regularly(set_signal, when="groups", order=L_SET)
    hidden.run_regularly(BIAS_TRACE_CODE.format(elig="ebarb" if filtered else "eb"), when="groups", order=TRACE)
    readout = b2.NeuronGroup(
        replicas * classes,
        "y : 1\nI_out : 1\nb_out : 1\ny_star : 1\nZ : 1\nprob : 1\nerr : 1\nbbar : 1\ng_bout : 1",
        clock=clock,
        namespace=namespace,
        name="readout",
    )
    readout.run_regularly("y = kappa * y + I_out + b_out", when="groups", order=READOUT)
    readout.run_regularly(
        "prob = exp(y) / Z\nerr = weight_of_loss(t) * (prob - y_star)\nbbar = kappa * bbar + 1\ng_bout += err * bbar",
        when="groups",
        order=SOFTMAX,
    )
    norm = b2.NeuronGroup(replicas, "total : 1", clock=clock, namespace=namespace, name="norm")
    synapses = {}
    spec = [
        ("in", inputs, hidden, "w : 1\nI_in_post = w * x_pre : 1 (summed)", CURRENT, n_in, n, True),
        (
            "out",
            hidden,
            readout,
            "w : 1\nzbar : 1\ng : 1\nI_out_post = w * z_pre : 1 (summed)",
            OUT_SUM,
            n,
            classes,
            True,
        ),
        ("sum", readout, norm, "total_post = exp(y_pre) : 1 (summed)", NORM, classes, 1, True),
        ("back", norm, readout, "Z_post = total_pre : 1 (summed)", BACK, 1, classes, True),
        ("signal", readout, hidden, "B : 1\nL_err_post = B * err_pre : 1 (summed)", SIGNAL, classes, n, True),
    ]
    if R is not None:
        spec.append(("rec", hidden, hidden, "w : 1\nI_rec_post = w * z_pre : 1 (summed)", RECURRENT, n, n, False))
    for name, source, target, model, order, n_pre, n_post, self_ok in spec:
        trace_vars = "\neps_v : 1\neps_a : 1\nel : 1\nebar : 1\ng : 1" if name in ("in", "rec") else ""
        syn = b2.Synapses(source, target, model + trace_vars, clock=clock, namespace=namespace, name=f"syn_{name}")
        pre, post = _within_replicas(replicas, n_pre, n_post, self_ok)
        syn.connect(i=pre, j=post)
        for updater in syn.summed_updaters.values():
            updater.when, updater.order = "groups", order
        synapses[name] = syn
    synapses["in"].run_regularly(
        TRACE_CODE.format(pre="x_pre", elig="ebar" if filtered else "el"), when="groups", order=TRACE
    )
    if R is not None:
        synapses["rec"].run_regularly(
            TRACE_CODE.format(pre="z_prev_pre", elig="ebar" if filtered else "el"), when="groups", order=TRACE
        )
    synapses["out"].run_regularly("zbar = kappa * zbar + z_pre\ng += err_post * zbar", when="groups", order=TRACE)
    synapses["in"].w = np.tile(W, (replicas, 1, 1)).ravel()
    synapses["out"].w = np.tile(W_out, (replicas, 1, 1)).ravel()
    synapses["signal"].B = np.tile(B.T, (replicas, 1, 1)).ravel()  # [r, post j, pre c] = B[c, j]
    if R is not None:
        off = ~np.eye(n, dtype=bool)
        synapses["rec"].w = np.tile(R[off].reshape(n, n - 1), (replicas, 1, 1)).ravel()
    hidden.b = np.tile(b, replicas)
    hidden.m = (y_star @ B).ravel()
    readout.b_out = np.tile(b_out, replicas)
    readout.y_star = y_star.ravel()
    z_mon = b2.StateMonitor(hidden, "z", record=True, when="groups", order=Z_MONITOR)
    y_mon = b2.StateMonitor(readout, "y", record=True, when="groups", order=Y_MONITOR)
    network = b2.Network(inputs, hidden, readout, norm, *synapses.values(), z_mon, y_mon)
    network.run(steps * dt, namespace=namespace)
    z = np.asarray(z_mon.z).T.reshape(steps, replicas, n)
    y = np.asarray(y_mon.y).T.reshape(steps, replicas, classes)
    g_in = np.asarray(synapses["in"].g).reshape(replicas, n, n_in).sum(0)
    g_rec = None
    if R is not None:
        g_rec = np.zeros((n, n))
        g_rec[~np.eye(n, dtype=bool)] = np.asarray(synapses["rec"].g).reshape(replicas, n * (n - 1)).sum(0)
    g_b = np.asarray(hidden.gb).reshape(replicas, n).sum(0)
    g_out = np.asarray(synapses["out"].g).reshape(replicas, classes, n).sum(0)
    g_bout = np.asarray(readout.g_bout).reshape(replicas, classes).sum(0)
    return BrianResult(z, y, g_in, g_rec, g_b, g_out, g_bout)


def crosscheck(engine: TemporalSpikingEngine, x: torch.Tensor, y_star: torch.Tensor, rule: Rule) -> dict[str, Any]:
    """One presentation of a one-hidden-layer temporal network in the torch engine and in Brian2:
    whether the hidden spikes are identical, the largest difference of the readout y(t), and of the
    hidden layer's update under ``rule`` (one that projects with B_k: a label-timed rule's signal is
    w(t) (y* B_k), an output-timed one's w(t) (pi(t) - y*) B_k, as OSTTP and e-prop; the trace or
    its filtered form as the rule's ``eligibility`` says) and of the readout's, each relative to its
    largest entry."""
    params = engine.params
    if params.n_layers != 2:
        raise ValueError(
            f"the Brian2 temporal cross-check takes one hidden layer; network {params.spec.name} has "
            f"{params.n_layers - 1}"
        )
    cell = engine.cells[0]
    setup = TemporalSetup(
        cell.alpha,
        cell.rho,
        cell.beta,
        cell.threshold,
        engine.kappa,
        cell.reset_in_derivative,
        cell.surrogate,
        cell.slope,
    )
    x64, y64 = x.detach().double().cpu(), y_star.detach().double().cpu()
    steps, batch = x64.shape[0], x64.shape[1]
    hidden, out = params.layers[0], params.layers[1]

    def array(t: torch.Tensor) -> np.ndarray:
        values: np.ndarray = t.detach().double().cpu().numpy()
        return values

    weights = engine.options.readout.weights(steps, batch, torch.float64, torch.device("cpu")).numpy()
    result = simulate(
        setup,
        array(hidden.weight),
        array(hidden.bias),
        None if hidden.recurrent is None else array(hidden.recurrent),
        array(out.weight),
        array(out.bias),
        array(params.feedback(1)),
        x64.reshape(steps, batch, -1).numpy(),
        y64.numpy(),
        weights,
        "label" if rule.timing is Timing.LABEL else "error",
        rule.eligibility is Eligibility.FILTERED,
    )
    z: list[torch.Tensor] = []
    y: list[torch.Tensor] = []
    twin = type(engine)(copy.deepcopy(params).double(), engine.options)  # the engine's own parameters untouched
    twin.simulate(x64, lambda k, spikes, _v: (z if k == 1 else y).append(spikes.clone()))
    grads, _ = twin._learn(x64, y64, rule, None, all_hidden=True)
    copied, copied_out = twin.params.layers[0], twin.params.layers[1]
    ours = {"W": grads[copied.weight], "b": grads[copied.bias]}
    ours |= {"W_out": grads[copied_out.weight], "b_out": grads[copied_out.bias]}
    theirs = {"W": result.W, "b": result.b, "W_out": result.W_out, "b_out": result.b_out}
    if copied.recurrent is not None and result.R is not None:
        ours["R"], theirs["R"] = grads[copied.recurrent], result.R

    def relative(key: str) -> float:
        scale = float(ours[key].abs().max()) or 1.0
        return float(np.abs(ours[key].numpy() - theirs[key]).max()) / scale

    return {
        "spikes_identical": bool(np.array_equal(torch.stack(z).numpy(), result.z)),
        "hidden_spikes": int(result.z.sum()),
        "readout_max_difference": float(np.abs(torch.stack(y).numpy() - result.y).max()),
        "update_max_relative_difference": {key: relative(key) for key in ours},
    }
