"""A network exported to NIR here, run by snnTorch (``snntorch.import_nir``), against this project's
torch spiking engine on the first 100 MNIST test digits with identical input spikes.

The network: FC1-100 trained with DRTP (experiments/brian2-vs-torch-mnist1000, torch engine, seed
0), exported with ``snn-drtp nir export`` to benchmarks/results/fc1-100-drtp.nir (committed, so this
script runs without the run's checkpoint). Three ways of running it in snnTorch:

* ``as exported``: snnTorch's importer takes NIR's continuous-time LIF with forward Euler at its
  own fixed dt = 0.1 ms (beta = 1 - dt/tau, threshold / (r dt / tau)) and resets to zero: another
  discretisation (0.1 ms Euler steps instead of exact 1 ms steps) and another reset;
* ``Euler-matched tau``: the LIF nodes' tau replaced by 0.1 ms / (1 - alpha), alpha = exp(-dt /
  tau_mem), so that snnTorch's beta equals our alpha and its threshold our theta / (1 - alpha) (its
  membrane is ours / (1 - alpha)); the reset is still to zero;
* ``... and subtractive reset``: in addition every imported ``Leaky`` set to reset by subtraction,
  the convention this network was trained with (NIR has no field for it; it is in our metadata).
  snnTorch's Leaky (reset_delay=False) still differs: when the membrane left after a reset is
  above threshold, it subtracts the threshold once more at the next step (its ``mem_reset`` reads
  the stored membrane), which ours does not;
* ``ours also reset to zero``: the Euler-matched graph in snnTorch against our engine run with
  reset to zero (same weights): the two simulators' conventions then coincide.

    pip install snntorch==1.0.0 nirtorch==2.6   # not part of snn-drtp's install
    python benchmarks/nir_snntorch.py
"""

from __future__ import annotations

import argparse
import copy
import math
from dataclasses import replace
from pathlib import Path

import nir
import numpy as np
import torch

from snn_drtp.core.atomic import write_json_and_markdown
from snn_drtp.data import load_dataset
from snn_drtp.interop.nir_graph import read_nir, write_nir
from snn_drtp.spiking import SpikeTrain, SpikingEngine, SpikingOptions
from snn_drtp.spiking.inputs import EVAL_SEED, EncodedInput

RESULTS = Path(__file__).parent / "results"
GRAPH = RESULTS / "fc1-100-drtp.nir"
RUN = Path("experiments/brian2-vs-torch-mnist1000/runs")
SNNTORCH_DT = 1e-4
"""The time step snnTorch's NIR importer assumes (snntorch/import_nir.py)."""


def snntorch_outputs(graph: nir.NIRGraph, spikes: torch.Tensor, subtract: bool) -> torch.Tensor:
    """Output spikes [T, N, C] of snnTorch's import of ``graph`` fed ``spikes`` [T, N, D] step by step."""
    import snntorch
    import snntorch.utils
    from snntorch.import_nir import import_from_nir

    net = import_from_nir(graph)
    if subtract:
        for module in net.modules():
            if isinstance(module, snntorch.Leaky):
                module.reset_mechanism = "subtract"
    snntorch.utils.reset(net)
    with torch.no_grad():
        return torch.stack([net(spikes[t])[0] for t in range(spikes.shape[0])])


def our_outputs(params, options: SpikingOptions, spikes: torch.Tensor) -> torch.Tensor:
    """Output spikes [T, N, C] of the torch spiking engine."""
    out = []
    SpikingEngine(params, options).simulate(
        SpikeTrain(spikes), monitor=lambda k, s, v: out.append(s) if k == params.n_layers else None
    )
    return torch.cat(out)


def euler_matched(graph: nir.NIRGraph, alpha: float) -> nir.NIRGraph:
    """``graph`` with every LIF's tau set so that Euler at snnTorch's dt decays by our alpha per step."""
    matched = copy.deepcopy(graph)
    for node in matched.nodes.values():
        if isinstance(node, nir.LIF):
            node.tau = np.full_like(node.tau, SNNTORCH_DT / (1.0 - alpha))
    return matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--export", action="store_true", help="re-export the graph from the run's checkpoint")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.export or not GRAPH.exists():
        from snn_drtp.runs.training import load_trained

        engine = load_trained(next(RUN.glob("spiking-fc1-100-drtp-T25-seed0-*")))
        write_nir(GRAPH, engine.params, engine.options.neuron)
    params, neuron = read_nir(GRAPH)
    graph = nir.read(GRAPH)
    options = SpikingOptions(steps=25, neuron=neuron)
    _, test = load_dataset("mnist")
    x = test.inputs(slice(0, args.examples)).reshape(args.examples, -1)
    labels = test.y[: args.examples]
    ids = torch.arange(args.examples)
    spikes = torch.cat([w for _, w in EncodedInput(x, "rate", options.steps, seeds=EVAL_SEED + ids).windows(0)])
    ours = our_outputs(params, options, spikes)
    ours_zero_reset = our_outputs(params, replace(options, neuron=replace(neuron, reset="zero")), spikes)
    alpha = math.exp(-neuron.dt / neuron.tau_mem)
    matched = euler_matched(graph, alpha)
    variants = {
        "as exported": (ours, snntorch_outputs(graph, spikes, subtract=False)),
        "Euler-matched tau": (ours, snntorch_outputs(matched, spikes, subtract=False)),
        "Euler-matched tau and subtractive reset": (ours, snntorch_outputs(matched, spikes, subtract=True)),
        "Euler-matched tau; ours also reset to zero": (ours_zero_reset, snntorch_outputs(matched, spikes, False)),
    }
    accuracy = float((ours.sum(0).argmax(1) == labels).float().mean() * 100)
    rows = {}
    for name, (ours, theirs) in variants.items():
        our_prediction = ours.sum(0).argmax(1)
        differ = int((theirs != ours).sum())
        rows[name] = {
            "output_spikes_ours": int(ours.sum()),
            "output_spikes_snntorch": int(theirs.sum()),
            "mismatched_positions": differ,
            "mismatched_fraction_of_spikes": differ / max(1, int(ours.sum())),
            "identical_examples": int(((theirs != ours).flatten(2).any(2).any(0) == 0).sum()),
            "same_prediction": int((theirs.sum(0).argmax(1) == our_prediction).sum()),
            "accuracy_snntorch": float((theirs.sum(0).argmax(1) == labels).float().mean() * 100),
        }
    result = {
        "graph": str(GRAPH),
        "examples": args.examples,
        "steps": options.steps,
        "neuron": vars(neuron),
        "accuracy_ours_argmax_counts": accuracy,
        "variants": rows,
    }
    lines = [
        "# A NIR graph exported here, run by snnTorch 1.0.0",
        "",
        f"FC1-100 trained with DRTP (torch engine, seed 0), `{GRAPH.name}`; first {args.examples} MNIST test digits, "
        f"identical rate-encoded input spikes (T = {options.steps}); output spike trains [T, N, 10] compared "
        f"position by position. Our accuracy (argmax of spike counts): {result['accuracy_ours_argmax_counts']:.0f} %.",
        "Command: `python benchmarks/nir_snntorch.py` (needs `pip install snntorch==1.0.0 nirtorch==2.6`)",
        "",
        "| snnTorch run | output spikes (ours / snnTorch) | mismatched positions | examples identical | "
        "same prediction | snnTorch accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['output_spikes_ours']} / {r['output_spikes_snntorch']} | {r['mismatched_positions']} "
            f"({r['mismatched_fraction_of_spikes']:.1%} of our spikes) | {r['identical_examples']} / {args.examples} | "
            f"{r['same_prediction']} / {args.examples} | {r['accuracy_snntorch']:.0f} % |"
        )
    print(write_json_and_markdown(RESULTS / "nir_snntorch", result, lines))


if __name__ == "__main__":
    main()
