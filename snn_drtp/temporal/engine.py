"""The temporal engines: recurrent networks of LIF / ALIF neurons (``TemporalSpikingEngine``) or of
leaky tanh units with the same topology, time constants and B_k (``TemporalRateEngine``, the rate
twin), with a leaky-integrator readout (``readout.py``), trained online in time.

One loop serves every rule. At each step t, layer after layer, the current, the cell's step
(``cells.py``) and, when the rule learns from an eligibility, the trace's step (``traces.py``);
then the readout y(t), its error dE/dy(t) = w(t) (pi(t) - y*(t)) and the updates

    dE/dW_K += dE/dy(t)^T zbar(t)                   (the readout, exact)
    dE/dW_k += sum_n L_k(t)[n] elig_k(t)[n],        L_k(t) = w(t) m_k(t)

with m_k(t) from the rule at the moment its timing allows: from the label before the first step
(OSTTP, DRTP: m_k = B_k^T y*(t)), from the error of step t (e-prop: B_k^T (pi(t) - y*(t)), or
W_out^T for the symmetric variant; DFA), and elig_k what the rule's ``eligibility`` says: the trace
e_k(t), its readout-filtered ebar_k(t), or the present step only. Nothing is kept over time but
the states and traces, so memory does not grow with T. Rules with a backward sweep run exact BPTT:
the same loop with surrogate spikes under autograd, E.backward() at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from snn_drtp.core.engines import StepResult
from snn_drtp.core.params import LayerParams, Params
from snn_drtp.rules import Eligibility, LayerView, Rule, Timing, check_rule
from snn_drtp.spiking.inputs import SpikeTrain
from snn_drtp.spiking.neuron import LIFParams
from snn_drtp.spiking.surrogate import SURROGATES
from snn_drtp.temporal.cells import Cell, CellState, SpikeFn, cell_step, heaviside, surrogate_spike
from snn_drtp.temporal.readout import ReadoutParams, step_targets
from snn_drtp.temporal.traces import Trace

TemporalMonitor = Callable[[int, torch.Tensor, torch.Tensor], None]
"""monitor(k, z [N, N_k], v [N, N_k]) at every step for hidden layers k, and (K, y, y) for the readout."""


@dataclass(frozen=True)
class TemporalOptions:
    """``neuron``: dt, tau_mem and the threshold theta of every hidden layer; ``surrogate`` and
    ``slope``: psi; ``detach_reset``: the reset left out of derivatives (traces and BPTT alike);
    ``readout``: the readout's time constant and loss window; ``chunk_steps``: the steps e-prop's
    filtered factorised trace buffers before folding them into its [B, N, P] ebar (the same
    update; memory chunk_steps x B x (2 N + P) beside ebar, whatever T)."""

    neuron: LIFParams = field(default_factory=LIFParams)
    surrogate: str = "fast_sigmoid"
    slope: float = 4.0
    detach_reset: bool = True
    readout: ReadoutParams = field(default_factory=ReadoutParams)
    chunk_steps: int = 32

    def __post_init__(self) -> None:
        if self.chunk_steps < 1:
            raise ValueError(f"chunk_steps (steps e-prop's trace buffers) must be >= 1, got {self.chunk_steps}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {', '.join(SURROGATES)}, got {self.surrogate!r}")
        if not self.slope > 0:
            raise ValueError(f"surrogate slope must be > 0, got {self.slope}")


@dataclass
class Learning:
    """What a presentation learns: the rule (None: nothing) and which hidden layers (1-based)."""

    rule: Rule | None
    hidden: set[int]
    readout: bool


class TemporalEngine:
    """A temporal network over a :class:`Params` whose hidden layers are ``dense`` (feed-forward)
    or ``recurrent`` and whose output layer is a ``readout``."""

    name: ClassVar[str]
    spiking: ClassVar[bool]
    numbers_version: ClassVar[int] = 1
    exact_reference: ClassVar[str] = "BPTT"
    signal_batch: ClassVar[int | None] = 100
    input_layout: ClassVar[str] = "time"
    timings: ClassVar[frozenset[Timing]] = frozenset(Timing)

    def __init__(self, params: Params, options: TemporalOptions | None = None):
        spec = params.spec
        if spec.layers[-1].kind != "readout":
            raise ValueError(
                f'network {spec.name}: a temporal engine needs a readout output layer (kind = "readout"), '
                f"got {spec.layers[-1].kind!r}"
            )
        wrong = [i for i, layer in enumerate(spec.layers[:-1]) if layer.kind not in ("dense", "recurrent")]
        if wrong:
            raise ValueError(
                f"network {spec.name}: layer {wrong[0]} is {spec.layers[wrong[0]].kind!r}; the temporal engines "
                "simulate dense and recurrent hidden layers"
            )
        self.params = params
        self.options = options or TemporalOptions(
            neuron=LIFParams.from_dict(spec.neuron), readout=ReadoutParams.from_dict(spec.readout)
        )
        n = self.options.neuron
        self.cells = [
            Cell.from_times(
                self.spiking,
                n.dt,
                n.tau_mem,
                layer.spec.tau_adapt,
                layer.spec.adapt,
                threshold=n.threshold,
                surrogate=self.options.surrogate,
                slope=self.options.slope,
                detach_reset=self.options.detach_reset,
            )
            for layer in params.hidden
        ]
        self.kappa = self.options.readout.kappa(n.dt)

    # --- the Engine protocol ------------------------------------------------------------------

    def train_step(
        self,
        x: Any,
        y_star: torch.Tensor,
        rule: Rule,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
        example_ids: torch.Tensor | None = None,
        monitor: TemporalMonitor | None = None,
    ) -> StepResult:
        """Present a batch [T, N, ...] and write the rule's updates into ``.grad``."""
        if dropout > 0 and generator is not None:
            raise ValueError(f"dropout = {dropout}: the temporal engines have no dropout; train with --dropout 0")
        grads, result = self._learn(x, y_star, check_rule(rule), monitor, all_hidden=False)
        for tensor, grad in grads.items():
            tensor.grad = grad
        return result

    def learning_signals(
        self, x: Any, y_star: torch.Tensor, rule: Rule, example_ids: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """dE/dW_k (input weights) of every hidden layer under ``rule``, ``.grad`` untouched."""
        grads, _ = self._learn(x, y_star, check_rule(rule), None, all_hidden=True)
        return [grads[layer.weight] for layer in self.params.hidden]

    @torch.no_grad()
    def predict(self, x: Any, example_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean log pi(t) over the loss window [N, C], predicted class: its argmax)."""
        result = self.simulate(x)
        return result.output, result.prediction

    @torch.no_grad()
    def simulate(self, x: Any, monitor: TemporalMonitor | None = None) -> StepResult:
        """Present a batch without learning; ``monitor`` sees every layer at every step."""
        inputs = self._inputs(x)
        return self._run(inputs, self._no_target(inputs), Learning(None, set(), False), heaviside, monitor).step

    @torch.no_grad()
    def eligibility_history(self, x: Any, k: int, kind: Eligibility = Eligibility.TRACE) -> torch.Tensor:
        """Hidden layer k's eligibility of every step, [T, N, N_k, P_k] (memory grows with T: for
        inspection and tests; training keeps only the present step's). The pre-synaptic axis holds
        W_k's inputs, then R_k's (a recurrent layer), then b_k's."""
        hidden = len(self.params.hidden)
        if not 1 <= k <= hidden:
            raise ValueError(
                f"network {self.params.spec.name} has hidden layers 1 ... {hidden} (the readout has no trace), "
                f"got k = {k}"
            )
        inputs = self._inputs(x)
        history: list[torch.Tensor] = []
        learning = Learning(_Probe(kind), {k}, False)
        self._run(inputs, self._no_target(inputs), learning, heaviside, None, record=history.append)
        return torch.stack(history)

    def loss_sum(self, output: torch.Tensor, y_star: torch.Tensor) -> float:
        """-sum_n y*_n . mean_t log pi_n(t): the loss E summed over the examples."""
        return float(-(y_star.to(output.dtype) * output).sum())

    # --- internals ----------------------------------------------------------------------------

    def _no_target(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.zeros(inputs.shape[1], self.params.spec.n_outputs, dtype=inputs.dtype, device=inputs.device)

    def _inputs(self, x: Any) -> torch.Tensor:
        spikes = x.spikes if isinstance(x, SpikeTrain) else x
        if not isinstance(spikes, torch.Tensor) or spikes.dim() < 3:
            shape = tuple(spikes.shape) if isinstance(spikes, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"the temporal engines take time-first input [T, N, features...], got {shape}; use a temporal "
                "dataset (randman, emulated-shd, shd, events:<folder>, ...)"
            )
        spikes = spikes.to(self.params.device, self.params.layers[0].weight.dtype)
        return spikes.reshape(spikes.shape[0], spikes.shape[1], -1)

    def _learn(
        self, x: Any, y_star: torch.Tensor, rule: Rule, monitor: TemporalMonitor | None, all_hidden: bool
    ) -> tuple[dict[torch.Tensor, torch.Tensor], StepResult]:
        """The updates of every learning tensor (hidden layers: all of them with ``all_hidden``,
        else the trainable ones) under ``rule``, and the step's result."""
        inputs = self._inputs(x)
        y_star = y_star.to(inputs.device, inputs.dtype)
        hidden = set()
        if rule.timing is not Timing.NEVER:
            hidden = {k for k, layer in enumerate(self.params.hidden, start=1) if all_hidden or layer.trainable}
        learning = Learning(rule, hidden, self.params.layers[-1].trainable or all_hidden)
        if rule.timing is Timing.BACKWARD:
            if not rule.exact:
                raise ValueError(f"rule {rule!r}: the temporal engines' backward sweep is exact BPTT only (rule bp)")
            return self._bptt(inputs, y_star, learning, monitor)
        with torch.no_grad():
            result = self._run(inputs, y_star, learning, heaviside, monitor)
        grads: dict[torch.Tensor, torch.Tensor] = {}
        for k, update in result.updates.items():
            grads.update(split_update(self.params.layers[k - 1], update))
        return grads, result.step

    def _bptt(
        self, inputs: torch.Tensor, y_star: torch.Tensor, learning: Learning, monitor: TemporalMonitor | None
    ) -> tuple[dict[torch.Tensor, torch.Tensor], StepResult]:
        """Exact BPTT: autograd through the loop of :meth:`_run` (surrogate spikes), the same loss."""
        K = self.params.n_layers
        learn = sorted(learning.hidden | ({K} if learning.readout else set()))
        originals = [t for k in learn for t in layer_tensors(self.params.layers[k - 1])]
        leaves = {k: [t.detach().requires_grad_(True) for t in layer_tensors(self.params.layers[k - 1])] for k in learn}
        spike = surrogate_spike(self.cells[0]) if self.spiking else heaviside
        with torch.enable_grad():
            result = self._run(inputs, y_star, Learning(None, set(), False), spike, monitor, leaves)
            grads = torch.autograd.grad(result.loss, [t for k in learn for t in leaves[k]])
        out = dict(zip(originals, grads, strict=True))
        for k in learn:
            recurrent = self.params.layers[k - 1].recurrent
            if recurrent is not None and not self.params.layers[k - 1].spec.self_connections:
                out[recurrent] = out[recurrent].fill_diagonal_(0.0)
        return out, result.step

    def _run(
        self,
        inputs: torch.Tensor,
        y_star: torch.Tensor,
        learning: Learning,
        spike: SpikeFn,
        monitor: TemporalMonitor | None,
        leaves: dict[int, list[torch.Tensor]] | None = None,
        record: Callable[[torch.Tensor], None] | None = None,
    ) -> Pass:
        """The loop of the module docstring, over the parameters (or over ``leaves``, autograd's
        copies of some of them); ``record`` sees every step's eligibility of the learning layers."""
        T, batch = inputs.shape[0], inputs.shape[1]
        dtype, device = inputs.dtype, inputs.device
        params, rule = self.params, learning.rule
        K = params.n_layers
        tensors = {k: (leaves or {}).get(k) or layer_tensors(params.layers[k - 1]) for k in range(1, K + 1)}
        targets = step_targets(y_star.to(dtype), T)
        w = self.options.readout.weights(T, batch, dtype, device)
        states = [
            CellState.zeros(batch, layer.geometry.n_signal, cell, dtype, device)
            for layer, cell in zip(params.hidden, self.cells, strict=True)
        ]
        traces: dict[int, Trace] = {}
        if rule is not None:
            for k in learning.hidden:
                layer = params.layers[k - 1]
                cell = self.cells[k - 1]
                shape = (batch, layer.geometry.n_signal, pre_size(layer))
                chunk = 1 if record is not None else self.options.chunk_steps
                traces[k] = Trace(cell, rule.eligibility, self.kappa, shape, inputs, chunk)
        views = {k: (params.feedback(k).to(dtype), params.layers[k].weight.detach()) for k in traces}
        n_top = params.layers[-1].geometry.weight_shape[1]
        y = torch.zeros(batch, params.spec.n_outputs, dtype=dtype, device=device)
        zbar = torch.zeros(batch, n_top + 1, dtype=dtype, device=device)
        out_update = torch.zeros(params.spec.n_outputs, n_top + 1, dtype=dtype, device=device)
        logp_sum = torch.zeros_like(y)
        loss = torch.zeros((), dtype=dtype, device=device)
        ones = torch.ones(batch, 1, dtype=dtype, device=device)
        W_out, b_out = tensors[K][0], tensors[K][1]
        for t in range(T):
            s = inputs[t]
            for k in range(1, K):
                ts = tensors[k]
                previous = states[k - 1].z
                current = s @ ts[0].T + ts[1]
                if len(ts) == 3:
                    current = current + previous @ ts[2].T
                out, states[k - 1] = cell_step(self.cells[k - 1], current, states[k - 1], spike)
                if k in traces:
                    pre = [s, previous, ones] if len(ts) == 3 else [s, ones]
                    traces[k].step(torch.cat(pre, dim=1), out.psi)
                    if record is not None:
                        record(traces[k].current().clone())
                if monitor is not None:
                    monitor(k, out.z.detach(), out.v.detach())
                s = out.z
            y = self.kappa * y + s @ W_out.T + b_out
            if monitor is not None:
                monitor(K, y.detach(), y.detach())
            if learning.readout:
                zbar = self.kappa * zbar + torch.cat([s, ones], dim=1)
            if w[t] == 0:
                continue
            logp = torch.log_softmax(y, dim=1)
            loss = loss - w[t] * (targets[t] * logp).sum()
            logp_sum = logp_sum + logp.detach()
            error = logp.detach().exp() - targets[t]
            if learning.readout:
                out_update += (w[t] * error).T @ zbar
            for k, trace in traces.items():
                assert rule is not None  # traces exist only with a rule
                seen = error if rule.timing is Timing.OUTPUT else None  # a label-timed rule sees y*(t) only
                B, W_above = views[k]
                m = rule.third_factor(LayerView(k=k, y_star=targets[t], B=B, error=seen, W_above=W_above))
                trace.learn(w[t] * m)
        updates = {k: trace.total() for k, trace in traces.items()}
        if learning.readout:
            updates[K] = out_update
        output = logp_sum / int((w > 0).sum())
        step = StepResult(output, float(loss.detach()), [], output.argmax(1))
        return Pass(step, loss, updates)


class _Probe(Rule):
    """A rule that only asks for an eligibility (:meth:`TemporalEngine.eligibility_history`)."""

    name = "probe"
    timing = Timing.NEVER
    summary = "none"

    def __init__(self, kind: Eligibility):
        self.eligibility = kind  # type: ignore[misc]

    def third_factor(self, view: LayerView) -> torch.Tensor:
        return torch.zeros_like(view.y_star @ view.B)


@dataclass
class Pass:
    """One presentation: its result, the loss E as a tensor (with a graph under BPTT) and the
    accumulated updates [N_k, P_k] of the learning layers."""

    step: StepResult
    loss: torch.Tensor
    updates: dict[int, torch.Tensor]


def layer_tensors(layer: LayerParams) -> list[torch.Tensor]:
    """W_k, b_k (and R_k for a recurrent layer)."""
    return list(layer.tensors())


def pre_size(layer: LayerParams) -> int:
    """P_k = I + (N for a recurrent layer) + 1: the pre-synaptic axis of W_k, R_k and b_k together."""
    n_in = layer.geometry.weight_shape[1]
    return n_in + (layer.geometry.n_signal if layer.recurrent is not None else 0) + 1


def split_update(layer: LayerParams, update: torch.Tensor) -> dict[torch.Tensor, torch.Tensor]:
    """An update [N, P] cut into the blocks of W_k, R_k (its diagonal 0 without self-connections)
    and b_k."""
    n_in = layer.geometry.weight_shape[1]
    parts: dict[torch.Tensor, torch.Tensor] = {layer.weight: update[:, :n_in].contiguous(), layer.bias: update[:, -1]}
    recurrent = layer.recurrent
    if recurrent is not None:
        block = update[:, n_in:-1].contiguous()
        if not layer.spec.self_connections:
            block.fill_diagonal_(0.0)
        parts[recurrent] = block
    return parts


class TemporalSpikingEngine(TemporalEngine):
    """LIF / ALIF hidden layers."""

    name: ClassVar[str] = "spiking"
    spiking: ClassVar[bool] = True


class TemporalRateEngine(TemporalEngine):
    """The rate twin: leaky tanh hidden units, the same topology, time constants and B_k."""

    name: ClassVar[str] = "rate"
    spiking: ClassVar[bool] = False
