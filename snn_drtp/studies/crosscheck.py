"""Cross-check of the PyTorch spiking engine against the Brian2 engine: one presentation of the
same input spikes to the same parameters in both, then, per layer, the spike trains compared step
by step and the weight updates dJ/dW_k, dJ/db_k compared element by element. Temporal networks
(recurrent or dense LIF / ALIF and a readout) against Brian2's temporal network: hidden spikes,
readout and the trace rule's updates."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from snn_drtp.brian import Brian2Engine
from snn_drtp.brian import temporal as brian2_temporal
from snn_drtp.core.atomic import atomic_write_json
from snn_drtp.core.networks import load_spec
from snn_drtp.core.params import Params
from snn_drtp.rules import Eligibility, LayerView, Rule, Timing, get_rule, rule_names
from snn_drtp.runs.build import build_params, spiking_options, temporal_options
from snn_drtp.runs.config import TrainConfig
from snn_drtp.runs.training import load_data, load_initial
from snn_drtp.spiking import SpikeTrain, SpikingEngine, SpikingOptions
from snn_drtp.spiking.inputs import EVAL_SEED, EncodedInput
from snn_drtp.temporal.engine import TemporalSpikingEngine

PRECISIONS = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class LayerAgreement:
    """Layer k's spikes in both engines over a presentation (k = 0: the input)."""

    layer: int
    spikes_torch: int
    spikes_brian2: int
    mismatched: int
    fraction: float
    """mismatched / max(1, spikes in either engine), as spike-train positions [T, N, N_k]."""
    first_divergence: int | None
    """The first step (0-based) where the two spike trains differ; None when they never do."""
    max_v_difference: float


@dataclass
class UpdateAgreement:
    """|dJ/dW_torch - dJ/dW_brian2| of one tensor: its largest element and that relative to the
    largest |dJ/dW_torch|."""

    name: str
    max_abs: float
    max_abs_difference: float
    relative: float


@dataclass
class CrosscheckReport:
    network: str
    rule: str
    examples: int
    steps: int
    precision: str
    target: str
    layers: list[LayerAgreement]
    updates: list[UpdateAgreement]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        lines = [
            f"crosscheck {self.network}, rule {self.rule}: {self.examples} examples x {self.steps} steps, "
            f"torch in {self.precision}, Brian2 ({self.target}) in float64",
            "layer  spikes torch  spikes brian2  mismatched  fraction  first divergence  max |dv|",
        ]
        for a in self.layers:
            first = "-" if a.first_divergence is None else str(a.first_divergence)
            name = "input" if a.layer == 0 else str(a.layer)
            lines.append(
                f"{name:>5}  {a.spikes_torch:>12}  {a.spikes_brian2:>13}  {a.mismatched:>10}  "
                f"{a.fraction:>8.2%}  {first:>16}  {a.max_v_difference:.2e}"
            )
        lines.append("update        max |torch|   max |difference|   relative")
        for u in self.updates:
            lines.append(f"{u.name:<12}  {u.max_abs:>11.4e}  {u.max_abs_difference:>16.3e}  {u.relative:>9.2e}")
        return "\n".join(lines)


def compare_engines(
    params: Params,
    options: SpikingOptions,
    spikes: torch.Tensor,
    y_star: torch.Tensor,
    rule: Rule,
    precision: str = "float64",
    target: str = "numpy",
) -> tuple[list[LayerAgreement], list[UpdateAgreement]]:
    """Present ``spikes`` [T, N, ...] with targets ``y_star`` once to copies of ``params`` in both
    engines (torch in ``precision``) and compare spike trains, membrane potentials and updates."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    torch_params = copy.deepcopy(params).to(dtype)
    brian_params = copy.deepcopy(params).to(torch.float64)
    recorded: dict[str, dict[int, list[tuple[torch.Tensor, torch.Tensor]]]] = {"torch": {}, "brian2": {}}

    def monitor(engine: str) -> Any:
        return lambda k, s, v: recorded[engine].setdefault(k, []).append((s.double(), v.double()))

    SpikingEngine(torch_params, options).train_step(
        SpikeTrain(spikes.to(dtype)), y_star.to(dtype), rule, monitor=monitor("torch")
    )
    Brian2Engine(brian_params, options, target, replicas=spikes.shape[1]).train_step(
        SpikeTrain(spikes.double()), y_star.double(), rule, monitor=monitor("brian2")
    )
    layers = []
    for k in sorted(recorded["torch"]):
        ours = torch.cat([s for s, _ in recorded["torch"][k]])
        theirs = torch.cat([s for s, _ in recorded["brian2"][k]])
        v_ours = torch.cat([v for _, v in recorded["torch"][k]])
        v_theirs = torch.cat([v for _, v in recorded["brian2"][k]])
        differ = ours != theirs.reshape(ours.shape)
        steps_with = differ.reshape(differ.shape[0], -1).any(1).nonzero()
        total = max(1, int(ours.sum()), int(theirs.sum()))
        layers.append(
            LayerAgreement(
                layer=k,
                spikes_torch=int(ours.sum()),
                spikes_brian2=int(theirs.sum()),
                mismatched=int(differ.sum()),
                fraction=int(differ.sum()) / total,
                first_divergence=int(steps_with[0]) if len(steps_with) else None,
                max_v_difference=float((v_ours - v_theirs.reshape(v_ours.shape)).abs().max()),
            )
        )
    updates = []
    for k, (a, b) in enumerate(zip(torch_params.layers, brian_params.layers, strict=True), start=1):
        for name, ta, tb in (("W", a.weight.grad, b.weight.grad), ("b", a.bias.grad, b.bias.grad)):
            if ta is None or tb is None:
                continue
            diff = float((ta.double() - tb).abs().max())
            scale = float(ta.abs().max())
            updates.append(UpdateAgreement(f"dJ/d{name}_{k}", scale, diff, diff / scale if scale > 0 else diff))
    return layers, updates


@dataclass
class TemporalCrosscheckReport:
    """A temporal network's presentation in the torch engine and in Brian2
    (:func:`snn_drtp.brian.temporal.crosscheck`)."""

    network: str
    rule: str
    examples: int
    steps: int
    spikes_identical: bool
    hidden_spikes: int
    readout_max_difference: float
    update_max_relative_difference: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        lines = [
            f"crosscheck {self.network}, rule {self.rule}: {self.examples} examples x {self.steps} steps, "
            "torch and Brian2 (numpy) in float64",
            f"hidden spikes: {self.hidden_spikes}, identical in both: {'yes' if self.spikes_identical else 'NO'}",
            f"readout y(t): max |difference| {self.readout_max_difference:.3e}",
            "update   max |difference| / max |torch|",
        ]
        lines += [f"{name:<8} {value:.2e}" for name, value in self.update_max_relative_difference.items()]
        return "\n".join(lines)


def brian2_temporal_signal(rule: Rule) -> str | None:
    """Which learning signal of Brian2's temporal network ``rule`` sends, found by probing its third
    factor: "label" (B_k^T y*), "error" (B_k^T (pi - y*)), or None (neither: e.g. W_out^T)."""
    gen = torch.Generator().manual_seed(0)
    y_star, error = torch.eye(3, dtype=torch.float64), torch.randn(3, 3, generator=gen, dtype=torch.float64)
    B, W_above = (torch.randn(3, 4, generator=gen, dtype=torch.float64) for _ in range(2))
    seen = error if rule.timing is Timing.OUTPUT else None
    try:
        m = rule.third_factor(LayerView(k=1, y_star=y_star, B=B, error=seen, W_above=W_above))
    except ValueError:
        return None
    for name, signal in (("label", y_star @ B), ("error", error @ B)):
        if m.shape == signal.shape and torch.allclose(m, signal):
            return name
    return None


def temporal_crosscheck(config: TrainConfig, examples: int, out: str | Path | None) -> TemporalCrosscheckReport:
    """:func:`crosscheck` for a temporal network (one hidden layer and a readout): the first
    ``examples`` test examples of ``config.dataset``, time-first, in the temporal spiking engine
    and in Brian2, under a trace rule whose signal Brian2's network sends (osttp, eprop)."""
    rule = get_rule(config.rule)
    if rule.eligibility is Eligibility.INSTANT or brian2_temporal_signal(rule) is None:
        raise ValueError(
            f"crosscheck --rule {config.rule} on temporal network {config.network}: Brian2's temporal network "
            "learns from eligibility traces with the signal B_k^T y* (label) or B_k^T (pi - y*) (error); "
            "cross-check --rule osttp or --rule eprop"
        )
    params = build_params(config)
    if config.init_from is not None:
        load_initial(params, config.init_from)
    engine = TemporalSpikingEngine(params, temporal_options(config, params.spec))
    _, test = load_data(config, engine, progress=False)
    test = test.subset(examples)
    x = test.inputs(slice(0, len(test)))
    spikes = x.spikes if isinstance(x, SpikeTrain) else x
    result = brian2_temporal.crosscheck(engine, spikes, test.targets(slice(0, len(test))), rule)
    report = TemporalCrosscheckReport(config.network, config.rule, len(test), int(spikes.shape[0]), **result)
    if out is not None:
        atomic_write_json(Path(out), report.to_dict())
    return report


def crosscheck(
    config: TrainConfig,
    examples: int = 10,
    precision: str = "float64",
    target: str = "numpy",
    out: str | Path | None = None,
) -> CrosscheckReport | TemporalCrosscheckReport:
    """Both engines on the first ``examples`` test examples of ``config.dataset`` (static input
    rate-encoded per example from seed EVAL_SEED + i), parameters from ``config.seed``; the report
    is written to ``out`` (JSON) when given. Before anything is built: ``examples`` >= 1, a rule
    whose timing Brian2 can simulate (not bp or fa: no backward sweep through time there) and an
    ``out`` that is not a folder. A temporal network goes to :func:`temporal_crosscheck` (float64,
    numpy target)."""
    config = config.validate()
    if examples < 1:
        raise ValueError(f"crosscheck needs at least one example, got --examples {examples}; e.g. --examples 10")
    if out is not None and Path(out).is_dir():
        raise ValueError(
            f"crosscheck --out {out} is a folder; give the JSON file to write, e.g. {Path(out) / 'crosscheck.json'}"
        )
    if load_spec(config.network).temporal:
        if precision != "float64" or target != "numpy":
            raise ValueError(
                f"crosscheck of temporal network {config.network}: Brian2's temporal network runs in float64 on "
                f"the numpy target; got --precision {precision} --brian2-target {target}"
            )
        return temporal_crosscheck(config, examples, out)
    rule = get_rule(config.rule)
    if rule.timing not in Brian2Engine.timings:
        runnable = [name for name in rule_names() if get_rule(name).timing in Brian2Engine.timings]
        raise ValueError(
            f"crosscheck --rule {config.rule}: Brian2 cannot run rules with a backward sweep ({rule.timing.value} "
            f"timing: backpropagation through time runs only in the torch engine, --engine spiking); "
            f"cross-check one of {', '.join(runnable)}"
        )
    params = build_params(config)
    if config.init_from is not None:
        load_initial(params, config.init_from)
    options = spiking_options(config, params.spec)
    _, test = load_data(config, SpikingEngine(params, options), progress=False)
    test = test.subset(examples)
    x = test.inputs(slice(0, len(test)))
    if isinstance(x, torch.Tensor):
        ids = torch.arange(len(test))
        spikes = torch.cat(
            [s for _, s in EncodedInput(x, options.encoder, options.steps, seeds=EVAL_SEED + ids).windows(0)]
        )
    else:
        spikes = torch.cat([s for _, s in x.windows(0)])
    layers, updates = compare_engines(
        params, options, spikes, test.targets(slice(0, len(test))), rule, precision, target
    )
    report = CrosscheckReport(
        config.network, config.rule, len(test), int(spikes.shape[0]), precision, target, layers, updates
    )
    if out is not None:
        atomic_write_json(Path(out), report.to_dict())
    return report
