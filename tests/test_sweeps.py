"""Sweep backends: the same runs, the same numbers, on the local pool and on a local Ray instance."""

from __future__ import annotations

import json

import pytest

from snn_drtp.studies.experiments import run_experiment
from snn_drtp.studies.sweeps import run_sweep

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
