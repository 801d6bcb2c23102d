"""Same numbers to the bit across revisions: a speed change must not move a single float.

Records the outputs, predictions and gradients of 760 spiking training and simulation cases (dense
and conv networks, every rule, dropout, traces, synaptic current, refractoriness, both resets, the
latency code, windows, float32/64, binary spikes and event counts), then compares two records:

    git worktree add /tmp/before <revision>
    (cd /tmp/before && python /path/to/tests/same_numbers.py record /tmp/before.pt)
    python tests/same_numbers.py record /tmp/after.pt
    python tests/same_numbers.py compare /tmp/before.pt /tmp/after.pt

``record`` imports snn_drtp from the current directory, so run it from each revision's tree.
"""

from __future__ import annotations

import itertools
import sys

import torch


def grads(params) -> list:
    """The .grad of every weight and bias, layer by layer."""
    return [t.grad for layer in params.layers for t in (layer.weight, layer.bias)]


def record(path: str) -> None:
    sys.path.insert(0, ".")
    torch.set_num_threads(1)
    from snn_drtp.core.networks import load_spec, parse_spec
    from snn_drtp.core.params import Params
    from snn_drtp.rules import get_rule
    from snn_drtp.spiking import LIFParams, SpikeTrain, SpikingEngine, SpikingOptions

    def dense(hidden, n_in=784):
        return parse_spec(
            {
                "name": "t",
                "input_shape": [1, 1, n_in],
                "layers": [{"kind": "dense", "units": h} for h in hidden]
                + [{"kind": "dense", "units": 10, "activation": "sigmoid"}],
            }
        )

    g = torch.Generator().manual_seed(1)
    lit = torch.rand(20, 1, 1, 784, generator=g) < 0.19
    x = lit * torch.rand(20, 1, 1, 784, generator=g)
    y = torch.eye(10)[torch.arange(20) % 10]
    ev = (torch.rand(6, 20, 2, 34, 34, generator=g) < 0.05).float()
    ev2 = ev * torch.randint(1, 3, ev.shape, generator=g)
    out = {}
    neurons = {
        "plain": LIFParams(tau_mem=5e-3, threshold=0.5),
        "syn": LIFParams(tau_mem=5e-3, tau_syn=3e-3, threshold=0.5),
        "ref": LIFParams(tau_mem=5e-3, threshold=0.5, refractory=2),
        "zero": LIFParams(tau_mem=5e-3, threshold=0.5, reset="zero"),
    }
    for spec_name, rule, nk, chunk, tau_pre, drop, dtype, enc in itertools.product(
        ["fc150", "fc2x120"],
        ["drtp", "dfa", "sdfa", "bp", "shallow"],
        list(neurons),
        [0, 3],
        [0.0, 4e-3],
        [0.0, 0.3],
        [torch.float32, torch.float64],
        ["rate", "latency"],
    ):
        if ((dtype == torch.float64 or enc == "latency") and (drop or tau_pre or nk != "plain")) or (
            dtype == torch.float64 and rule not in ("drtp", "shallow")
        ):
            continue
        spec = dense([150]) if spec_name == "fc150" else dense([120, 120])
        params = Params(spec, seed=0)
        if dtype == torch.float64:
            for layer in params.layers:
                layer.weight.data = layer.weight.data.double()
                layer.bias.data = layer.bias.data.double()
        eng = SpikingEngine(
            params, SpikingOptions(steps=8, encoder=enc, time_chunk=chunk, tau_pre=tau_pre, neuron=neurons[nk])
        )
        gen = torch.Generator().manual_seed(0)
        res = eng.train_step(x.to(dtype), y.to(dtype), get_rule(rule), drop, gen)
        key = (spec_name, rule, nk, chunk, tau_pre, drop, str(dtype), enc)
        out[str(key)] = [res.output, res.prediction] + [g.clone() if g is not None else None for g in grads(params)]
        out[str(key) + "sim"] = (lambda r: [r.output, r.prediction])(eng.simulate(x.to(dtype)))
    for spec_file, rule, chunk, data in itertools.product(
        ["nmnist-conv-random", "nmnist-conv"], ["drtp", "bp", "dfa"], [0, 1, 2, 4], ["bin", "counts"]
    ):
        params = Params(load_spec(spec_file), seed=0)
        eng = SpikingEngine(params, SpikingOptions(steps=6, time_chunk=chunk))
        res = eng.train_step(
            SpikeTrain(ev if data == "bin" else ev2), y, get_rule(rule), 0.0, torch.Generator().manual_seed(0)
        )
        out[str((spec_file, rule, chunk, data))] = [res.output, res.prediction] + [
            g.clone() if g is not None else None for g in grads(params)
        ]
    torch.save(out, path)
    print(len(out), "entries")


def compare(before: str, after: str) -> int:
    a, b = torch.load(before), torch.load(after)
    if a.keys() != b.keys():
        print("the records hold different cases")
        return 1
    bad = 0
    for key in a:
        for i, (u, v) in enumerate(zip(a[key], b[key], strict=True)):
            if (u is None) != (v is None) or (u is not None and not torch.equal(u, v)):
                bad += 1
                gap = (u.double() - v.double()).abs().max().item() if u is not None and v is not None else None
                print("differs:", key, "item", i, "largest difference", gap)
    print(f"{len(a)} cases, {bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        record(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
