"""Robustness of runs and caches: one process per run folder, pool workers that die with their
parent, no stale temporaries, written files that follow the umask, event caches keyed by content,
frame counts that are never clipped, and polarity in any of the usual conventions."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from snn_drtp.cli import main
from snn_drtp.core.atomic import (
    FolderInUseError,
    atomic_save_npy,
    atomic_torch_save,
    atomic_write_json,
    clean_stale_temporaries,
    folder_lock,
)
from snn_drtp.data import events as events_module
from snn_drtp.data.datasets import load_dataset
from snn_drtp.data.events import cached_frames
from snn_drtp.data.formats import EVENT_DTYPE, normalise_polarity
from snn_drtp.data.formats.nmnist import write_nmnist_bin
from snn_drtp.data.frames import FrameSpec, cache_key, cache_paths
from snn_drtp.runs.config import TrainConfig
from snn_drtp.runs.training import train

ROOT = Path(__file__).resolve().parent.parent
TINY = TrainConfig(
    network="synth-classification",
    dataset="synth-classification",
    epochs=2,
    batch_size=50,
    train_subset=200,
    test_subset=100,
    angle_batch=0,
)
CLI_TRAIN = [
    "train",
    "--network",
    "synth-classification",
    "--dataset",
    "synth-classification",
    "--epochs",
    "1",
    "--train-subset",
    "200",
    "--test-subset",
    "100",
    "--angle-batch",
    "0",
    "--no-progress",
]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "SNN_DRTP_TEST_THREADS": "1"}


def python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=ROOT,
        **kwargs,
    )


# 1. one process per run folder


@pytest.mark.slow
def test_a_second_train_on_a_run_folder_in_use_is_refused_in_one_line(tmp_path, capsys):
    run = tmp_path / "RUN"
    # another process trains into RUN and stops inside train() after its first epoch (its log waits on stdin)
    holder = python(
        f"""
        import sys
        from snn_drtp.runs.config import TrainConfig
        from snn_drtp.runs.training import train
        config = TrainConfig.from_dict({TINY.to_dict()!r})
        train(config, {str(run)!r}, progress=False, log=lambda line: (print(line, flush=True), sys.stdin.readline()))
        """
    )
    try:
        assert "epoch 1" in holder.stdout.readline(), holder.stderr.read()
        other = TrainConfig(**{**TINY.to_dict(), "lr": 0.05})
        message = (
            f"run folder {run} is in use by another snn-drtp process (pid {holder.pid}); "
            "wait for it or choose another --out"
        )
        with pytest.raises(FolderInUseError, match=re.escape(message)):
            train(other, run, progress=False, log=None)
        assert main([*CLI_TRAIN, "--out", str(run)]) == 2  # the CLI, in this process: a lock of its own
        assert capsys.readouterr().err.strip().splitlines() == [f"snn-drtp: error: {message}"]
        assert json.loads((run / "config.json").read_text())["lr"] == TINY.validate().lr  # the refused wrote nothing
    finally:
        holder.stdin.close()  # the holder's log returns: it finishes its run and exits
        holder.wait(timeout=120)
    assert holder.returncode == 0, holder.stderr.read()
    assert torch.load(run / "checkpoint.pt", weights_only=False)["config"]["lr"] == TINY.validate().lr
    assert train(TINY, run, progress=False, log=None)["epoch"] == [1, 2]  # released on exit


def test_the_lock_is_released_however_train_ends(tmp_path):
    run = tmp_path / "RUN"
    with pytest.raises(ValueError, match="must be"):
        train(TrainConfig(**{**TINY.to_dict(), "epochs": 0}), run, progress=False, log=None)
    with folder_lock(run):  # free again (a lock still held would raise)
        pass
    assert (run / ".lock").read_text() == ""


# 2. pool workers die with their parent (a killed sweep: tests/test_sweeps.py)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_whose_parent_is_already_gone_exits():
    code = "from snn_drtp.core.processes import die_with_parent; die_with_parent(-1); print('alive')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert done.returncode == 1 and "alive" not in done.stdout


# 3. stale temporaries


def test_clean_stale_temporaries_removes_only_atomic_write_leftovers(tmp_path):
    names = [
        ".checkpoint.pt.ab12_xyz.tmp",
        ".metrics.json.0000zzzz.tmp",
        ".x.frames.npy.qwertyui.tmp",
        ".hidden",
        "notes.tmp",
        ".short.tmp",
        ".notes.v2.tmp",
        ".checkpoint.pt.TOOLONGNAME.tmp",
        "config.json",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    assert clean_stale_temporaries(tmp_path, {"x.frames.npy"}) == [tmp_path / ".x.frames.npy.qwertyui.tmp"]
    assert [p.name for p in clean_stale_temporaries(tmp_path)] == names[:2]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[3:])
    assert clean_stale_temporaries(tmp_path / "missing") == []


def test_train_removes_the_temporaries_of_a_killed_write(tmp_path):
    run = tmp_path / "RUN"
    killed = python(
        f"""
        import os, signal
        from snn_drtp.core.atomic import _atomic_file
        with _atomic_file({str(run / "checkpoint.pt")!r}) as handle:
            handle.write(b"half a checkpoint")
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL and len(list(run.glob(".checkpoint.pt.*.tmp"))) == 1
    train(TINY, run, progress=False, log=None)
    assert not list(run.glob(".*.tmp"))


# 4. modes


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        atomic_write_json(tmp_path / "a.json", {"a": 1})
        atomic_torch_save(tmp_path / "b.pt", {"b": 2})
        atomic_save_npy(tmp_path / "c.npy", np.zeros(3))
        assert os.umask(mask) == mask, "the umask is left as it was"
    finally:
        os.umask(old)
    for name in ("a.json", "b.pt", "c.npy"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


# 5-7. event data


def recording(path: Path, xs, ys, ts, ps) -> None:
    ev = np.zeros(len(ts), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = xs, ys, ts, ps
    write_nmnist_bin(path, ev)


def event_folder(root: Path, labels=(0, 1, 2), events_per_pixel: int = 10) -> Path:
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        n = events_per_pixel
        for i in range(3):
            recording(root / split / f"{i}.bin", [i] * n, [1] * n, np.arange(n) * 10, [1] * n)
        rows = "".join(f"{i}.bin,{label}\n" for i, label in enumerate(labels))
        (root / split / "labels.csv").write_text("file,label\n" + rows)
    return root


SPEC = FrameSpec(n_time_bins=1, duration_us=10_000)


def test_editing_labels_csv_gives_the_new_labels(tmp_path):
    root = event_folder(tmp_path / "ev")
    name = f"events:{root}:4x4x2"
    assert load_dataset(name, tmp_path / "cache", frames=SPEC, progress=False)[0].y.tolist() == [0, 1, 2]
    (root / "train" / "labels.csv").write_text("file,label\n0.bin,2\n1.bin,0\n2.bin,1\n")
    assert load_dataset(name, tmp_path / "cache", frames=SPEC, progress=False)[0].y.tolist() == [2, 0, 1]


def test_a_recording_rewritten_in_place_with_its_size_and_time_stamp_is_framed_again(tmp_path):
    root = event_folder(tmp_path / "ev")
    for name in (f"events:{root}:4x4x2", f"events:{root}"):
        train_set, _ = load_dataset(name, tmp_path / "cache", frames=SPEC, progress=False)
        assert train_set.x[0, 0, 1, 1].tolist()[:3] == [10, 0, 0]
    path = root / "train" / "0.bin"
    before = path.stat()
    recording(path, [3] * 10, [1] * 10, np.arange(10) * 10, [1] * 10)  # same size, events at x = 3
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as cp -p or rsync -t leave it
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    for name in (f"events:{root}:4x4x2", f"events:{root}"):
        train_set, _ = load_dataset(name, tmp_path / "cache", frames=SPEC, progress=False)
        assert train_set.x[0, 0, 1, 1].tolist()[:4] == [0, 0, 0, 10], name


def test_300_events_on_one_pixel_in_one_bin_count_300():
    ev = np.zeros(300, dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = 2, 3, np.arange(300), 1
    frames = FrameSpec(n_time_bins=1)(ev, (4, 4, 2))
    assert frames[0, 1, 3, 2] == 300 and int(frames.sum()) == 300 and frames.dtype == np.int16
    assert FrameSpec(n_time_bins=1)(ev[:255], (4, 4, 2)).dtype == np.uint8  # uint8 where the counts fit
    assert FrameSpec(n_time_bins=1, binary=True)(ev, (4, 4, 2)).max() == 1


def test_wide_counts_survive_the_cache_and_the_tensors(tmp_path):
    root = event_folder(tmp_path / "ev", events_per_pixel=300)
    train_set, _ = load_dataset(f"events:{root}:4x4x2", tmp_path / "cache", frames=SPEC, progress=False)
    assert train_set.x.dtype == torch.int16 and int(train_set.x.max()) == 300
    assert train_set.inputs(slice(0, 3)).spikes.max().item() == 300.0  # .float() of the batch
    assert float(train_set.accumulated().x.max()) == 300.0
    again, _ = load_dataset(f"events:{root}:4x4x2", tmp_path / "cache", frames=SPEC, progress=False)
    assert torch.equal(again.x, train_set.x)


def test_more_events_than_tonic_counts_are_refused_with_the_count():
    ev = np.zeros(40_000, dtype=EVENT_DTYPE)
    ev["t"] = np.arange(40_000)
    with pytest.raises(ValueError, match=r"40000 events in the span, -25536 counted; use shorter bins"):
        FrameSpec(n_time_bins=1)(ev, (4, 4, 2))
    assert int(FrameSpec(n_time_bins=2)(ev, (4, 4, 2)).max()) == 20_000


def test_format_1_caches_are_kept_where_nothing_was_clipped(tmp_path):
    root = event_folder(tmp_path / "ev")
    name = f"events:{root}:4x4x2"
    _, fingerprint = events_module.event_source(name, "train", tmp_path / "cache")
    folder = tmp_path / "cache" / "frames"
    folder.mkdir(parents=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[-48:]
    for bins, stored, served in ((1, 7, 7), (2, 255, 10)):  # unclipped: adopted as it is; maybe clipped: framed again
        spec = FrameSpec(n_time_bins=bins, duration_us=10_000)
        legacy = cache_paths(folder, f"{slug}-train-{cache_key(name, 'train', fingerprint, spec.key(), 1)}")
        np.save(legacy[0], np.full((3, bins, 2, 4, 4), stored, dtype=np.uint8))
        np.save(legacy[1], np.array([0, 1, 2]))
        frames, _ = cached_frames(name, "train", spec, tmp_path / "cache", progress=False)
        assert int(frames.max()) == served and not legacy[0].exists() and not legacy[1].exists()


def test_the_frame_cache_cleans_abandoned_temporaries_but_not_a_live_build(tmp_path):
    root = event_folder(tmp_path / "ev")
    folder = tmp_path / "cache" / "frames"
    folder.mkdir(parents=True)
    (folder / ".dead-train-0123456789ab.frames.npy.abcdefgh.tmp").write_bytes(b"killed build")
    (folder / ".live-train-0123456789ab.labels.npy.abcdefgh.tmp").write_bytes(b"being written")
    with folder_lock(folder, lock_name=".live-train-0123456789ab.lock"):  # a build in progress holds its lock
        cached_frames(f"events:{root}:4x4x2", "train", SPEC, tmp_path / "cache", progress=False)
    assert [p.name for p in folder.glob(".*.tmp")] == [".live-train-0123456789ab.labels.npy.abcdefgh.tmp"]


# 7. polarity


def test_polarity_minus_one_plus_one_and_booleans_fill_both_channels():
    ev = np.zeros(4, dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = 1, 1, [0, 1, 2, 3], [-1, 1, -1, 1]
    assert FrameSpec(n_time_bins=1)(ev, (4, 4, 2))[0, :, 1, 1].tolist() == [2, 2]
    flags = np.zeros(4, dtype=[("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.bool_)])
    flags["x"], flags["y"], flags["t"], flags["p"] = 1, 1, [0, 1, 2, 3], [False, True, True, True]
    assert FrameSpec(n_time_bins=1)(flags, (4, 4, 2))[0, :, 1, 1].tolist() == [1, 3]
    assert normalise_polarity(ev)["p"].tolist() == [0, 1, 0, 1]
    tonic_style = ev.copy()
    tonic_style["p"] = [0, 1, 0, 1]
    assert normalise_polarity(tonic_style) is tonic_style  # already {0, 1}: untouched
