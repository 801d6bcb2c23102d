"""The ``snn-drtp`` command: a thin layer over the Python API.

snn-drtp train --network fc1-500 --rule drtp --epochs 100 --out runs/drtp
snn-drtp rules
snn-drtp data fetch mnist
snn-drtp experiment experiments/paper-mnist-fc1-500 --jobs 2
snn-drtp crosscheck --network fc1-100 --rule drtp --examples 10
snn-drtp nir export runs/drtp model.nir
snn-drtp events info recordings/
snn-drtp demo
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from snn_drtp.core.engines import BRIAN2_TARGETS, ENGINES
from snn_drtp.core.memory import retain_freed_memory
from snn_drtp.data.datasets import DATASET_NAMES
from snn_drtp.data.download import DATASETS, fetch
from snn_drtp.data.formats import MissingReaderError
from snn_drtp.data.overview import SHOWN, SLICES, events_info, format_info, show_events
from snn_drtp.interop.nir_graph import read_nir, write_nir
from snn_drtp.rules import rule_names, rule_table
from snn_drtp.runs.config import OPTIMIZERS, TrainConfig
from snn_drtp.runs.training import check_output_folder, evaluate_run, load_trained, train
from snn_drtp.spiking.encoders import ENCODERS
from snn_drtp.spiking.engine import SpikingEngine
from snn_drtp.spiking.surrogate import SURROGATES
from snn_drtp.studies import emulator_fit, validation
from snn_drtp.studies.demo import run_demo
from snn_drtp.studies.experiments import run_experiment, summarise_existing
from snn_drtp.studies.report import write_report
from snn_drtp.studies.sweeps import BACKENDS

NEURON_FLAGS = {
    "dt": (float, "time step (s)"),
    "tau_mem": (float, "membrane time constant (s)"),
    "tau_syn": (float, "synaptic time constant (s); 0 = none"),
    "threshold": (float, "firing threshold"),
    "reset": (str, "reset after a spike: subtract or zero"),
    "refractory": (int, "refractory period (steps)"),
}
FRAME_FLAGS = {
    "time_window_us": (float, "frames of this length instead of T bins (microseconds)"),
    "duration_us": (float, "window from t = 0 that the frames cover; 0: each sample's span (default: the dataset's)"),
    "denoise_us": (float, "Tonic Denoise filter time (microseconds); unset: no denoising"),
    "downsample": (float, "Tonic Downsample spatial factor in (0, 1]; unset: 1"),
}
FORMATTER = argparse.ArgumentDefaultsHelpFormatter


def _emulator_overrides(pairs: list[str]) -> dict[str, float]:
    """NAME=VALUE pairs as emulator parameter overrides."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--emulator takes NAME=VALUE, got {pair!r}")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"--emulator {name}: {value!r} is not a number") from None
    return out


def _model_args(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    p.add_argument("--network", default=d.network, help="name in networks/ or path to a .toml spec")
    p.add_argument("--rule", choices=rule_names(), default=d.rule, help="learning rule of the hidden layers")
    p.add_argument("--dataset", default=d.dataset, help=f"{', '.join(DATASET_NAMES)}, tonic:<Class> or events:<folder>")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of weights, B_k, order, dropout, encoding")
    p.add_argument("--data-dir", default=None, help="dataset cache (unset: $SNN_DRTP_DATA or ~/.cache/snn-drtp)")


def _spiking_args(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    g = p.add_argument_group("spiking engines (spiking, brian2)")
    g.add_argument("--steps", "-T", type=int, default=d.steps, help="time steps per presentation of static input")
    g.add_argument("--encoder", choices=ENCODERS, default=d.encoder, help="spike encoder of static input")
    g.add_argument("--surrogate", choices=sorted(SURROGATES), default=d.surrogate, help="surrogate psi(v)")
    g.add_argument("--slope", type=float, default=d.slope, help="surrogate slope k")
    g.add_argument("--tau-pre", type=float, default=d.tau_pre, help="pre-synaptic trace time constant (s); 0 = spikes")
    g.add_argument("--time-chunk", type=int, default=d.time_chunk, help="steps simulated at once (0 = all T)")
    g.add_argument("--dense", action="store_true", help="dense products instead of event-driven ones")
    g.add_argument(
        "--brian2-target", choices=BRIAN2_TARGETS, default=d.brian2_target, help="Brian2 code generation target"
    )
    for name, (kind, text) in NEURON_FLAGS.items():
        g.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, help=f"{text}; unset: the spec's")
    ev = p.add_argument_group("event datasets (frames: T = --steps bins)")
    for name, (kind, text) in FRAME_FLAGS.items():
        ev.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, help=text)
    ev.add_argument("--merge-polarity", action="store_true", help="one channel for ON and OFF events")
    ev.add_argument("--binary-frames", action="store_true", help="1 where any event fell in a bin (spikes)")
    ev.add_argument(
        "--normalise-frames",
        action="store_true",
        help="divide each sample's counts by their mean over nonzero entries (input drive independent of event rate)",
    )
    ev.add_argument(
        "--emulator",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="emulator parameter for emulated-* datasets (repeatable), e.g. threshold=0.5",
    )


def _train_parser(sub: argparse._SubParsersAction) -> None:
    d = TrainConfig()
    p = sub.add_parser(
        "train", help="train one network; resumes if --out holds a stopped run", formatter_class=FORMATTER
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=d.engine,
        help="; ".join(f"{name}: {entry.summary}" for name, entry in ENGINES.items()),
    )
    _model_args(p, d)
    p.add_argument("--epochs", type=int, default=d.epochs, help="epochs")
    p.add_argument("--lr", type=float, default=None, help="learning rate; unset: Table 3 (rate), 5e-4 (spiking)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="minibatch size")
    p.add_argument("--dropout", type=float, default=d.dropout, help="dropout on the input of every dense layer")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="optimizer")
    p.add_argument("--zero-init", action="store_true", help="zero-initialise forward weights")
    p.add_argument("--train-subset", type=int, default=None, help="use the first N training examples (unset: all)")
    p.add_argument("--test-subset", type=int, default=None, help="use the first N test examples (unset: all)")
    p.add_argument("--angle-batch", type=int, default=d.angle_batch, help="examples for the alignment angle")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (unset: torch's default)")
    p.add_argument("--device", default=d.device, help="torch device: cpu, cuda, cuda:N or mps")
    p.add_argument("--out", default=None, help="run folder (unset: runs/<run name>)")
    p.add_argument("--init-from", default=None, help="start from this run folder's (or NIR file's) parameters")
    p.add_argument("--no-progress", action="store_true", help="no per-batch progress bar")
    _spiking_args(p, d)


def _crosscheck_parser(sub: argparse._SubParsersAction) -> None:
    d = TrainConfig()
    p = sub.add_parser(
        "crosscheck",
        help="one presentation in the PyTorch and Brian2 engines: spike agreement and update differences",
        formatter_class=FORMATTER,
    )
    _model_args(p, d)
    p.add_argument("--examples", type=int, default=10, help="test examples presented at once")
    p.add_argument("--precision", choices=("float64", "float32"), default="float64", help="torch engine precision")
    p.add_argument("--out", default=None, help="also write the report to this JSON file")
    p.add_argument("--init-from", default=None, help="parameters of this run folder or NIR file (unset: the seed's)")
    _spiking_args(p, d)


def _config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of a train or crosscheck command line (flags a command lacks keep their defaults)."""
    d = TrainConfig()
    return TrainConfig(
        network=args.network,
        rule=args.rule,
        dataset=args.dataset,
        engine=getattr(args, "engine", "spiking"),
        epochs=getattr(args, "epochs", d.epochs),
        lr=getattr(args, "lr", d.lr),
        batch_size=getattr(args, "batch_size", d.batch_size),
        dropout=getattr(args, "dropout", d.dropout),
        optimizer=getattr(args, "optimizer", d.optimizer),
        seed=args.seed,
        zero_init=getattr(args, "zero_init", d.zero_init),
        train_subset=getattr(args, "train_subset", d.train_subset),
        test_subset=getattr(args, "test_subset", d.test_subset),
        angle_batch=getattr(args, "angle_batch", d.angle_batch),
        steps=args.steps,
        encoder=args.encoder,
        surrogate=args.surrogate,
        slope=args.slope,
        tau_pre=args.tau_pre,
        time_chunk=args.time_chunk,
        event_driven=not args.dense,
        neuron={k: getattr(args, k) for k in NEURON_FLAGS if getattr(args, k) is not None},
        frames={k: getattr(args, k) for k in FRAME_FLAGS if getattr(args, k) is not None}
        | ({"merge_polarity": True} if args.merge_polarity else {})
        | ({"binary": True} if args.binary_frames else {})
        | ({"normalise": True} if args.normalise_frames else {}),
        emulator=_emulator_overrides(args.emulator),
        brian2_target=args.brian2_target,
        init_from=args.init_from,
        threads=getattr(args, "threads", d.threads),
        device=getattr(args, "device", d.device),
        data_dir=args.data_dir,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="snn-drtp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _crosscheck_parser(sub)

    sub.add_parser("rules", help="the learning rules: third factor m_k and when it exists")

    data = sub.add_parser("data", help="dataset management")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    f = data_sub.add_parser("fetch", help="fetch and verify an IDX dataset into the cache", formatter_class=FORMATTER)
    f.add_argument("name", choices=sorted(DATASETS), help="dataset")
    f.add_argument("--data-dir", default=None, help="dataset cache (unset: $SNN_DRTP_DATA or ~/.cache/snn-drtp)")
    f.add_argument("--source-dir", default=None, help="a folder that already holds the IDX files")

    ev = sub.add_parser(
        "evaluate", help="test a trained run on a dataset (with a 95 %% interval)", formatter_class=FORMATTER
    )
    ev.add_argument("run", help="a run folder with a checkpoint")
    ev.add_argument("--dataset", required=True, help="dataset to test on, framed as in the run's training")
    ev.add_argument("--split", choices=("test", "train"), default="test", help="split")
    ev.add_argument("--engine", choices=ENGINES, default=None, help="simulate in this engine (unset: the run's)")
    ev.add_argument("--examples", type=int, default=None, help="only the split's first N examples (unset: all)")
    ev.add_argument("--device", default=None, help="torch device: cpu, cuda, cuda:N or mps (unset: the run's)")

    nr = sub.add_parser("nir", help="networks to and from NIR (the neuromorphic intermediate representation)")
    nr_sub = nr.add_subparsers(dest="nir_command", required=True)
    ex = nr_sub.add_parser("export", help="write a run's trained network as a .nir file", formatter_class=FORMATTER)
    ex.add_argument("run", help="a run folder with a checkpoint")
    ex.add_argument("file", help="the .nir file to write (missing parent folders are created; a folder is refused)")
    info = nr_sub.add_parser("info", help="what a .nir file holds, as this project reads it", formatter_class=FORMATTER)
    info.add_argument("file", help="a .nir file")
    info.add_argument("--dt", type=float, default=1e-3, help="time step (s) for graphs written by other tools")

    ev = sub.add_parser("events", help="look at event recordings (any supported format) before training")
    ev_sub = ev.add_subparsers(dest="events_command", required=True)
    ei = ev_sub.add_parser(
        "info",
        help="format, sensor, event count, duration, ON fraction and event rate per recording, and a folder's totals",
        formatter_class=FORMATTER,
    )
    ei.add_argument("path", help="a recording, an event folder (labels.csv) or any folder of recordings")
    ei.add_argument("--limit", type=int, default=20, help="recordings listed (the totals cover all)")
    es = ev_sub.add_parser(
        "show",
        help="draw accumulated events (ON red, OFF blue) and time slices, or a channel raster for 1-D sensors",
        formatter_class=FORMATTER,
    )
    es.add_argument("path", help="a recording, an event folder (labels.csv) or any folder of recordings")
    es.add_argument("--out", required=True, help="the PNG to write")
    es.add_argument("--recordings", type=int, default=SHOWN, help="recordings drawn (one per class first)")
    es.add_argument("--slices", type=int, default=SLICES, help="time slices per recording")

    e = sub.add_parser(
        "experiment", help="run (or resume) an experiment folder's grid and summarise it", formatter_class=FORMATTER
    )
    e.add_argument("path", help="experiments/NAME or its experiment.toml")
    e.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    e.add_argument("--threads", type=int, default=1, help="torch threads per run")
    e.add_argument(
        "--device", default=None, help="torch device: cpu, cuda, cuda:N or mps (unset: the experiment's, else cpu)"
    )
    e.add_argument("--summarise", action="store_true", help="only rewrite the summary from the runs' metrics.json")
    e.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="local: a process pool of --jobs workers; ray: one Ray task per run (pip install 'snn-drtp[cluster]')",
    )
    e.add_argument(
        "--address", default=None, help="a Ray cluster's address (with --backend ray; unset: a local Ray instance)"
    )

    rp = sub.add_parser(
        "report",
        help="the paper's MNIST tables (ours beside the paper's) and figures from experiment folders",
        formatter_class=FORMATTER,
    )
    rp.add_argument("experiments", nargs="+", help="experiments/NAME folders (or their experiment.toml)")
    rp.add_argument("--out", default="reports/paper", help="report folder")
    rp.add_argument(
        "--device", default=None, help="the runs of `experiment --device` (cpu, cuda, mps; unset: the experiments')"
    )

    v = sub.add_parser(
        "validate", help="spike versus rate: accuracy gap, update angles, gap against T", formatter_class=FORMATTER
    )
    v.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    v.add_argument("--threads", type=int, default=1, help="torch threads per run")
    v.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N or mps")
    v.add_argument("--out", default=None, help="report folder (unset: experiments/spiking-validation)")

    fitting = sub.add_parser(
        "emulator-fit",
        help="fit the N-MNIST emulator to the real nmnist-small recordings and report the comparison",
        formatter_class=FORMATTER,
    )
    fitting.add_argument("--fit-on", type=int, default=300, help="training recordings used for the fit")
    fitting.add_argument("--out", default=None, help="report folder (unset: experiments/emulator-vs-real)")
    fitting.add_argument("--data-dir", default=None, help="dataset cache and nmnist-small location")
    fitting.add_argument("--threads", type=int, default=1, help="torch CPU threads")

    demo = sub.add_parser(
        "demo", help="the main job: spiking DRTP next to its rate reference on MNIST", formatter_class=FORMATTER
    )
    demo.add_argument("--epochs", type=int, default=3, help="epochs of each engine")
    demo.add_argument("--out", default="runs/demo", help="output folder")
    demo.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 avoids stalls on a shared machine)")
    demo.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N or mps")
    demo.add_argument("--data-dir", default=None, help="dataset cache (unset: $SNN_DRTP_DATA or ~/.cache/snn-drtp)")

    args = parser.parse_args(argv)
    retain_freed_memory()
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        again = " ".join(sys.argv[1:] if argv is None else argv)
        print(
            f"\nsnn-drtp: interrupted; every run folder keeps its last finished epoch. Resume with: snn-drtp {again}",
            file=sys.stderr,
        )
        return 130
    except (ValueError, FileNotFoundError, RuntimeError, KeyError, MissingReaderError) as exc:
        print(f"snn-drtp: error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "train":
        config = _config(args)
        out = args.out or f"runs/{config.validate().run_name()}"
        metrics = train(config, out, progress=not args.no_progress)
        last10 = metrics["last10_test_error"]
        if last10 is not None:
            print(f"last-10-epoch mean test error: {last10:.2f} % (run folder {out})")
        return 0
    if args.command == "crosscheck":
        # imported here, not above: the cross-check brings Brian2, a second of start-up for every other command
        from snn_drtp.studies.crosscheck import crosscheck

        report = crosscheck(_config(args), args.examples, args.precision, args.brian2_target, args.out)
        print(report.table())
        return 0
    if args.command == "evaluate":
        r = evaluate_run(
            args.run, args.dataset, args.split, engine=args.engine, examples=args.examples, device=args.device
        )
        low, high = r["accuracy_95"]
        print(
            f"{args.run} ({r['engine']}) on {r['dataset']} {r['split']} ({r['examples']} examples): "
            f"accuracy {r['accuracy']:.2f} % "
            f"(95 % interval {low:.1f} - {high:.1f} %), error {r['error']:.2f} %"
        )
        return 0
    if args.command == "nir":
        if args.nir_command == "export":
            engine = load_trained(args.run, "spiking")
            assert isinstance(engine, SpikingEngine)
            print(write_nir(args.file, engine.params, engine.options.neuron))
            return 0
        params, neuron = read_nir(args.file, args.dt)
        sizes = [params.layers[0].geometry.weight_shape[1]] + [
            layer.geometry.weight_shape[0] for layer in params.layers
        ]
        print(f"{args.file}: network {params.spec.name}, {'-'.join(map(str, sizes))}, seed {params.seed}; {neuron}")
        return 0
    if args.command == "events":
        if args.events_command == "info":
            print(format_info(events_info(args.path), args.limit))
        else:
            show_events(args.path, args.out, args.recordings, args.slices)
            print(args.out)
        return 0
    if args.command == "rules":
        width = max(len(name) for name, _, _ in rule_table())
        for name, timing, what in rule_table():
            print(f"{name:<{width}}  {timing:<8}  {what}")
        return 0
    if args.command == "data":
        print(fetch(args.name, args.data_dir, args.source_dir))
        return 0
    if args.command == "experiment":
        if args.summarise:
            summary = summarise_existing(args.path, args.device)
        else:
            summary = run_experiment(
                args.path,
                jobs=args.jobs,
                threads=args.threads,
                device=args.device,
                backend=args.backend,
                address=args.address,
            )
        for label, g in summary["groups"].items():
            print(f"{label}: {g['mean']:.3g} +- {g['std']:.3g} ({summary['measure']}) over seeds {g['seeds']}")
        for name, error in summary.get("failed", {}).items():
            print(f"snn-drtp: run {name} failed: {error}", file=sys.stderr)
        return 1 if summary.get("failed") else 0
    if args.command == "report":
        check_output_folder(args.out)
        print(write_report(args.experiments, args.out, args.device))
        return 0
    if args.command == "validate":
        check_output_folder(args.out or validation.REPORT)
        validation.run_validation(
            args.out or validation.REPORT, jobs=args.jobs, threads=args.threads, device=args.device
        )
        return 0
    if args.command == "emulator-fit":
        torch.set_num_threads(args.threads)
        emulator_fit.run_fit(args.out or emulator_fit.REPORT, args.data_dir, args.fit_on)
        return 0
    if args.command == "demo":
        check_output_folder(args.out)
        run_demo(epochs=args.epochs, out=args.out, threads=args.threads, data_dir=args.data_dir, device=args.device)
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
