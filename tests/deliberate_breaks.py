"""Deliberate breaks: for each behaviour the tests name, change the code the way a bug would (flip a
sign, drop a factor, skip a reset), run the tests that should notice, restore the file, and report
which tests failed. A behaviour that no test notices is reported as NOT CAUGHT.

    python tests/deliberate_breaks.py               # all breaks, a markdown table at the end
    python tests/deliberate_breaks.py dropout trace # only the breaks whose name contains a word

The tree must be clean (``git status``) so that an interrupted run can be undone with
``git checkout``. Each file is restored in a ``finally`` block.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (behaviour, file, code as it is, code broken, pytest arguments of the tests that should fail)
BREAKS = [
    (
        "event-driven products: sum",
        "snn_drtp/spiking/events.py",
        'weight.t().contiguous(), offsets, mode="sum", per_sample_weights=self.values)',
        'weight.t().contiguous(), offsets, mode="sum", per_sample_weights=self.values) * 0.5',
        "tests/test_spiking_updates.py -k event",
    ),
    (
        "event-driven products: row order of the update",
        "snn_drtp/spiking/events.py",
        "cols, order = torch.sort(self.cols, stable=True)",
        "cols, order = self.cols, torch.arange(self.cols.numel())",
        "tests/test_spiking_updates.py -k event",
    ),
    (
        "event-driven products: row offsets of the current",
        "snn_drtp/spiking/events.py",
        "offsets = torch.searchsorted(self.rows, torch.arange(self.n_rows))",
        "offsets = torch.searchsorted(self.rows, torch.arange(self.n_rows), right=True)",
        "tests/test_spiking_updates.py -k event",
    ),
    (
        "BPTT through time: membrane carried between steps",
        "snn_drtp/spiking/neuron.py",
        "v = params.alpha * state.v + (1.0 - params.alpha) * drive",
        "v = params.alpha * (state.v.detach() if torch.is_grad_enabled() else state.v) + (1.0 - params.alpha) * drive",
        "tests/test_bptt.py",
    ),
    (
        "BPTT through time: gradient through the reset",
        "snn_drtp/spiking/neuron.py",
        'v_after = v - spikes * params.threshold if params.reset == "subtract" else v * (1.0 - spikes)',
        'v_after = v - spikes.detach() * params.threshold if params.reset == "subtract" else v * (1.0 - spikes)',
        "tests/test_bptt.py",
    ),
    (
        "surrogate: fast sigmoid squared",
        "snn_drtp/spiking/surrogate.py",
        "return a.abs_().mul_(slope).add_(1.0).square_().reciprocal_()",
        "return a.abs_().mul_(slope).add_(1.0).reciprocal_()",
        "tests/test_lif.py tests/test_spiking_updates.py",
    ),
    (
        "surrogate: triangle clipped at 0",
        "snn_drtp/spiking/surrogate.py",
        "return a.abs_().mul_(-slope).add_(1.0).clamp_(min=0.0)",
        "return a.abs_().mul_(-slope).add_(1.0)",
        "tests/test_lif.py",
    ),
    (
        "pre-synaptic trace: decay factor",
        "snn_drtp/spiking/layers.py",
        "state = gamma * state + s[t]",
        "state = gamma * gamma * state + s[t]",
        "tests/test_spiking_updates.py -k trace",
    ),
    (
        "pre-synaptic trace: carried across windows",
        "snn_drtp/spiking/layers.py",
        "pre, run.trace = trace_scan(s, run.trace, self.options.gamma)",
        "pre, _ = trace_scan(s, run.trace, self.options.gamma)",
        "tests/test_spiking_updates.py -k trace",
    ),
    (
        "spiking dropout: scale 1/(1-p)",
        "snn_drtp/spiking/presentation.py",
        "(torch.rand(batch, layer.n_inputs, generator=gen, device=weight.device) >= p).to(weight.dtype).div_(1.0 - p)",
        "(torch.rand(batch, layer.n_inputs, generator=gen, device=weight.device) >= p).to(weight.dtype)",
        "tests/test_spiking_updates.py -k dropout",
    ),
    (
        "spiking dropout: held for the whole presentation",
        "snn_drtp/spiking/layers.py",
        "        if run.mask is not None:\n            s = s * run.mask\n",
        "        if run.mask is not None:\n            s = s * run.mask\n            run.mask = None\n",
        "tests/test_spiking_updates.py -k dropout",
    ),
    (
        "sDFA: sign of the error",
        "snn_drtp/rules/sdfa.py",
        'return torch.sign(view.need("error", self.name)) @ view.B',
        'return view.need("error", self.name) @ view.B',
        "tests/test_rules.py tests/test_spiking_updates.py -k sdfa",
    ),
    (
        "latency encoder across windows",
        "snn_drtp/spiking/inputs.py",
        "yield t0, latency(self.x, self.steps, start=t0, count=n)",
        "yield t0, latency(self.x, n, start=t0, count=n)",
        "tests/test_lif.py tests/test_spiking_updates.py -k latency",
    ),
    (
        "DFA running error across windows: elapsed steps",
        "snn_drtp/spiking/readout.py",
        "elapsed = torch.arange(t0 + 1, t0 + spikes.shape[0] + 1,",
        "elapsed = torch.arange(1, spikes.shape[0] + 1,",
        "tests/test_spiking_updates.py -k dfa",
    ),
    (
        "DFA running error across windows: counts before the window",
        "snn_drtp/spiking/readout.py",
        "running = self.counts.unsqueeze(0) + spikes.cumsum(0)",
        "running = spikes.cumsum(0)",
        "tests/test_spiking_updates.py -k dfa",
    ),
    (
        "MSE output gradient factor 2",
        "snn_drtp/rate/engine.py",
        'scale = 2.0 if activation == "linear" else 1.0',
        "scale = 1.0",
        "tests/test_rules.py -k mse",
    ),
    (
        "resume: the run's random generator restored",
        "snn_drtp/runs/training.py",
        '        gen.set_state(state["generator"])\n',
        "",
        "tests/test_training.py -k resume_after",
    ),
    (
        "refractoriness: post factor 0",
        "snn_drtp/spiking/layers.py",
        "            post.mul_(window.out.integrating)\n",
        "            pass\n",
        "tests/test_spiking_updates.py -k refractory",
    ),
    (
        "evaluation: each test example from its own seed",
        "snn_drtp/spiking/presentation.py",
        "        inputs = self._spike_input(x, None, self._ids(x, example_ids))\n",
        "        inputs = self._spike_input(x, torch.Generator().manual_seed(EVAL_SEED), None)\n",
        "tests/test_training.py -k evaluation_batch",
    ),
    (
        "BPTT: parameters untouched (no requires_grad set)",
        "snn_drtp/spiking/bptt.py",
        "(layer.weight.detach().requires_grad_(layer.trainable), layer.bias.detach().requires_grad_(layer.trainable))",
        "(layer.weight.requires_grad_(True), layer.bias.requires_grad_(True))",
        "tests/test_bptt.py -k untouched",
    ),
    (
        "logged loss: the squared error descended",
        "snn_drtp/spiking/readout.py",
        "return 0.5 * torch.nn.functional.mse_loss(y_hat, y_star)",
        "return torch.nn.functional.binary_cross_entropy(y_hat.clamp(1e-4, 1 - 1e-4), y_star)",
        "tests/test_spiking_updates.py tests/test_bptt.py -k 'loss or finite'",
    ),
    (
        "ternary DRTP: rounding to {-beta, 0, beta}",
        "snn_drtp/rules/ternary_drtp.py",
        "return torch.round(B / beta) * beta",
        "return torch.sign(B) * beta",
        "tests/test_rules.py tests/test_spiking_updates.py -k ternary",
    ),
    (
        "FA: fixed random matrix, not W",
        "snn_drtp/rules/fa.py",
        'return view.carried(view.need("F_above", self.name), self.name)',
        'return view.carried(view.need("W_above", self.name), self.name)',
        "tests/test_rules.py tests/test_bptt.py -k fa",
    ),
    (
        "Ctrl-C: one line, exit 130",
        "snn_drtp/cli.py",
        "    except KeyboardInterrupt:\n",
        "    except ZeroDivisionError:\n",
        "tests/test_training.py -k ctrl_c",
    ),
    (
        "experiment grid: lr in the run's identity",
        "snn_drtp/runs/config.py",
        'differing = {k: v for k, v in self.numbers_key().items() if k == "lr" or v != defaults[k]}',
        'differing = {k: v for k, v in self.numbers_key().items() if k not in ("lr", "dropout") and v != defaults[k]}',
        "tests/test_experiments.py tests/test_training.py -k 'run_names or grid'",
    ),
    (
        "conv layer with lif activation",
        "snn_drtp/rate/layers.py",
        '        if self.name == "lif":\n            return self.soft_lif(z)\n',
        "",
        "tests/test_rules.py -k lif",
    ),
    (
        "DRTP: label-selected third factor",
        "snn_drtp/rules/drtp.py",
        "return view.y_star @ view.B",
        "return torch.ones_like(view.y_star) @ view.B",
        "tests/test_rules.py tests/test_spiking_updates.py tests/test_alignment_theorem.py",
    ),
    (
        "alignment theorem: an anti-label third factor",
        "snn_drtp/rules/drtp.py",
        "return view.y_star @ view.B",
        "return (1 - view.y_star) @ view.B",
        "tests/test_alignment_theorem.py",
    ),
    (
        "N-MNIST files: truncated file refused",
        "snn_drtp/data/event_files.py",
        "    if size % 5:",
        "    if size % 5 and False:",
        "tests/test_event_files.py -k broken",
    ),
    (
        "frames: the last partial bin kept (bins cover the whole span)",
        "snn_drtp/data/frames.py",
        "window = math.ceil(span / self.n_time_bins)",
        "window = span // self.n_time_bins",
        "tests/test_frames_emulator.py",
    ),
    (
        "frame cache: keyed by the frame parameters",
        "snn_drtp/data/events.py",
        "cache_key(name, split, fingerprint, spec.key(), CACHE_FORMAT)",
        "cache_key(name, split, fingerprint, CACHE_FORMAT)",
        "tests/test_frames_emulator.py -k cache",
    ),
    (
        "emulator: ON for brightening pixels",
        "snn_drtp/data/emulator.py",
        "packed.append(pixel + (up.long() << 16))",
        "packed.append(pixel + ((~up).long() << 16))",
        "tests/test_frames_emulator.py -k emulat",
    ),
    (
        "emulator: negative display",
        "snn_drtp/data/emulator.py",
        "            padded = 1 - padded",
        "            padded = padded",
        "tests/test_frames_emulator.py -k polarity_follows",
    ),
    (
        "emulator: noise independent of the batch",
        "snn_drtp/data/emulator.py",
        "rng = np.random.default_rng((self.seed, block))",
        "rng = np.random.default_rng((self.seed, block, first_index))",
        "tests/test_frames_emulator.py -k seeded",
    ),
    (
        "rate twin: the mean frame, not the sum",
        "snn_drtp/data/tensors.py",
        "self.x.sum(1, dtype=torch.float32) / steps",
        "self.x.sum(1, dtype=torch.float32)",
        "tests/test_event_files.py -k engines",
    ),
    (
        "spiking conv: bias update averaged over the steps",
        "snn_drtp/spiking/layers.py",
        "update.bias.add_(grad_b, alpha=1.0 / steps)",
        "update.bias.add_(grad_b)",
        "tests/test_spiking_conv.py",
    ),
    (
        "spiking conv: max-pooling of the spikes",
        "snn_drtp/spiking/layers.py",
        "pooled = F.max_pool2d(spikes.reshape(-1, *self.state_shape), pool)",
        "pooled = F.avg_pool2d(spikes.reshape(-1, *self.state_shape), pool)",
        "tests/test_spiking_conv.py",
    ),
    (
        "experiment summary: one column per evaluated dataset",
        "snn_drtp/studies/experiments.py",
        'lines[-2] = lines[-2] + "".join(',
        'lines[-2] = lines[-2][:-1] + "".join(',
        "tests/test_experiments.py -k evaluate",
    ),
    (
        "evaluation: Wilson interval centre",
        "snn_drtp/runs/training.py",
        "centre = (p + z * z / (2 * n)) / (1 + z * z / n)",
        "centre = p",
        "tests/test_event_files.py -k wilson",
    ),
    (
        "Brian2: post factor before the reset",
        "snn_drtp/brian/model.py",
        "CURRENT, CHARGE, UPDATE, POST, MONITOR, THRESHOLD, RESET = range(7)",
        "CURRENT, CHARGE, UPDATE, MONITOR, THRESHOLD, RESET, POST = range(7)",
        "tests/test_brian2.py",
    ),
    (
        "Brian2: spikes reach the next layer in the same step",
        "snn_drtp/brian/model.py",
        'synapses.current.when, synapses.current.order = "groups", order + CURRENT',
        'synapses.current.when, synapses.current.order = "groups", order + RESET + 1',
        "tests/test_brian2.py",
    ),
    (
        "Brian2: refractory period counts the spike's own step",
        "snn_drtp/brian/model.py",
        "refractory = (options.neuron.refractory + 1) * options.neuron.dt * b2.second",
        "refractory = options.neuron.refractory * options.neuron.dt * b2.second",
        "tests/test_brian2.py",
    ),
    (
        "Brian2: subtractive reset",
        "snn_drtp/brian/model.py",
        '("v = 0" if to_zero else "v = v - theta")',
        '("v = 0" if to_zero else "v = 0")',
        "tests/test_brian2.py",
    ),
    (
        "Brian2: synaptic current includes the bias",
        "snn_drtp/brian/model.py",
        '"i_syn = beta * i_syn + b + I"',
        '"i_syn = beta * i_syn + I"',
        "tests/test_brian2.py",
    ),
    (
        "Brian2: pre-synaptic trace decay",
        "snn_drtp/brian/model.py",
        '"trace = gamma * trace"',
        '"trace = 0.5 * gamma * trace"',
        "tests/test_brian2.py",
    ),
    (
        "Brian2: dropout factor in the eligibility",
        "snn_drtp/brian/model.py",
        'on_pre["learn"] = "g += m_post * post_post * mask"',
        'on_pre["learn"] = "g += m_post * post_post"',
        "tests/test_brian2.py",
    ),
    (
        "Brian2: running error count(t) / t",
        "snn_drtp/brian/engine.py",
        "error = torch.from_numpy(counts / self.elapsed)",
        "error = torch.from_numpy(counts / (self.elapsed + 1))",
        "tests/test_brian2.py",
    ),
    (
        "spiking engines (torch and Brian2): output error (y_hat - y*) / (N C)",
        "snn_drtp/spiking/presentation.py",
        "delta = (y_hat - target) / y_hat.numel()",
        "delta = (y_hat - target) / y_hat.shape[0]",
        "tests/test_brian2.py tests/test_spiking_updates.py",
    ),
    (
        "NIR: biases exported",
        "snn_drtp/interop/nir_graph.py",
        "bias = layer.bias.detach().cpu().numpy().copy()",
        "bias = 0 * layer.bias.detach().cpu().numpy()",
        "tests/test_nir.py",
    ),
    (
        "NIR: reset restored from the metadata",
        "snn_drtp/interop/nir_graph.py",
        'reset=meta["reset"],',
        'reset="zero",',
        "tests/test_nir.py",
    ),
    (
        "NIR: resistance folded into foreign weights",
        "snn_drtp/interop/nir_graph.py",
        "weight = np.asarray(node.weight) * scale",
        "weight = np.asarray(node.weight)",
        "tests/test_nir.py",
    ),
    (
        "init-from copies the parameters",
        "snn_drtp/runs/training.py",
        "    params.load_state_dict(state)\n",
        "",
        "tests/test_nir.py",
    ),
]


def main(words: list[str]) -> int:
    dirty = subprocess.run(["git", "status", "--porcelain", "snn_drtp"], cwd=ROOT, capture_output=True, text=True)
    if dirty.stdout.strip():
        print("snn_drtp/ has uncommitted changes; commit or stash them first", file=sys.stderr)
        return 2
    rows, missed = [], 0
    for name, path, old, new, tests in BREAKS:
        if words and not any(w in name for w in words):
            continue
        target = ROOT / path
        text = target.read_text()
        if text.count(old) != 1:
            print(f"{name}: the code to break is not found once in {path}; update this script", file=sys.stderr)
            return 2
        target.write_text(text.replace(old, new))
        try:
            run = subprocess.run(
                f"{sys.executable} -m pytest -q -p no:cacheprovider {tests}",
                shell=True,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=900,
            )
        finally:
            target.write_text(text)
        failed = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("FAILED")]
        missed += not failed
        rows.append(f"| {name} | `{path}` | {', '.join(f'`{t}`' for t in failed) or '**NOT CAUGHT**'} |")
        print(rows[-1], flush=True)
    print("\n| behaviour broken | file | tests that failed |\n|---|---|---|\n" + "\n".join(rows))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
