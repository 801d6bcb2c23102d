"""Running a sweep: many training runs, each a configuration and its run folder.

A finished run (all its epochs in metrics.json, the same numbers in config.json) is read, never
trained again; a run that stopped part-way resumes from its checkpoint; a run that fails is
reported with its error while the others go on. Runs go ``jobs`` at a time to worker processes
(the local backend: a process pool whose workers die with the sweep however it ends) or to Ray
(one task per run, on a local instance or a cluster; ``pip install 'snn-drtp[cluster]'``). Progress is
one line per finished run (done, running, left, an estimate of the time left), the same on a
terminal and in a log file.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snn_drtp.core.networks import load_spec
from snn_drtp.core.processes import die_with_parent
from snn_drtp.runs.config import TrainConfig
from snn_drtp.runs.training import first_epochs, network_change, train
from snn_drtp.studies.ray_instance import import_ray, join_local_instance, local_ray_instance

Task = tuple[TrainConfig, str]
"""A run of a sweep: its configuration and its run folder."""


@dataclass(frozen=True)
class RunResult:
    """What became of a run: its metrics (None when it failed), the error that stopped it, whether
    it was trained now (not read back) and the seconds it took."""

    out: str
    metrics: dict[str, Any] | None
    error: str | None = None
    trained: bool = False
    seconds: float = 0.0


def finished_metrics(config: TrainConfig, out: str | Path) -> dict[str, Any] | None:
    """The metrics of a finished run of ``config`` in folder ``out``: all of its epochs recorded
    in metrics.json (its first ``config.epochs`` when it was continued past them) and the folder's
    config.json giving the same numbers, its network as the network's file reads now. A finished
    run is read, never redone, whether or not its checkpoint is still there (committed results
    have none); one of a network changed since is not read (and training it names the change)."""
    folder = Path(out)
    try:
        saved = json.loads((folder / "config.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    saved.pop("network_spec", None)
    try:
        same = TrainConfig.from_dict(saved).numbers_key() == config.numbers_key()
    except (TypeError, ValueError):
        return None
    if not same or not isinstance(metrics, dict) or len(metrics.get("epoch", [])) < config.epochs:
        return None
    try:
        changed = network_change(folder, load_spec(config.network))
    except ValueError:  # a saved network that no longer parses
        return None
    if changed is not None:
        return None
    return first_epochs(metrics, config.epochs)


def run_one(task: Task) -> RunResult:
    """A finished run read back, or the run trained (resumed) into its folder; an exception is
    returned as the run's error, so that the sweep goes on."""
    config, out = task
    done = finished_metrics(config, out)
    if done is not None:
        return RunResult(out, done)
    start = time.perf_counter()
    try:
        metrics = train(config, out, progress=False)
    except Exception as exc:  # any failure of one run: reported, the others go on
        return RunResult(out, None, f"{type(exc).__name__}: {exc}", True, time.perf_counter() - start)
    return RunResult(out, metrics, None, True, time.perf_counter() - start)


def _indexed(item: tuple[int, Task]) -> tuple[int, RunResult]:
    return item[0], run_one(item[1])


class Progress:
    """Counts of a sweep's runs and one log line per finished run:
    ``sweep: 5/72 done (4 read, 1 trained, 0 failed), 2 running, 65 left, about 3 h 5 min left``."""

    def __init__(self, total: int, jobs: int, log: Callable[[str], None] | None):
        self.total, self.jobs, self.log = total, jobs, log
        self.read = self.trained = self.failed = 0
        self.trained_seconds = 0.0

    @property
    def done(self) -> int:
        return self.read + self.trained + self.failed

    def eta_seconds(self) -> float | None:
        """Seconds left: the mean time of the runs trained so far, times the runs left, over jobs."""
        ran = self.trained + self.failed
        if ran == 0:
            return None
        return self.trained_seconds / ran * (self.total - self.done) / self.jobs

    def add(self, result: RunResult) -> None:
        if result.error is not None:
            self.failed += 1
        elif result.trained:
            self.trained += 1
        else:
            self.read += 1
        self.trained_seconds += result.seconds
        if self.log is None:
            return
        left = self.total - self.done
        eta = self.eta_seconds()
        when = "" if eta is None or left == 0 else f", about {_duration(eta)} left"
        self.log(
            f"sweep: {self.done}/{self.total} done ({self.read} read, {self.trained} trained, {self.failed} failed), "
            f"{min(self.jobs, left)} running, {left} left{when}"
            + (f"; {result.out} failed: {result.error}" if result.error else "")
        )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{max(minutes, 1)} min"


BACKENDS = ("local", "ray")
"""Where a sweep's runs go: this machine's process pool, or Ray (a local instance or a cluster)."""


def run_sweep(
    tasks: Sequence[Task],
    jobs: int = 1,
    log: Callable[[str], None] | None = print,
    backend: str = "local",
    address: str | None = None,
) -> list[RunResult]:
    """Every task's result, in the tasks' order.

    ``local``: ``jobs`` runs at a time in a process pool (in this process when 1); on Ctrl-C the
    workers stop at once, and they die with this process however it ends, SIGKILL included (Linux).
    ``ray``: one Ray task per run asking for the run's CPU threads (and a GPU for a CUDA run), on
    the cluster at ``address``, or on a local instance of ``jobs`` x threads CPUs started for the
    sweep and ended with it, however the sweep ends (:mod:`snn_drtp.studies.ray_instance`). Either
    way every run keeps its last finished epoch when stopped, and the same call resumes."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown sweep backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise ValueError(f"--address {address} is a Ray cluster's address: it needs --backend ray")
    progress = Progress(len(tasks), jobs, log)
    if backend == "ray":
        return _collect(_ray_results(tasks, jobs, address), len(tasks), progress)
    if jobs == 1:
        return _collect(map(_indexed, enumerate(tasks)), len(tasks), progress)
    pool = multiprocessing.get_context("spawn").Pool(jobs, initializer=_init_worker, initargs=(os.getpid(),))
    with pool:
        return _collect(pool.imap_unordered(_indexed, list(enumerate(tasks)), chunksize=1), len(tasks), progress)


def _collect(finished: Iterable[tuple[int, RunResult]], total: int, progress: Progress) -> list[RunResult]:
    """The results of (task number, result) pairs in any order, put back in the tasks' order, each
    counted by ``progress`` as it comes."""
    results: dict[int, RunResult] = {}
    for i, result in finished:
        results[i] = result
        progress.add(result)
    return [results[i] for i in range(total)]


def _ray_results(tasks: Sequence[Task], jobs: int, address: str | None) -> Iterator[tuple[int, RunResult]]:
    """(task number, result) of each run as its Ray task finishes."""
    ray = import_ray(local=address is None)
    with ExitStack() as stack:
        if not ray.is_initialized():
            if address is None:
                cpus = jobs * max((config.threads or 1) for config, _ in tasks) if tasks else jobs
                join_local_instance(ray, stack.enter_context(local_ray_instance(cpus)))
            else:
                ray.init(address=address, configure_logging=False)
            stack.callback(ray.shutdown)
        remote = ray.remote(run_one)
        refs = {
            remote.options(
                num_cpus=config.threads or 1, num_gpus=1 if str(config.device).startswith("cuda") else 0
            ).remote((config, out)): i
            for i, (config, out) in enumerate(tasks)
        }
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                i = refs[ref]
                try:
                    yield i, ray.get(ref)
                except Exception as exc:  # the worker itself died (out of memory, node lost)
                    yield i, RunResult(tasks[i][1], None, f"{type(exc).__name__}: {exc}", True)


def _init_worker(parent: int) -> None:
    """A pool worker's start: Ctrl-C is left to the parent (which stops the pool), and the worker
    dies with the parent (:func:`~snn_drtp.core.processes.die_with_parent`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
