"""The LIF network of a spec as Brian2 objects: the equations as strings and the schedule that
makes Brian2 compute, step for step, what the PyTorch spiking engine computes.

Every layer k is one :class:`brian2.NeuronGroup` of ``replicas x N_k`` neurons (replica r simulates
example r of a batch; neuron r N_k + i is unit i) with

    dv/dt = (drive - v) / tau_mem        (unless refractory; integrated exactly: 'exact')
    drive = b + I                        (tau_syn = 0)
    drive = i_syn,  i_syn <- beta i_syn + b + I   (tau_syn > 0, beta = exp(-dt / tau_syn))

where I is this step's synaptic input sum_j W_kij s_{k-1,j}(t) (held constant over the step, so
'exact' gives v[t] = alpha v[t-1] + (1 - alpha) drive, alpha = exp(-dt / tau_mem), the torch
engine's update). A neuron spikes when v >= theta; the reset subtracts theta (or sets v = 0).
With ``refractory`` = R steps the neuron ignores its input for the R steps after a spike with v held
at 0: Brian2's refractory period counts the spike's own step, so it is (R + 1) dt, and the reset
sets v = 0 (the torch engine's v after a subtractive reset is multiplied by 0 on the next step).

Each layer's :class:`brian2.Synapses` connect replica r of layer k-1 to replica r of layer k
(``w`` = W_kij in every replica) and hold the dropout factor ``mask`` of their pre-synaptic unit,
the pre-synaptic trace ``trace`` (tau_pre > 0) and the eligibility ``g``. The post factor
post = psi(v) (0 while refractory) is stored by every neuron right after its membrane update,
*before* the threshold and reset, and the third factor ``m`` per neuron per example (B_k^T y* for
DRTP, set before the presentation; 1 in the output layer, whose error comes at the end) turns it
into ``g += m_post post_post pre`` at the end of every step.

Schedule of one step (Brian2's slots 'start', 'groups', 'end'; within 'groups' layer after layer,
so spikes reach the next layer in the same step, as in the torch engine):

    start:  I = 0; trace *= gamma
    groups: input spikes; for k = 1..K: synaptic current (I_post += w mask; trace += mask),
            i_syn, membrane update, post = psi(v), [monitors], threshold, reset;
            then the running error and m of update-locked rules (DFA, sDFA)
    end:    g += m_post post_post pre, gb += m post
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import brian2 as b2
import numpy as np

from snn_drtp.spiking.options import SpikingOptions
from snn_drtp.spiking.surrogate import SURROGATE_EXPRESSIONS

LAYER_STRIDE = 10
"""Schedule orders of layer k's objects in the 'groups' slot start at k * LAYER_STRIDE."""
CURRENT, CHARGE, UPDATE, POST, MONITOR, THRESHOLD, RESET = range(7)


def neuron_equations(options: SpikingOptions) -> str:
    """The LIF equations of one layer (see the module docstring)."""
    refractory = " (unless refractory)" if options.neuron.refractory > 0 else ""
    drive = "drive = i_syn : 1\ni_syn : 1" if options.neuron.tau_syn > 0 else "drive = b + I : 1"
    return "\n".join(
        [
            f"dv/dt = (drive - v) / tau_mem : 1{refractory}",
            drive,
            "I : 1",
            "b : 1",
            "m : 1",
            "post : 1",
            "gb : 1",
            "count : 1",
            "vsum : 1",
        ]
    )


def post_code(options: SpikingOptions) -> str:
    """post = psi(v) at the membrane potential before the reset, 0 while refractory; vsum += v."""
    psi = SURROGATE_EXPRESSIONS[options.surrogate]
    gate = "int(not_refractory) * " if options.neuron.refractory > 0 else ""
    return f"post = {gate}({psi})\nvsum += v"


def reset_code(options: SpikingOptions) -> str:
    """Subtract theta or set v = 0 (always 0 with a refractory period: v is held at 0 after it)."""
    to_zero = options.neuron.reset == "zero" or options.neuron.refractory > 0
    return ("v = 0" if to_zero else "v = v - theta") + "\ncount += 1"


@dataclass
class BrianLayer:
    """Layer k's objects: its neurons, the synapses into them and its spike monitor (if recorded)."""

    neurons: b2.NeuronGroup
    synapses: b2.Synapses
    n_in: int
    n_out: int
    monitor: b2.SpikeMonitor | None
    v_monitor: b2.StateMonitor | None


class BrianNetwork:
    """The Brian2 objects of a dense LIF network for ``replicas`` examples at once."""

    def __init__(self, sizes: list[int], options: SpikingOptions, replicas: int, record: bool = False):
        neuron = options.neuron
        self.options, self.replicas, self.sizes = options, replicas, sizes
        self.clock = b2.Clock(dt=neuron.dt * b2.second)
        self.namespace = {
            "tau_mem": neuron.tau_mem * b2.second,
            "theta": neuron.threshold,
            "slope": options.slope,
            "beta": neuron.beta,
            "gamma": options.gamma,
        }
        self.input = b2.SpikeGeneratorGroup(
            replicas * sizes[0], [], [] * b2.second, clock=self.clock, when="groups", order=LAYER_STRIDE - 1
        )
        self.input_monitor = b2.SpikeMonitor(self.input) if record else None
        self.layers: list[BrianLayer] = []
        objects: list[object] = [self.input]
        source = self.input
        for k, (n_in, n_out) in enumerate(pairwise(sizes), start=1):
            layer = self._layer(k, source, n_in, n_out, record)
            self.layers.append(layer)
            objects += [layer.neurons, layer.synapses]
            objects += [mon for mon in (layer.monitor, layer.v_monitor) if mon is not None]
            source = layer.neurons
        if self.input_monitor is not None:
            objects.append(self.input_monitor)
        self.network = b2.Network(*objects)

    def _layer(self, k: int, source: b2.Group, n_in: int, n_out: int, record: bool) -> BrianLayer:
        options, replicas = self.options, self.replicas
        order = k * LAYER_STRIDE
        refractory = (options.neuron.refractory + 1) * options.neuron.dt * b2.second
        neurons = b2.NeuronGroup(
            replicas * n_out,
            neuron_equations(options),
            threshold="v >= theta",
            reset=reset_code(options),
            refractory=refractory if options.neuron.refractory > 0 else False,
            method="exact",
            clock=self.clock,
            namespace=self.namespace,
            name=f"layer{k}",
        )
        neurons.state_updater.when, neurons.state_updater.order = "groups", order + UPDATE
        neurons.thresholder["spike"].when, neurons.thresholder["spike"].order = "groups", order + THRESHOLD
        neurons.resetter["spike"].when, neurons.resetter["spike"].order = "groups", order + RESET
        neurons.run_regularly("I = 0", when="start", name=f"layer{k}_clear")
        if options.neuron.tau_syn > 0:
            neurons.run_regularly(
                "i_syn = beta * i_syn + b + I", when="groups", order=order + CHARGE, name=f"layer{k}_charge"
            )
        neurons.run_regularly(post_code(options), when="groups", order=order + POST, name=f"layer{k}_post")
        neurons.run_regularly("gb += m * post", when="end", name=f"layer{k}_bias_update")

        traced = options.tau_pre > 0
        current = "I_post += w * mask" + ("\ntrace += mask" if traced else "")
        on_pre = {"current": current}
        if not traced:
            on_pre["learn"] = "g += m_post * post_post * mask"
        synapses = b2.Synapses(
            source,
            neurons,
            "w : 1\nmask : 1\ng : 1" + ("\ntrace : 1" if traced else ""),
            on_pre=on_pre,
            delay={name: 0 * b2.second for name in on_pre},
            clock=self.clock,
            namespace=self.namespace,
            name=f"synapses{k}",
        )
        synapses.current.when, synapses.current.order = "groups", order + CURRENT
        if traced:
            synapses.run_regularly("trace = gamma * trace", when="start", name=f"synapses{k}_decay")
            synapses.run_regularly("g += m_post * post_post * trace", when="end", name=f"synapses{k}_learn")
        else:
            synapses.learn.when = "end"
        # Synapse s = (r N_k + i) N_{k-1} + j joins unit j of replica r below to unit i of replica r,
        # so g of a replica reshapes to [N_k, N_{k-1}] like W_k.
        r, i, j = np.meshgrid(np.arange(replicas), np.arange(n_out), np.arange(n_in), indexing="ij")
        synapses.connect(i=(r * n_in + j).ravel(), j=(r * n_out + i).ravel())
        monitor = v_monitor = None
        if record:
            monitor = b2.SpikeMonitor(neurons, name=f"layer{k}_spikes")
            v_monitor = b2.StateMonitor(
                neurons, "v", record=True, when="groups", order=order + MONITOR, name=f"layer{k}_v"
            )
        return BrianLayer(neurons, synapses, n_in, n_out, monitor, v_monitor)

    def reset(self) -> None:
        """Zero every state variable and accumulator (a new presentation)."""
        for layer in self.layers:
            group = layer.neurons
            group.v = 0
            group.I = 0
            group.count = 0
            group.vsum = 0
            group.gb = 0
            group.post = 0
            if self.options.neuron.tau_syn > 0:
                group.i_syn = 0
            if self.options.neuron.refractory > 0:
                group.lastspike = -1e4 * b2.second
                group.not_refractory = True
            layer.synapses.g = 0
            if self.options.tau_pre > 0:
                layer.synapses.trace = 0

    def set_input(self, spikes: np.ndarray) -> None:
        """Input spikes [T, replicas, N_0] (0/1) from the current time on."""
        t, r, j = np.nonzero(spikes)
        start = self.network.t / b2.second
        times = (start + t * self.options.neuron.dt) * b2.second
        self.input.set_spikes((r * self.sizes[0] + j).astype(np.int64), times)

    def run(self, steps: int) -> None:
        self.network.run(steps * self.options.neuron.dt * b2.second)
