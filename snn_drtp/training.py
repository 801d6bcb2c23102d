"""Training runs: a loop over epochs that writes a run folder and resumes from it exactly.

A run folder holds ``config.json`` (the resolved config), ``metrics.json``, ``checkpoint.pt``
(weights, B_k, optimizer state, the run's random generator, metrics so far) and PNG plots. All
files are written atomically after every epoch; calling :func:`train` again on the folder
continues where it stopped and gives the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from snn_drtp import plots
from snn_drtp.build import build_network
from snn_drtp.config import TrainConfig
from snn_drtp.data.datasets import TensorData, load_dataset
from snn_drtp.io import atomic_torch_save, atomic_write_json
from snn_drtp.networks import load_spec
from snn_drtp.rate.network import RateNetwork
from snn_drtp.rules import Rule, angle_degrees
from snn_drtp.spiking.network import SpikingNetwork

LAST_N = 10


def make_optimizer(config: TrainConfig, net: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for layer in net.layers if layer.trainable for p in (layer.weight, layer.bias)]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr)
    return torch.optim.Adam(params, lr=config.lr, fused=True)


@torch.no_grad()
def evaluate(net: RateNetwork, data: TensorData, batch: int = 1000) -> tuple[float | None, float]:
    """(error in percent or None for regression, mean loss) over a split, no dropout."""
    wrong, loss_sum = 0, 0.0
    for start in range(0, len(data), batch):
        idx = slice(start, start + batch)
        out, predicted = net.predict(data.x[idx])
        y_star = data.targets(idx)
        if data.task == "regression":
            loss_sum += float(torch.nn.functional.mse_loss(out, y_star, reduction="sum")) / y_star.shape[1]
        else:
            loss_sum += (
                float(torch.nn.functional.binary_cross_entropy(out.clamp(1e-7, 1 - 1e-7), y_star, reduction="sum"))
                / y_star.shape[1]
            )
            wrong += int((predicted != data.y[idx]).sum())
    error = 100.0 * wrong / len(data) if data.task == "classification" else None
    return error, loss_sum / len(data)


def alignment(net: RateNetwork, data: TensorData, rule: Rule, n: int) -> dict[str, float]:
    """Per hidden layer, the angle between ``rule``'s learning signal and the exact gradient's on
    the first ``n`` training examples, same weights, no dropout. Rate engine: delta z_k against
    BP's; spiking engine: the summed update dJ/dW_k against surrogate-gradient BPTT's, summed over
    sub-batches of 100 examples (and the same input spikes for both)."""
    if rule.name in ("bp", "shallow") or n <= 0:
        return {}
    sub = 100 if isinstance(net, SpikingNetwork) else n
    x, y_star = data.x[:n], data.targets(slice(0, n))
    ours = summed_over_batches(lambda a, b: net.modulatory_signals(a, b, rule), x, y_star, sub)
    reference = summed_over_batches(lambda a, b: net.modulatory_signals(a, b, Rule("bp")), x, y_star, sub)
    return {f"layer{k}": angle_degrees(a, b) for k, (a, b) in enumerate(zip(ours, reference, strict=True), start=1)}


def summed_over_batches(
    fn: Callable[[torch.Tensor, torch.Tensor], list[torch.Tensor]], x: torch.Tensor, y_star: torch.Tensor, sub: int
) -> list[torch.Tensor]:
    """fn(x, y*) -> one tensor per hidden layer, summed over sub-batches of ``sub`` examples."""
    total: list[torch.Tensor] = []
    for start in range(0, x.shape[0], sub):
        part = fn(x[start : start + sub], y_star[start : start + sub])
        total = part if not total else [a + b for a, b in zip(total, part, strict=True)]
    return total


def load_trained(run_dir: str | Path) -> RateNetwork:
    """The network of a run folder (either engine), with the weights of its last checkpoint."""
    state = torch.load(Path(run_dir) / "checkpoint.pt", weights_only=False)
    config = TrainConfig.from_dict(state["config"])
    net = build_network(config, load_spec(config.network))
    net.load_state_dict(state["model"])
    return net


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


def train_epoch(
    net: RateNetwork,
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
    net.train()
    order = torch.randperm(len(data), generator=gen)
    wrong, loss_sum = 0, 0.0
    batches = math.ceil(len(data) / config.batch_size)
    bar = tqdm(range(batches), desc=desc, disable=None if progress else True, leave=False, unit="batch")
    for b in bar:
        idx = order[b * config.batch_size : (b + 1) * config.batch_size]
        res = net.step(data.x[idx], data.targets(idx), rule, config.dropout, gen)
        opt.step()
        loss_sum += res.loss * len(idx)
        if data.task == "classification":
            wrong += int((res.prediction != data.y[idx]).sum())
    return wrong, loss_sum


class RunFolderMismatchError(ValueError):
    """The run folder holds a run with a different configuration."""


def _load_existing(out: Path, config: TrainConfig) -> dict[str, Any] | None:
    ckpt_path = out / "checkpoint.pt"
    if not ckpt_path.exists():
        return None
    state = torch.load(ckpt_path, weights_only=False)
    saved = TrainConfig.from_dict(state["config"])
    if saved.numbers_key() != config.numbers_key():
        diff = {k: (v, config.numbers_key()[k]) for k, v in saved.numbers_key().items() if config.numbers_key()[k] != v}
        raise RunFolderMismatchError(
            f"{out} holds a run with another configuration (saved vs asked: {diff}); "
            "choose another --out folder or delete this one"
        )
    return state


def train(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train ``config`` and return its metrics; with ``out_dir`` write and resume a run folder.

    ``stop_after`` ends the call after that many new epochs (as an interruption would), leaving
    a folder that a later call resumes.
    """
    config = config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(out_dir) if out_dir is not None else None
    spec = load_spec(config.network)
    train_data, test_data = load_dataset(config.dataset, config.data_dir, config.seed)
    train_data = train_data.subset(config.train_subset)
    test_data = test_data.subset(config.test_subset)
    if tuple(train_data.x.shape[1:]) != spec.input_shape:
        raise ValueError(
            f"network {spec.name} expects inputs {spec.input_shape}, "
            f"dataset {config.dataset} gives {tuple(train_data.x.shape[1:])}"
        )

    net = build_network(config, spec)
    opt = make_optimizer(config, net)
    gen = torch.Generator().manual_seed(config.seed + 3)
    metrics = empty_metrics()
    state = _load_existing(out, config) if out is not None else None
    if state is not None:
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        metrics = state["metrics"]
        if log and len(metrics["epoch"]) < config.epochs:
            log(f"resuming {out} after epoch {len(metrics['epoch'])}")
    if out is not None:
        atomic_write_json(out / "config.json", {**config.to_dict(), "network_spec": spec.to_dict()})

    rule = Rule(config.rule)
    n = len(train_data)
    first = len(metrics["epoch"]) + 1
    last = config.epochs if stop_after is None else min(config.epochs, first + stop_after - 1)
    for epoch in range(first, last + 1):
        t0 = time.perf_counter()
        wrong, loss_sum = train_epoch(
            net,
            opt,
            train_data,
            rule,
            config,
            gen,
            desc=f"{config.rule} epoch {epoch}/{config.epochs}",
            progress=progress,
        )
        seconds = time.perf_counter() - t0
        net.eval()
        test_error, test_loss = evaluate(net, test_data)
        metrics["epoch"].append(epoch)
        metrics["train_error"].append(100.0 * wrong / n if train_data.task == "classification" else None)
        metrics["train_loss"].append(loss_sum / n)
        metrics["test_error"].append(test_error)
        metrics["test_loss"].append(test_loss)
        metrics["seconds"].append(seconds)
        for layer, angle in alignment(net, train_data, rule, config.angle_batch).items():
            metrics["angle_to_bp"].setdefault(layer, []).append(angle)
        summarise(metrics)
        if log:
            err = f"test error {test_error:.2f} %" if test_error is not None else f"test loss {test_loss:.5f}"
            exact = "BP" if config.engine == "rate" else "BPTT"
            angles = " ".join(f"{k} {v[-1]:.1f} deg to {exact}" for k, v in metrics["angle_to_bp"].items())
            engine = "" if config.engine == "rate" else f"{config.engine} T={config.steps} "
            log(
                f"[{engine}{config.network} {config.rule} seed {config.seed}] epoch {epoch}: {err}, "
                f"{seconds:.1f} s {angles}".rstrip()
            )
        if out is not None:
            atomic_torch_save(
                out / "checkpoint.pt",
                {
                    "config": config.to_dict(),
                    "model": net.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "metrics": metrics,
                },
            )
            atomic_write_json(out / "metrics.json", metrics)
    if out is not None and metrics["epoch"]:
        label = f"{config.network} {config.rule}"
        plots.learning_curves({label: metrics}, out / "learning_curves.png", f"{label} on {config.dataset}")
        if metrics["angle_to_bp"]:
            exact = "BP" if config.engine == "rate" else "BPTT"
            plots.alignment_angles({label: metrics}, out / "angles.png", f"{label}: alignment with {exact}")
    return metrics
