"""Sweep backends: the same runs, the same numbers, on the local pool and on a local Ray instance."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snn_drtp.studies.experiments import run_experiment
from snn_drtp.studies.sweeps import run_sweep

ROOT = Path(__file__).resolve().parent.parent

SPEC = """
name = "tiny"
[base]
network = "synth-classification"
dataset = "synth-classification"
epochs = 2
batch_size = 50
train_subset = 200
test_subset = 100
angle_batch = 50
[grid]
rule = ["drtp", "dfa"]
seed = [0, 1]
"""


def write_spec(folder):
    folder.mkdir(parents=True)
    (folder / "experiment.toml").write_text(SPEC)
    return folder


def run_metrics(folder) -> dict[str, dict]:
    return {run.name: json.loads((run / "metrics.json").read_text()) for run in sorted((folder / "runs").iterdir())}


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the module's sweeps (its workers, each importing torch, start once)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, object_store_memory=100 * 2**20, include_dashboard=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_a_tiny_sweep_gives_identical_numbers_on_a_local_ray_instance_and_is_not_redone(tmp_path, ray_instance):
    local = write_spec(tmp_path / "local")
    run_experiment(local, jobs=2, log=None)
    on_ray = write_spec(tmp_path / "ray")
    lines: list[str] = []
    run_experiment(on_ray, jobs=2, backend="ray", log=lines.append)
    ours, theirs = run_metrics(local), run_metrics(on_ray)
    assert list(ours) == list(theirs) and len(ours) == 4
    for name, metrics in ours.items():
        for key in ("train_loss", "train_error", "test_error", "test_loss", "angle_to_bp"):
            assert theirs[name][key] == metrics[key], (name, key)
    assert lines[-1].startswith("sweep: 4/4 done (0 read, 4 trained, 0 failed)")
    run_experiment(on_ray, jobs=2, backend="ray", log=lines.append)
    assert lines[-1].startswith("sweep: 4/4 done (4 read, 0 trained, 0 failed)")


def test_backend_and_address_are_checked():
    with pytest.raises(ValueError, match="unknown sweep backend 'slurm'; choose one of local, ray"):
        run_sweep([], backend="slurm")
    with pytest.raises(ValueError, match="--address ray://head:10001 is a Ray cluster's address: it needs"):
        run_sweep([], address="ray://head:10001")
    with pytest.raises(ValueError, match="jobs must be >= 1, got 0"):
        run_sweep([], jobs=0)


KILL_SPEC = """
name = "kill"
[base]
network = "synth-classification"
dataset = "synth-classification"
epochs = {epochs}
train_subset = 200
test_subset = 100
angle_batch = 0
[grid]
seed = [0, 1, 2]
[[override]]
when = {{seed = [0]}}
set = {{epochs = 2}}
"""


def _process_tree(root: int) -> list[int]:
    """The living descendants of ``root``, from /proc (an unrolled walk of the PPid links)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = dict(line.split(":\t", 1) for line in (entry / "status").read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if not fields.get("State", "Z").startswith("Z"):
            children.setdefault(int(fields["PPid"]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree += children.get(pid, [])
        todo += children.get(pid, [])
    return tree


def _in_groups(pgids: list[int]) -> list[int]:
    """The processes of the process groups ``pgids``."""
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            pgid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2])
        except (OSError, IndexError, ValueError):
            continue
        if pgid in pgids:
            members.append(int(entry.name))
    return members


def _keepers(pids: list[int]) -> list[int]:
    """The Ray keepers among ``pids`` (each leads a process group of its own)."""
    return [pid for pid in pids if b"snn_drtp.studies.ray_instance" in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _living(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _held_locks(runs: list[Path], deadline: float) -> dict[str, str]:
    """The run folders whose lock some process still holds at ``deadline`` (with the pid written in
    the lock and that process's command line), waiting for them to be released until then."""
    held: dict[str, str] = {}
    while True:
        held = {}
        for run in runs:
            with open(run / ".lock", "a+") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(lock, fcntl.LOCK_UN)
                except BlockingIOError:
                    lock.seek(0)
                    pid = lock.read().strip()
                    held[run.name] = f"pid {pid}: {_cmdline(int(pid)) if pid.isdigit() else b''!r}"
        if not held or time.monotonic() > deadline:
            return held
        time.sleep(0.2)


def _start_sweep(tmp_path: Path, backend: str) -> tuple[Path, subprocess.Popen]:
    """The kill experiment (KILL_SPEC, seeds 1 and 2 training on for ever) started through the CLI
    in a process of its own, 2 jobs on ``backend``, logging into tmp_path/sweep.log."""
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "experiment.toml").write_text(KILL_SPEC.format(epochs=100000))
    argv = ["experiment", str(folder), "--jobs", "2", "--threads", "1", "--backend", backend]
    code = f"import sys; from snn_drtp.cli import main; sys.exit(main({argv!r}))"
    with open(tmp_path / "sweep.log", "w") as log:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return folder, subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=log, cwd=ROOT, env=env)


def _runs_by_seed(folder: Path) -> dict[int, Path]:
    runs = folder / "runs"
    return (
        {
            json.loads((run / "config.json").read_text())["seed"]: run
            for run in runs.glob("*")
            if (run / "config.json").is_file()
        }
        if runs.is_dir()
        else {}
    )


def _epochs(run: Path) -> int:
    try:
        return len(json.loads((run / "metrics.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the process tree is read from /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_killed_sweep_leaves_no_worker_and_its_rerun_redoes_no_finished_run(tmp_path, backend, sig, request):
    """Seed 0 finishes (2 epochs) while seeds 1 and 2 train on; the sweep is killed, every process
    it started must go, and the rerun reads seed 0 and resumes the other two where they stopped."""
    if backend == "ray":
        request.getfixturevalue("ray_instance")
    folder, sweep = _start_sweep(tmp_path, backend)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while True:
            assert sweep.poll() is None, (tmp_path / "sweep.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the sweep did not get going in 300 s"
            runs = _runs_by_seed(folder)
            if len(runs) == 3 and _epochs(runs[0]) == 2 and _epochs(runs[1]) >= 1 and _epochs(runs[2]) >= 1:
                break
            time.sleep(0.2)
        workers = _process_tree(sweep.pid)
        keepers = _keepers(workers)
        assert workers and len(keepers) == (backend == "ray"), "the runs should be in processes of their own"
        finished = (runs[0] / "metrics.json").read_bytes(), (runs[0] / "metrics.json").stat().st_mtime_ns
        sweep.send_signal(sig)
        sweep.wait(timeout=90)
        assert sweep.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), (
            tmp_path / "sweep.log"
        ).read_text()[-3000:]
        deadline = time.monotonic() + 30
        while _living(workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _living(workers), f"processes outlived the {sig.name}ed sweep: {_living(workers)}"
        assert not _living(_in_groups(keepers)), "processes of the Ray instance outlived the sweep"
        held = _held_locks([runs[1], runs[2]], deadline=time.monotonic() + 60)
        assert not held, f"run folders still locked after the {sig.name}: {held}"
    finally:
        for pid in _living(workers + _in_groups(_keepers(workers))):  # a failed test leaves nothing on
            os.kill(pid, signal.SIGKILL)
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    stopped = {seed: json.loads((runs[seed] / "metrics.json").read_text()) for seed in (1, 2)}
    total = max(len(m["epoch"]) for m in stopped.values()) + 2
    (folder / "experiment.toml").write_text(KILL_SPEC.format(epochs=total))
    lines: list[str] = []
    run_experiment(folder, jobs=2, threads=1, backend=backend, log=lines.append)
    assert lines[-1].startswith("sweep: 3/3 done (1 read, 2 trained, 0 failed)"), lines
    assert ((runs[0] / "metrics.json").read_bytes(), (runs[0] / "metrics.json").stat().st_mtime_ns) == finished
    for seed, before in stopped.items():
        after = json.loads((runs[seed] / "metrics.json").read_text())
        kept = len(before["epoch"]) - 1  # the epoch under way may have been written after the listing
        assert after["epoch"] == list(range(1, total + 1))
        assert after["seconds"][:kept] == before["seconds"][:kept], f"seed {seed} was trained again from the start"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the process tree is read from /proc")
def test_a_ray_sweep_interrupted_while_its_instance_starts_leaves_nothing_behind(tmp_path):
    """Ctrl-C while Ray is still starting: the keeper gets SIGTERM inside ray.init, whose own
    handler would leave Ray's agents running."""
    pytest.importorskip("ray")
    folder, sweep = _start_sweep(tmp_path, "ray")
    keepers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not (keepers and any(b"raylet" in _cmdline(pid) for pid in _process_tree(keepers[0]))):
            assert sweep.poll() is None and time.monotonic() < deadline, (tmp_path / "sweep.log").read_text()[-3000:]
            keepers = _keepers(_process_tree(sweep.pid))
            time.sleep(0.05)
        sweep.send_signal(signal.SIGINT)
        assert sweep.wait(timeout=90) == 130
        deadline = time.monotonic() + 30
        while _living(_in_groups(keepers)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _living(_in_groups(keepers)), "processes of the Ray instance outlived the sweep"
        assert not (folder / "runs").exists() or not list((folder / "runs").glob("*/metrics.json"))
    finally:
        for pid in _living(_in_groups(keepers)):
            os.kill(pid, signal.SIGKILL)
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()


@pytest.mark.slow
def test_a_local_ray_instance_that_cannot_start_says_so_with_rays_error():
    pytest.importorskip("ray")
    from snn_drtp.studies.ray_instance import local_ray_instance

    message = r"the local Ray instance did not start \(exit code .*\):\n(.|\n)*Resource quantities must be nonnegative"
    with pytest.raises(RuntimeError, match=message), local_ray_instance(-1):
        pass
