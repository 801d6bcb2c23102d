"""Event files and datasets: the N-MNIST binary format, event folders, Tonic's layouts (SHD's
HDF5, DVS Gesture's .npy tree) read through Tonic's own loaders, and clear errors."""

import csv
import re

import h5py
import numpy as np
import pytest

from snn_drtp.data.datasets import load_dataset
from snn_drtp.data.event_folders import EventFolder
from snn_drtp.data.events import MissingDatasetError
from snn_drtp.data.formats import EVENT_DTYPE, EventFileError
from snn_drtp.data.formats.nmnist import read_nmnist_bin, write_nmnist_bin
from snn_drtp.data.frames import FrameSpec


def events(n: int, seed: int = 0, width: int = 34, height: int = 34) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(n, dtype=EVENT_DTYPE)
    out["x"], out["y"], out["p"] = rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n)
    out["t"] = np.sort(rng.integers(0, 300_000, n))
    return out


def nmnist_bytes(ev: np.ndarray) -> bytes:
    """The N-MNIST format written out here: x | y | p<<7 | t bits 22-16 | t bits 15-8 | t bits 7-0."""
    out = bytearray()
    for e in ev:
        t = int(e["t"])
        out += bytes([int(e["x"]), int(e["y"]), (int(e["p"]) << 7) | (t >> 16), (t >> 8) & 255, t & 255])
    return bytes(out)


def test_nmnist_binary_round_trip_through_tonic_reader(tmp_path):
    ev = events(500)
    write_nmnist_bin(tmp_path / "a.bin", ev)
    assert (tmp_path / "a.bin").read_bytes() == nmnist_bytes(ev)
    back = read_nmnist_bin(tmp_path / "a.bin", (34, 34, 2))
    for field in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(back[field], ev[field])


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda raw: raw[:-2], r"1498 bytes is not a whole number of 5-byte events \(3 bytes left over\)"),
        (lambda raw: b"", r"empty file \(0 bytes\)"),
        (lambda raw: raw[5:10] + raw[:5] + raw[10:], r"timestamps go backwards at event 1"),
        (lambda raw: bytes([200]) + raw[1:], r"event at x=200, y=\d+, p=\d lies outside the sensor"),
    ],
    ids=["truncated", "empty", "backwards", "off-sensor"],
)
def test_broken_nmnist_files_give_errors_naming_them(tmp_path, mangle, message):
    raw = nmnist_bytes(events(300))
    (tmp_path / "bad.bin").write_bytes(mangle(raw))
    with pytest.raises(EventFileError, match=re.escape(str(tmp_path / "bad.bin")) + ".*" + message):
        read_nmnist_bin(tmp_path / "bad.bin", (34, 34, 2))


def make_folder(root, split="train", n=6, width=20, height=18, seed=0):
    folder = root / split
    folder.mkdir(parents=True)
    with (folder / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        for i in range(n):
            write_nmnist_bin(folder / f"{i:05d}.bin", events(200, seed=100 * seed + i, width=width, height=height))
            writer.writerow([f"{i:05d}.bin", i % 3])
    return root


def test_event_folder_reads_recordings_and_infers_the_sensor(tmp_path):
    root = make_folder(tmp_path / "rec")
    folder = EventFolder(root, "train")
    assert len(folder) == 6 and folder.sensor_size == (20, 18, 2)
    ev, label = folder[4]
    assert label == 1 and len(ev) == 200
    assert EventFolder(root, "train", (40, 40, 2)).sensor_size == (40, 40, 2)
    make_folder(root, "test", n=2, width=25, height=10)
    train, test = load_dataset(f"events:{root}", tmp_path / "cache", frames=FrameSpec(n_time_bins=3), progress=False)
    assert train.x.shape == (6, 3, 2, 18, 25) and test.x.shape == (2, 3, 2, 18, 25)  # one sensor over both splits
    given, _ = load_dataset(
        f"events:{root}:40x30x2", tmp_path / "cache", frames=FrameSpec(n_time_bins=3), progress=False
    )
    assert given.x.shape == (6, 3, 2, 30, 40)
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\), got 'validation'"):
        EventFolder(root, "validation")
    only_train = make_folder(tmp_path / "only-train")
    with pytest.raises(FileNotFoundError, match=r"only-train/test/labels.csv: the folder has train but no test split"):
        EventFolder(only_train, "test")
    (root / "train" / "00002.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"names 1 missing file\(s\).*00002.bin"):
        EventFolder(root, "train")


def test_nmnist_small_layout_loads_as_time_first_frames(tmp_path):
    root = tmp_path / "data" / "nmnist-small"
    make_folder(root, "train", width=34, height=34)
    make_folder(root, "test", n=3, width=34, height=34)
    train, test = load_dataset("nmnist-small", tmp_path / "data", frames=FrameSpec(n_time_bins=4, duration_us=310_000))
    assert train.layout == "time_first" and train.x.shape == (6, 4, 2, 34, 34) and test.x.shape == (3, 4, 2, 34, 34)
    assert int(train.x[2].sum()) == 200 and train.y.tolist() == [0, 1, 2, 0, 1, 2]
    assert train.inputs(slice(0, 2)).steps == 4


@pytest.mark.parametrize("name", ["nmnist", "dvsgesture", "shd", "pokerdvs", "tonic:ASLDVS"])
def test_missing_tonic_dataset_says_where_and_how_without_downloading(tmp_path, name, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(MissingDatasetError) as info:
        load_dataset(name, tmp_path)
    text = str(info.value)
    assert f"dataset {name}" in text and str(tmp_path / "tonic") in text and "laid out as" in text
    if name != "pokerdvs":
        assert "http" in text


def test_unknown_tonic_class_is_named(tmp_path):
    with pytest.raises(ValueError, match="Tonic has no dataset class 'NoSuchSet'"):
        load_dataset("tonic:NoSuchSet", tmp_path)


def write_shd(root, split: str, samples: list[tuple[np.ndarray, np.ndarray, int]]) -> None:
    """SHD's HDF5 layout: spikes/times (seconds) and spikes/units as ragged arrays, labels, extra/."""
    folder = root / "tonic" / "SHD"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"shd_{split}.h5.zip").write_bytes(b"")
    with h5py.File(folder / f"shd_{split}.h5", "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u, _) in enumerate(samples):
            times[i], units[i] = t, u
        f.create_dataset("labels", data=np.array([label for _, _, label in samples], dtype=np.uint16))
        f.create_dataset("extra/keys", data=np.array([f"word{i}".encode() for i in range(20)]))
        f.create_dataset("extra/speaker", data=np.zeros(len(samples), dtype=np.uint16))


def test_shd_hdf5_layout_through_tonics_loader(tmp_path):
    rng = np.random.default_rng(0)
    samples = [
        (np.sort(rng.random(50).astype(np.float32)) * 0.8, rng.integers(0, 700, 50).astype(np.uint16), i % 20)
        for i in range(5)
    ]
    write_shd(tmp_path, "train", samples)
    write_shd(tmp_path, "test", samples[:2])
    train, test = load_dataset("shd", tmp_path, frames=FrameSpec(n_time_bins=8))
    assert train.x.shape == (5, 8, 1, 700) and test.x.shape == (2, 8, 1, 700)
    assert train.input_shape == (1, 700) and train.y.tolist() == [0, 1, 2, 3, 4]
    for i, (_, u, _) in enumerate(samples):
        np.testing.assert_array_equal(train.x[i].sum((0, 1)).numpy(), np.bincount(u, minlength=700))


def write_dvsgesture(root, split: str, n: int) -> list[np.ndarray]:
    """DVS Gesture as Tonic keeps it: the archive's name, and user<NN>_<lighting>/<label>.npy arrays
    of (x, y, p, t in milliseconds)."""
    folder = root / "tonic" / "DVSGesture"
    name = "ibmGestureTrain" if split == "train" else "ibmGestureTest"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.tar.gz").write_bytes(b"")
    rng = np.random.default_rng(1)
    arrays = []
    for i in range(n):
        user = folder / name / f"user{i // 11 + 1:02d}_fluorescent"
        user.mkdir(parents=True, exist_ok=True)
        a = np.stack(
            [
                rng.integers(0, 128, 80),
                rng.integers(0, 128, 80),
                rng.integers(0, 2, 80),
                np.sort(rng.integers(0, 900, 80)),
            ],
            axis=1,
        )
        np.save(user / f"{i % 11}.npy", a)
        arrays.append(a)
    return arrays


def test_dvsgesture_layout_through_tonics_loader_downsampled(tmp_path):
    write_dvsgesture(tmp_path, "train", 110)
    write_dvsgesture(tmp_path, "test", 110)
    train, _ = load_dataset("dvsgesture", tmp_path, frames=FrameSpec(n_time_bins=5, downsample=0.25))
    assert train.x.shape == (110, 5, 2, 32, 32) and train.n_outputs == 11
    assert int(train.x.sum()) == 110 * 80


def test_both_engines_train_on_event_frames_the_rate_engine_on_their_mean(tmp_path):
    from snn_drtp.runs.build import build_engine
    from snn_drtp.runs.config import TrainConfig
    from snn_drtp.runs.training import load_data, train

    root = tmp_path / "data" / "nmnist-small"
    make_folder(root, "train", n=12, width=34, height=34)
    make_folder(root, "test", n=4, width=34, height=34)
    base = dict(dataset="nmnist-small", network="nmnist-fc", epochs=1, batch_size=4, lr=1e-3, steps=5)
    base |= dict(data_dir=str(tmp_path / "data"), angle_batch=4)
    spiking = TrainConfig(engine="spiking", **base)
    rate = TrainConfig(engine="rate", **base)
    frames, _ = load_data(spiking, build_engine(spiking))
    means, _ = load_data(rate, build_engine(rate))
    assert frames.layout == "time_first" and means.layout == "static"
    torch_mean = frames.x.float().sum(1) / 5
    assert means.x.shape == (12, 2, 34, 34) and bool((means.x == torch_mean).all())
    assert "steps" in rate.numbers_key() and rate.run_name() != TrainConfig(**{**base, "steps": 6}).run_name()
    for config in (spiking, rate):
        metrics = train(config, None, progress=False, log=None)
        assert len(metrics["test_error"]) == 1 and metrics["angle_to_bp"]["layer1"]


def test_evaluate_run_tests_the_whole_split_and_keeps_a_partial_evaluation_apart(tmp_path):
    """A run trained with --test-subset 3 is evaluated on all 7 test recordings, and on its first
    2 when asked, recorded under a key of its own: the whole split's entry (the one experiment
    summaries read) stays."""
    import json

    from snn_drtp.runs.config import TrainConfig
    from snn_drtp.runs.training import evaluate_run, train

    make_folder(tmp_path / "data" / "nmnist-small", "train", n=6, width=34, height=34)
    make_folder(tmp_path / "data" / "nmnist-small", "test", n=7, width=34, height=34, seed=10)
    config = TrainConfig(
        engine="spiking",
        dataset="nmnist-small",
        network="nmnist-fc",
        epochs=1,
        batch_size=3,
        lr=1e-3,
        steps=5,
        data_dir=str(tmp_path / "data"),
        angle_batch=0,
        train_subset=4,
        test_subset=3,
    )
    train(config, tmp_path / "run", progress=False, log=None)
    whole = evaluate_run(tmp_path / "run", "nmnist-small", progress=False)
    first = evaluate_run(tmp_path / "run", "nmnist-small", progress=False, examples=2)
    assert (whole["examples"], first["examples"]) == (7, 2)
    recorded = json.loads((tmp_path / "run" / "evaluations.json").read_text())
    assert recorded == {"nmnist-small/test": whole, "nmnist-small/test/first2": first}


def test_evaluate_run_on_another_dataset_records_the_error_with_a_wilson_interval(tmp_path):
    """A run trained on one event dataset, tested on another framed the same way: evaluating on its
    own test split gives the error its last epoch logged; the interval is the Wilson score interval
    (both ends solve |k/n - p| = z sqrt(p (1 - p) / n)) and lands in evaluations.json."""
    import json

    from snn_drtp.runs.config import TrainConfig
    from snn_drtp.runs.training import evaluate_run, train

    for name, seed in (("nmnist-small", 0), ("other-folder", 1)):
        make_folder(tmp_path / "data" / name, "train", n=12, width=34, height=34, seed=seed)
        make_folder(tmp_path / "data" / name, "test", n=7, width=34, height=34, seed=seed + 10)
    config = TrainConfig(
        engine="spiking",
        dataset="nmnist-small",
        network="nmnist-fc",
        epochs=1,
        batch_size=4,
        lr=1e-3,
        steps=5,
        data_dir=str(tmp_path / "data"),
        angle_batch=0,
    )
    metrics = train(config, tmp_path / "run", progress=False, log=None)
    own = evaluate_run(tmp_path / "run", "nmnist-small", progress=False)
    assert own["examples"] == 7 and own["error"] == pytest.approx(metrics["test_error"][-1])
    other = evaluate_run(tmp_path / "run", f"events:{tmp_path / 'data' / 'other-folder'}", progress=False)
    k, n, z = round(7 * other["accuracy"] / 100), 7, 1.959964
    for p in np.array(other["accuracy_95"]) / 100:
        assert abs(k / n - p) == pytest.approx(z * np.sqrt(p * (1 - p) / n), abs=1e-9)
    recorded = json.loads((tmp_path / "run" / "evaluations.json").read_text())
    assert set(recorded) == {"nmnist-small/test", f"events:{tmp_path / 'data' / 'other-folder'}/test"}
