"""Training runs: a loop over epochs that writes a run folder and resumes from it exactly.

A run folder holds ``config.json`` (the resolved config), ``metrics.json``, ``checkpoint.pt``
(the parameter set W_k, b_k, B_k, F_k, optimizer state, the run's random generator, metrics so
far) and PNG plots. Files are written atomically after every epoch, with Ctrl-C held back while
they are written; calling :func:`train` again on the folder continues after the last finished
epoch and gives the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import errno
import functools
import json
import math
import pickle
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from snn_drtp.core.atomic import (
    atomic_torch_save,
    atomic_write_json,
    clean_stale_temporaries,
    folder_lock,
    interrupts_deferred,
)
from snn_drtp.core.devices import resolve_device
from snn_drtp.core.engines import Engine
from snn_drtp.core.memory import retain_freed_memory
from snn_drtp.core.metrics import angle_degrees
from snn_drtp.core.networks import NetworkSpec, load_spec, parse_spec
from snn_drtp.core.params import Params
from snn_drtp.data.datasets import load_dataset
from snn_drtp.data.tensors import TensorData
from snn_drtp.interop.nir_graph import read_nir
from snn_drtp.rules import Rule, Timing, get_rule
from snn_drtp.runs import plots
from snn_drtp.runs.build import build_engine
from snn_drtp.runs.config import TrainConfig
from snn_drtp.temporal.engine import TemporalEngine

LAST_N = 10
RUN_FILES = frozenset({"config.json", "metrics.json", "checkpoint.pt"})
"""The files ``train`` writes atomically into a run folder (whose leftover temporaries it removes)."""
CHECKPOINT_FORMAT = 2
"""2: checkpoints record the engine's ``numbers_version``; format 1 (no such key) is version 1."""
CHECKPOINT_KEYS = ("config", "model", "metrics")
"""What every checkpoint holds (resume also reads ``optimizer`` and ``generator``)."""
UNREADABLE = (EOFError, RuntimeError, pickle.UnpicklingError, ValueError, AttributeError, ImportError)
"""What ``torch.load`` raises on an empty, truncated or foreign file (an OSError, such as a permission
or I/O error, is raised as it is: the file may be fine)."""


class CheckpointError(ValueError):
    """A run folder's checkpoint.pt cannot be read: empty, truncated or not a checkpoint."""


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """The state saved in ``run_dir/checkpoint.pt``: the one reader of checkpoints, for resuming,
    ``evaluate``, ``nir export``, ``--init-from`` and ``demo``. A missing checkpoint is a
    FileNotFoundError naming the folder; an empty, truncated or foreign file a
    :class:`CheckpointError` naming it and how to start again (delete it, or the run folder). Tensors
    are read onto the CPU whatever device wrote them; engines and optimizers copy them to theirs."""
    run_dir = Path(run_dir)
    path = run_dir / "checkpoint.pt"
    if not path.is_file():
        if not run_dir.exists():
            problem = "does not exist"
        elif not run_dir.is_dir():
            problem = "is a file, not a run folder"
        else:
            problem = "holds no checkpoint.pt (not a run folder, or no epoch of its run has finished)"
        raise FileNotFoundError(f"run folder {run_dir} {problem}; train one first: snn-drtp train --out {run_dir}")
    again = f"delete it (or the whole run folder {run_dir}) and train again: snn-drtp train --out {run_dir}"
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (*UNREADABLE, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno != errno.EINVAL:  # torch's truncated-archive error is EINVAL
            raise  # permissions, I/O, memory: the file may be fine, so no advice to delete it
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0][:160]
        size = path.stat().st_size
        raise CheckpointError(
            f"{path} ({size} bytes) is truncated or not a checkpoint ({type(exc).__name__}: {reason}); {again}"
        ) from None
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(f"{path} is not a checkpoint of snn-drtp (it lacks {', '.join(missing)}); {again}")
    return state


def check_output_folder(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a folder to write into: refused, before anything is computed, when it or a
    folder above it is an existing file; missing folders are created later, when written."""
    path = Path(path)
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                what = "is a file" if candidate == path else f"lies under {candidate}, which is a file"
                raise ValueError(
                    f"{option} {path} {what}, not a folder; choose another {option} folder (or move the file away)"
                )
            break
    return path


def load_data(
    config: TrainConfig, engine: Engine, dataset: str | None = None, progress: bool = True
) -> tuple[TensorData, TensorData]:
    """(train, test) of ``dataset`` (default: the config's) as ``engine`` takes them: event data as
    time-first frames (``config.frame_spec()``), or their mean frame for an engine that takes static
    input (the rate twin). Checked against the network's input shape and outputs."""
    name = dataset or config.dataset
    frames = replace(config, dataset=name).frame_spec()
    subsets = (config.train_subset, config.test_subset)
    train_data, test_data = load_dataset(
        name, config.data_dir, config.seed, frames, config.emulator_params(), progress, subsets
    )
    if engine.input_layout == "static":
        train_data, test_data = train_data.accumulated(), test_data.accumulated()
    spec = engine.params.spec
    if train_data.input_shape != spec.input_shape:
        raise ValueError(
            f"network {spec.name} expects inputs {spec.input_shape}, dataset {name} gives {train_data.input_shape}"
        )
    if train_data.task == "classification":
        if train_data.n_outputs > spec.n_outputs:
            raise ValueError(
                f"dataset {name} has {train_data.n_outputs} classes but network {spec.name} only "
                f"{spec.n_outputs} outputs"
            )
        train_data, test_data = (
            TensorData(s.x, s.y, spec.n_outputs, s.task, s.layout) for s in (train_data, test_data)
        )
    return train_data, test_data


def make_optimizer(config: TrainConfig, engine: Engine) -> torch.optim.Optimizer:
    """Plain SGD, NAG (SGD with momentum 0.9 and Nesterov's gradient, the default of the authors'
    code, github.com/ChFrenkel/DirectRandomTargetProjection) or Adam (fused) over the trainable
    W_k, b_k at the config's resolved learning rate."""
    params, lr = engine.params.trainable_tensors(), config.lr
    if lr is None:
        raise ValueError("the learning rate is unresolved: pass a validated config (TrainConfig.validate())")
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if config.optimizer == "nag":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    return torch.optim.Adam(params, lr=lr, fused=True)


@torch.no_grad()
def evaluate(engine: Engine, data: TensorData, batch: int = 1000) -> tuple[float | None, float]:
    """(error in percent or None for regression, mean loss) over a split, no dropout. Example i is
    presented as example i whatever the batch size (spiking: encoded from its own seed). Batches move
    to the engine's device one at a time."""
    wrong, loss_sum = 0, 0.0
    device = engine.params.device
    for start in range(0, len(data), batch):
        idx = slice(start, start + batch)
        ids = torch.arange(start, min(start + batch, len(data)), device="cpu")
        out, predicted = engine.predict(data.inputs(idx, device), ids)
        loss_sum += engine.loss_sum(out, data.targets(idx, device))
        if data.task == "classification":
            wrong += int((predicted.cpu() != data.y[idx]).sum())
    error = 100.0 * wrong / len(data) if data.task == "classification" else None
    return error, loss_sum / len(data)


def alignment(engine: Engine, data: TensorData, rule: Rule, n: int) -> dict[str, float]:
    """Per hidden layer, the angle between ``rule``'s learning signal and the exact gradient's on
    the first ``n`` training examples, same weights, no dropout, summed over sub-batches of
    ``engine.signal_batch`` examples. Rate engine: delta z_k against BP's; spiking engine: the
    update dJ/dW_k against BPTT's, for the same input spikes."""
    exact = get_rule("bp")
    if rule.exact or rule.timing is Timing.NEVER or n <= 0 or exact.timing not in engine.timings:
        return {}
    n, device = min(n, len(data)), engine.params.device
    ours = summed_over_batches(
        lambda idx, ids: engine.learning_signals(data.inputs(idx, device), data.targets(idx, device), rule, ids),
        n,
        engine.signal_batch,
    )
    reference = summed_over_batches(
        lambda idx, ids: engine.learning_signals(data.inputs(idx, device), data.targets(idx, device), exact, ids),
        n,
        engine.signal_batch,
    )
    return {f"layer{k}": angle_degrees(a, b) for k, (a, b) in enumerate(zip(ours, reference, strict=True), start=1)}


def summed_over_batches(
    fn: Callable[[slice, torch.Tensor], list[torch.Tensor]], n: int, sub: int | None
) -> list[torch.Tensor]:
    """fn(index, example ids) -> one tensor per hidden layer, summed over consecutive sub-batches of
    ``sub`` of the first ``n`` examples (one batch when ``sub`` is None)."""
    sub = sub or n
    total: list[torch.Tensor] = []
    for start in range(0, n, sub):
        stop = min(start + sub, n)
        part = fn(slice(start, stop), torch.arange(start, stop, device="cpu"))
        total = part if not total else [a + b for a, b in zip(total, part, strict=True)]
    return total


def load_initial(params: Params, source: str | Path) -> None:
    """Copy into ``params`` the parameters of a run folder (its checkpoint, written by any engine:
    they share one parameter set) or of a ``.nir`` file; shapes must match."""
    path = Path(source)
    if path.suffix == ".nir":
        state = read_nir(path)[0].state_dict()
    elif (path / "checkpoint.pt").exists():
        state = load_checkpoint(path)["model"]
    else:
        raise FileNotFoundError(f"--init-from {source}: neither a run folder with checkpoint.pt nor a .nir file")
    own = params.state_dict()
    wrong = {k: (tuple(v.shape), tuple(own[k].shape)) for k, v in state.items() if k in own and v.shape != own[k].shape}
    if wrong or set(state) != set(own):
        raise ValueError(
            f"--init-from {source}: its parameters do not fit network {params.spec.name} "
            f"(shapes there vs here: {wrong or 'different layers'}); train the same --network"
        )
    params.load_state_dict(state)


def load_trained(run_dir: str | Path, engine: str | None = None, device: str | None = None) -> Engine:
    """The engine of a run folder (or ``engine``), over the parameters of its last checkpoint, on
    ``device`` (default: the run's)."""
    return _engine_of(Path(run_dir), load_checkpoint(run_dir), engine, device)


def _engine_of(run_dir: Path, state: dict[str, Any], engine: str | None = None, device: str | None = None) -> Engine:
    """The engine a checkpoint's configuration names (or ``engine``) on its device (or ``device``,
    checked first: a run trained on a GPU is evaluated on a machine without one by asking for the
    CPU), over the checkpoint's parameters; refused when the network's file changed since."""
    config = TrainConfig.from_dict(state["config"])
    check_network_unchanged(run_dir, config)
    where = device or config.device
    resolve_device(where)
    model = build_engine(replace(config, engine=engine or config.engine, device=where))
    model.params.load_state_dict(state["model"])
    return model


def empty_metrics() -> dict[str, Any]:
    return {
        "epoch": [],
        "train_error": [],
        "test_error": [],
        "train_loss": [],
        "test_loss": [],
        "seconds": [],
        "angle_to_bp": {},
    }


def summarise(metrics: dict[str, Any]) -> dict[str, Any]:
    """Adds the paper's figure of merit: the test error averaged over the last 10 epochs."""
    tail = [e for e in metrics["test_error"][-LAST_N:] if e is not None]
    metrics["last10_test_error"] = sum(tail) / len(tail) if tail else None
    metrics["final_test_error"] = metrics["test_error"][-1] if metrics["test_error"] else None
    secs = sorted(metrics["seconds"])
    metrics["median_seconds_per_epoch"] = secs[len(secs) // 2] if secs else None
    return metrics


def first_epochs(metrics: dict[str, Any], n: int) -> dict[str, Any]:
    """The metrics of a run's first ``n`` epochs (what a run of ``n`` epochs records: resuming is
    exact), summarised again; a run folder continued past ``n`` holds more (``metrics`` itself when
    it holds no more)."""
    if len(metrics["epoch"]) <= n:
        return metrics
    first = {key: metrics.get(key, [])[:n] for key in empty_metrics() if key != "angle_to_bp"}
    first["angle_to_bp"] = {layer: angles[:n] for layer, angles in metrics.get("angle_to_bp", {}).items()}
    return summarise(first)


def train_epoch(
    engine: Engine,
    opt: torch.optim.Optimizer,
    data: TensorData,
    rule: Rule,
    config: TrainConfig,
    gen: torch.Generator,
    desc: str = "",
    progress: bool = False,
) -> tuple[int, float]:
    """One pass over ``data`` in a random order drawn from ``gen``: for each minibatch, the rule's
    local step then the optimizer's. Returns (misclassified examples, summed loss)."""
    order = torch.randperm(len(data), generator=gen, device=gen.device).cpu()
    device = engine.params.device
    wrong, loss_sum = 0, 0.0
    batches = math.ceil(len(data) / config.batch_size)
    bar = tqdm(range(batches), desc=desc, disable=None if progress else True, leave=False, unit="batch")
    for b in bar:
        idx = order[b * config.batch_size : (b + 1) * config.batch_size]
        res = engine.train_step(data.inputs(idx, device), data.targets(idx, device), rule, config.dropout, gen)
        opt.step()
        loss_sum += res.loss * len(idx)
        if data.task == "classification":
            wrong += int((res.prediction.cpu() != data.y[idx]).sum())
    return wrong, loss_sum


class RunFolderMismatchError(ValueError):
    """The run folder holds a run this configuration cannot continue."""


def network_change(out: Path, spec: NetworkSpec) -> dict[str, Any] | None:
    """What differs between the network a run folder was trained with (its config.json's
    ``network_spec``, read through :func:`parse_spec` so that keys added since take their defaults)
    and ``spec``, the network as its file reads now: {field: (saved, now)}; None when they agree or
    the folder records no network. A run's name holds its network's name, not the file's contents."""
    try:
        saved = json.loads((out / "config.json").read_text()).get("network_spec")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(saved, dict):
        return None
    before, now = parse_spec(saved, origin=str(out / "config.json")).to_dict(), spec.to_dict()
    changed = {k: (before.get(k), now.get(k)) for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)}
    return changed or None


def check_network_unchanged(out: Path, config: TrainConfig) -> None:
    """Refuse a run folder whose network's file has changed since the run began (its weights may
    still load, into other dynamics), naming the change and the ways out."""
    changed = network_change(out, load_spec(config.network))
    if changed is not None:
        raise RunFolderMismatchError(
            f"{out} holds a run of network {config.network} as it was when the run began; its file has changed since "
            f"(saved vs now: {changed}). Restore the network file, or give the changed network a new name (a new "
            "file in networks/), or delete this folder to train it again"
        )


def _load_existing(out: Path, config: TrainConfig, engine: Engine) -> dict[str, Any] | None:
    """The checkpoint a run continues from (None for a new run), refused when this configuration
    cannot continue it: other numbers, another engine version, another device type (the random
    generator's state belongs to the device it drew on), or finished epochs whose checkpoint is
    gone (committed experiment results keep metrics, not checkpoints: starting again would
    overwrite them), or a network whose file has changed since the run began."""
    done = _finished_epochs(out / "metrics.json")
    if done:
        check_network_unchanged(out, config)
    ckpt_path = out / "checkpoint.pt"
    if not ckpt_path.exists():
        if done:
            raise RunFolderMismatchError(
                f"{out} holds metrics of {done} finished epoch(s) but no checkpoint.pt to continue from (experiment "
                "results are committed without their checkpoints); training would start again and overwrite them. "
                "Keep them: rewrite an experiment's summary with snn-drtp experiment PATH --summarise; or retrain: "
                f"delete {out / 'metrics.json'} (or the folder) first"
            )
        return None
    state = load_checkpoint(out)
    saved = TrainConfig.from_dict(state["config"])
    if torch.device(saved.device).type != torch.device(config.device).type:
        raise RunFolderMismatchError(
            f"{out} was trained on {saved.device}; its random generator's state belongs to that kind of device, so "
            f"it continues there only: --device {saved.device} (its parameters load anywhere: evaluate --device, "
            "nir export, --init-from)"
        )
    if saved.numbers_key() != config.numbers_key():
        asked = config.numbers_key()
        diff = {k: (v, asked[k]) for k, v in saved.numbers_key().items() if asked[k] != v}
        raise RunFolderMismatchError(
            f"{out} holds a run with another configuration (saved vs asked: {diff}); "
            "choose another --out folder or delete this one"
        )
    version = state.get("numbers_version", 1)
    if version != engine.numbers_version:
        raise RunFolderMismatchError(
            f"{out} was written by version {version} of the {engine.name} engine, which gives other numbers "
            f"than this version {engine.numbers_version} (see the README's 'Run folders' section: version 2 "
            "encodes each test example from its own seed and logs the squared error it descends); its metrics "
            "cannot be continued. Train into a new --out folder, or delete this one to start again"
        )
    return state


def _finished_epochs(path: Path) -> int:
    """Epochs recorded in a run folder's metrics.json (0 when there is none or it cannot be read)."""
    try:
        return len(json.loads(path.read_text()).get("epoch", []))
    except (OSError, ValueError, AttributeError):
        return 0


def _holding_run_folder(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """``train`` holding its run folder's lock (``RUN/.lock``, exclusive, across processes) for the
    whole call: a second call on a folder in use, from this or another process, raises
    :class:`~snn_drtp.core.atomic.FolderInUseError` ("run folder RUN is in use by another snn-drtp
    process (pid N); ...") before it reads or writes anything there. Under the lock, the temporaries
    of writes that an earlier, killed run left behind are removed. Without a folder, no lock."""

    @functools.wraps(fn)
    def locked(config: TrainConfig, out_dir: str | Path | None = None, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if out_dir is None:
            return fn(config, out_dir, *args, **kwargs)
        check_output_folder(out_dir)
        with folder_lock(out_dir):
            clean_stale_temporaries(out_dir, RUN_FILES)
            return fn(config, out_dir, *args, **kwargs)

    return locked


@_holding_run_folder
def train(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train ``config`` and return its metrics; with ``out_dir`` write and resume a run folder.

    ``stop_after`` ends the call after that many new epochs (as an interruption would), leaving
    a folder that a later call resumes. A KeyboardInterrupt leaves the last finished epoch's files
    intact and propagates. The process's allocator keeps freed memory for reuse from then on
    (:func:`~snn_drtp.core.memory.retain_freed_memory`: same numbers, large windows much faster).
    """
    config = config.validate()
    retain_freed_memory()
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(out_dir) if out_dir is not None else None
    spec = load_spec(config.network)
    engine = build_engine(config)
    train_data, test_data = load_data(config, engine, progress=progress)
    for option, wanted, split, which in (
        ("--train-subset", config.train_subset, train_data, "training"),
        ("--test-subset", config.test_subset, test_data, "test"),
    ):
        if wanted is not None and wanted > len(split):
            raise ValueError(
                f"{option} {wanted} is larger than the {which} split of dataset {config.dataset} "
                f"({len(split)} examples); use at most {len(split)}, or leave it unset for all"
            )
    train_data = train_data.subset(config.train_subset)
    test_data = test_data.subset(config.test_subset)
    opt = make_optimizer(config, engine)
    gen = torch.Generator(device=engine.params.device).manual_seed(config.seed + 3)
    metrics = empty_metrics()
    state = _load_existing(out, config, engine) if out is not None else None
    if state is not None:
        engine.params.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        metrics = state["metrics"]
        if log and len(metrics["epoch"]) < config.epochs:
            log(f"resuming {out} after epoch {len(metrics['epoch'])}")
    elif config.init_from is not None:
        load_initial(engine.params, config.init_from)
    if out is not None:
        with interrupts_deferred():
            atomic_write_json(out / "config.json", {**config.to_dict(), "network_spec": spec.to_dict()})
            atomic_write_json(out / "metrics.json", metrics)

    rule = get_rule(config.rule)
    n = len(train_data)
    first = len(metrics["epoch"]) + 1
    last = config.epochs if stop_after is None else min(config.epochs, first + stop_after - 1)
    for epoch in range(first, last + 1):
        t0 = time.perf_counter()
        desc = f"{config.rule} epoch {epoch}/{config.epochs}"
        wrong, loss_sum = train_epoch(engine, opt, train_data, rule, config, gen, desc, progress)
        seconds = time.perf_counter() - t0
        test_error, test_loss = evaluate(engine, test_data)
        metrics["epoch"].append(epoch)
        metrics["train_error"].append(100.0 * wrong / n if train_data.task == "classification" else None)
        metrics["train_loss"].append(loss_sum / n)
        metrics["test_error"].append(test_error)
        metrics["test_loss"].append(test_loss)
        metrics["seconds"].append(seconds)
        for layer, angle in alignment(engine, train_data, rule, config.angle_batch).items():
            metrics["angle_to_bp"].setdefault(layer, []).append(angle)
        summarise(metrics)
        if log:
            err = f"test error {test_error:.2f} %" if test_error is not None else f"test loss {test_loss:.5f}"
            exact = engine.exact_reference
            angles = " ".join(f"{k} {v[-1]:.1f} deg to {exact}" for k, v in metrics["angle_to_bp"].items())
            steps = f" T={config.steps}" if config.spiking else ""
            log(
                f"[{config.engine}{steps} {config.network} {config.rule} seed {config.seed}] epoch {epoch}: {err}, "
                f"{seconds:.1f} s {angles}".rstrip()
            )
        if out is not None:
            with interrupts_deferred():
                atomic_torch_save(
                    out / "checkpoint.pt",
                    {
                        "config": config.to_dict(),
                        "format": CHECKPOINT_FORMAT,
                        "numbers_version": engine.numbers_version,
                        "model": engine.params.state_dict(),
                        "optimizer": opt.state_dict(),
                        "generator": gen.get_state(),
                        "metrics": metrics,
                    },
                )
                atomic_write_json(out / "metrics.json", metrics)
    if out is not None and metrics["epoch"]:
        label = f"{config.engine} {config.network} {config.rule}"
        plots.learning_curves({label: metrics}, out / "learning_curves.png", f"{label} on {config.dataset}")
        if metrics["angle_to_bp"]:
            title = f"{label}: alignment with {engine.exact_reference}"
            plots.alignment_angles({label: metrics}, out / "angles.png", title, engine.exact_reference)
        if isinstance(engine, TemporalEngine):
            plots.temporal_activity(engine, test_data, out / "activity.png")
    return metrics


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95 % by default), in [0, 1]."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate_run(
    run_dir: str | Path,
    dataset: str,
    split: str = "test",
    progress: bool = True,
    engine: str | None = None,
    examples: int | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Test a trained run (its last checkpoint) on the whole of ``dataset``'s ``split``, framed as in its training
    (for example a network trained on emulated N-MNIST on the real recordings); returns the error
    with a 95 % Wilson interval and records it in the run folder's ``evaluations.json``. ``engine``
    simulates the trained parameters in another engine than the run's (spiking <-> brian2);
    ``examples`` tests only the split's first examples (recorded under a key of their own, so that
    it does not replace the whole split's); ``device`` simulates it there (default: the run's
    device). The run's own --train-subset / --test-subset do not limit it."""
    if examples is not None and examples < 1:
        raise ValueError(f"examples must be >= 1 (or unset for the whole split), got {examples}; e.g. --examples 100")
    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir)
    config = TrainConfig.from_dict(state["config"])
    model = _engine_of(run_dir, state, engine, device)
    framed = replace(  # the whole split (or its first examples), the other one framed for 1 example only
        config, train_subset=examples if split == "train" else 1, test_subset=examples if split != "train" else 1
    )
    train_data, test_data = load_data(framed, model, dataset=dataset, progress=progress)
    data = (train_data if split == "train" else test_data).subset(examples)
    error, loss = evaluate(model, data)
    if error is None:
        raise ValueError(f"dataset {dataset} is a regression task; evaluate_run reports classification errors")
    correct = round(len(data) * (100.0 - error) / 100.0)
    low, high = wilson_interval(correct, len(data))
    result = {
        "engine": model.name,
        "dataset": dataset,
        "split": split,
        "examples": len(data),
        "error": error,
        "accuracy": 100.0 - error,
        "accuracy_95": [100 * low, 100 * high],
        "loss": loss,
        "epochs": len(state["metrics"]["epoch"]),
    }
    path = run_dir / "evaluations.json"
    with folder_lock(run_dir, blocking=True, lock_name=".evaluations.lock"):  # concurrent evaluations add, not lose
        recorded = json.loads(path.read_text()) if path.exists() else {}
        part = f"/first{examples}" if examples is not None else ""
        recorded[f"{dataset}/{split}{part}" + (f"/{model.name}" if model.name != config.engine else "")] = result
        atomic_write_json(path, recorded)
    return result
