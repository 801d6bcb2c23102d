"""Event folders of any format: labels.csv variants, one folder split here, text labels and class
names, the sensor given or inferred (1-D sensors too), decoded arrays (.npy, HDF5), and training
on a folder of 1-D (cochlea) recordings."""

import csv
import json

import h5py
import numpy as np
import pytest

from snn_drtp.cli import main
from snn_drtp.data.datasets import load_dataset
from snn_drtp.data.event_folders import EventFolder, list_event_folder
from snn_drtp.data.events import event_folder_sensor
from snn_drtp.data.formats import EventFileError, detect_format, read_recording
from snn_drtp.data.formats.nmnist import write_nmnist_bin
from snn_drtp.data.frames import FrameSpec
from snn_drtp.data.overview import events_info, show_events


def events_2d(n: int, seed: int, width: int = 20, height: int = 18) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(n, dtype=[("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    out["x"], out["y"], out["p"] = rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n)
    out["t"] = np.sort(rng.integers(0, 100_000, n))
    return out


def write_labels(path, rows, header="file,label"):
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write(header + "\n")
        csv.writer(handle).writerows(rows)


# detection and decoded arrays


def test_npy_structured_arrays_with_tonic_titles_are_read(tmp_path):
    ev = events_2d(50, 0)
    titled = np.zeros(50, dtype=[("t", np.uint64), ("x", np.uint16), ("y", np.uint16), (("on", "p"), np.bool_)])
    titled["t"], titled["x"], titled["y"], titled["p"] = ev["t"], ev["x"], ev["y"], ev["p"] == 1
    np.save(tmp_path / "a.events", titled)  # named .npy by np.save; detection reads the bytes
    recording = read_recording(tmp_path / "a.events.npy")
    assert recording.format == "npy" and recording.sensor_size is None
    for field in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(recording.events[field], ev[field])


def test_npy_refuses_plain_arrays_and_times_in_seconds(tmp_path):
    np.save(tmp_path / "plain.npy", np.zeros((10, 4)))
    with pytest.raises(EventFileError, match=r"plain.npy: a plain float64 array of shape \(10, 4\).*fields x, y, t, p"):
        read_recording(tmp_path / "plain.npy")
    seconds = np.zeros(3, dtype=[("x", np.int64), ("t", np.float64)])
    seconds["t"] = [0.1, 0.25, 0.5]
    np.save(tmp_path / "seconds.npy", seconds)
    with pytest.raises(
        EventFileError, match=r"seconds.npy: times span 0.1 to 0.5 with fractions: they look like seconds"
    ):
        read_recording(tmp_path / "seconds.npy")


def test_a_truncated_npy_file_is_named(tmp_path):
    np.save(tmp_path / "whole.npy", events_2d(1000, 3))
    raw = (tmp_path / "whole.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(EventFileError, match=r"cut.npy: not a readable .npy file, truncated or corrupt"):
        read_recording(tmp_path / "cut.npy")


def test_hdf5_per_field_datasets_with_a_unit_and_sensor_attribute(tmp_path):
    ev = events_2d(40, 1)
    with h5py.File(tmp_path / "rec.h5", "w") as f:
        f.attrs["sensor_size"] = [64, 48, 2]
        for k in ("x", "y", "p"):
            f.create_dataset(f"events/{k}", data=ev[k])
        f.create_dataset("events/t", data=ev["t"] / 1e6).attrs["unit"] = "s"
    recording = read_recording(tmp_path / "rec.h5")
    assert recording.format == "hdf5" and recording.sensor_size == (64, 48, 2)
    np.testing.assert_array_equal(recording.events["t"], ev["t"])
    np.testing.assert_array_equal(recording.events["x"], ev["x"])


def test_hdf5_truncated_and_collections_are_named(tmp_path):
    with h5py.File(tmp_path / "rec.h5", "w") as f:
        f.create_dataset("x", data=np.arange(20000))
        f.create_dataset("t", data=np.arange(20000))
    raw = (tmp_path / "rec.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(EventFileError, match=r"cut.h5: .*(truncated|corrupt)"):
        read_recording(tmp_path / "cut.h5")
    with h5py.File(tmp_path / "shd.h5", "w") as f:
        f.create_dataset("spikes/times", data=np.zeros(2))
        f.create_dataset("labels", data=np.zeros(2))
    with pytest.raises(EventFileError, match=r"an SHD-layout collection of 2 recordings.*dataset shd"):
        read_recording(tmp_path / "shd.h5")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"PK\x03\x04" + bytes(40), r"a zip archive, not an event recording; extract it"),
        (b"\x1f\x8b\x08" + bytes(40), r"a gzip-compressed file"),
        (b"#!AER-DAT3.1\r\n" + bytes(40), r"AEDAT 3.1 \(jAER / cAER\); only AEDAT 4 is read here"),
        (b"% evt 2.1\n% end\n" + bytes(40), r"Prophesee RAW file in encoding 'evt21'"),
        (b"t,x,y,p\n1,2,3,1\n", r"unknown event format; the first bytes are .*: a text file"),
        (bytes([1, 2, 3, 4, 5, 6, 7]), r"unknown event format.*truncated \(7 bytes is not a whole number of 5-byte"),
    ],
    ids=["zip", "gzip", "aedat3", "evt21", "csv", "short"],
)
def test_formats_are_found_by_their_bytes_and_unsupported_ones_named(tmp_path, content, message):
    path = tmp_path / "recording.bin"
    path.write_bytes(content)
    with pytest.raises(EventFileError, match=message):
        detect_format(path)


def test_nmnist_is_recognised_without_its_name(tmp_path):
    write_nmnist_bin(tmp_path / "digit.dat", events_2d(30, 2))
    assert detect_format(tmp_path / "digit.dat") == "nmnist"


# labels.csv


def test_labels_with_bom_spaces_text_classes_and_extra_columns(tmp_path):
    for i in range(4):
        write_nmnist_bin(tmp_path / f"{i}.bin", events_2d(20, i))
    for split, rows in (
        ("train", [["0.bin", " dog ", "a"], ["1.bin", "cat", "b"]]),
        ("test", [["2.bin", "bird", "c"]]),
    ):
        (tmp_path / split).mkdir()
        for name, *_ in rows:
            (tmp_path / split / name).write_bytes((tmp_path / name).read_bytes())
        text = "\ufeff File , Label ,session\n" + "\n".join(",".join(r) for r in rows) + "\n"
        (tmp_path / split / "labels.csv").write_text(text, encoding="utf-8")
    folder = EventFolder(tmp_path, "train")  # names in sorted order over both splits
    assert folder.classes == ("bird", "cat", "dog") and folder.labels == [2, 1]
    assert EventFolder(tmp_path, "test").labels == [0]


@pytest.mark.parametrize(
    "rows, message",
    [
        ([["0.bin", "-1"]], r"labels.csv, line 2: label -1 is negative"),
        ([["0.bin", "1"], ["1.bin", "2.5"]], r"labels.csv, line 3: label '2.5' is not an integer class index"),
        ([["0.bin", "1"], ["1.bin", "dog"]], r"labels.csv, line 3: label 'dog' mixes with labels of the other kind"),
    ],
    ids=["negative", "fraction", "mixed"],
)
def test_bad_labels_are_refused_naming_the_row(tmp_path, rows, message):
    for i in range(2):
        write_nmnist_bin(tmp_path / f"{i}.bin", events_2d(10, i))
    write_labels(tmp_path / "labels.csv", rows)
    with pytest.raises(EventFileError, match=message):
        list_event_folder(tmp_path)


def test_a_header_without_file_and_label_shows_what_was_found(tmp_path):
    write_labels(tmp_path / "labels.csv", [["0.bin", "1"]], header="name,class")
    with pytest.raises(EventFileError, match=r"must name the columns file and label .*found \['name', 'class'\]"):
        list_event_folder(tmp_path)


def test_class_name_column_names_integer_labels(tmp_path):
    for i in range(3):
        write_nmnist_bin(tmp_path / f"{i}.bin", events_2d(10, i))
    write_labels(
        tmp_path / "labels.csv",
        [["0.bin", "1", "wave"], ["1.bin", "0", "clap"], ["2.bin", "1", "wave"]],
        header="file,label,class",
    )
    assert list_event_folder(tmp_path).classes == ("clap", "wave")
    write_labels(tmp_path / "labels.csv", [["0.bin", "1", "wave"], ["1.bin", "1", "clap"]], header="file,label,class")
    with pytest.raises(EventFileError, match=r"line 3: label 1 is named 'clap' here but 'wave' earlier"):
        list_event_folder(tmp_path)


def test_one_folder_is_split_stratified_and_seeded(tmp_path):
    rows = []
    for i in range(30):
        write_nmnist_bin(tmp_path / f"{i:02d}.bin", events_2d(10, i))
        rows.append([f"{i:02d}.bin", str(i % 3)])
    write_labels(tmp_path / "labels.csv", rows)
    a, b = list_event_folder(tmp_path), list_event_folder(tmp_path)
    assert a.files == b.files and a.labels["test"].count(0) == a.labels["test"].count(2) == 2  # round(0.2 * 10)
    assert len(a.files["train"]) == 24 and not set(a.files["train"]) & set(a.files["test"])
    assert list_event_folder(tmp_path, split_seed=1).files["test"] != a.files["test"]
    assert [int(f.stem) for f in a.files["train"]] == sorted(int(f.stem) for f in a.files["train"])  # csv order kept


# the sensor


def test_sensor_suffix_is_parsed_unambiguously(tmp_path):
    assert event_folder_sensor(f"events:{tmp_path}:34x34x2") == (tmp_path, (34, 34, 2))
    odd = tmp_path / "run:3x3x2"
    odd.mkdir()
    assert event_folder_sensor(f"events:{odd}") == (odd, None)  # a folder with a colon in its name
    (tmp_path / "run").mkdir()
    with pytest.raises(ValueError, match=r"ambiguous: both .*run:3x3x2 and .*run are folders"):
        event_folder_sensor(f"events:{odd}")
    with pytest.raises(ValueError, match=r"sensor '34x34' is not W x H x P"):
        event_folder_sensor(f"events:{tmp_path}:34x34")
    with pytest.raises(ValueError, match=r"sensor 0x34x2 has a zero size"):
        event_folder_sensor(f"events:{tmp_path}:0x34x2")


def write_cochlea_folder(root, n_per_split=(12, 6), channels=700):
    """1-D recordings (x = channel, no y) as .npy and as N-TIDIGITS-style HDF5 (addresses,
    timestamps in seconds), class c firing channels around 100 + 200 c."""
    rng = np.random.default_rng(5)
    for split, n in zip(("train", "test"), n_per_split, strict=True):
        (root / split).mkdir(parents=True)
        rows = []
        for i in range(n):
            label = i % 3
            k = 300
            x = np.clip(rng.normal(100 + 200 * label, 30, k), 0, channels - 1).astype(np.int64)
            t = np.sort(rng.integers(0, 500_000, k))
            name = f"{i:03d}.npy" if i % 2 else f"{i:03d}.h5"
            if i % 2:
                ev = np.zeros(k, dtype=[("x", np.int64), ("t", np.int64)])
                ev["x"], ev["t"] = x, t
                np.save(root / split / name, ev)
            else:
                with h5py.File(root / split / name, "w") as f:
                    f.create_dataset("addresses", data=x.astype(np.uint16))
                    f.create_dataset("timestamps", data=t / 1e6).attrs["units"] = "s"
            rows.append([name, str(label)])
        write_labels(root / split / "labels.csv", rows)
    return root


def test_one_dimensional_recordings_frame_into_channels_and_train(tmp_path):
    root = write_cochlea_folder(tmp_path / "cochlea")
    folder = EventFolder(root, "train")
    assert folder.sensor_size == (
        max(int(read_recording(f).events["x"].max()) for f in folder.files + EventFolder(root, "test").files) + 1,
        1,
        1,
    )
    train, test = load_dataset(
        f"events:{root}:700x1x1", tmp_path / "cache", frames=FrameSpec(n_time_bins=10), progress=False
    )
    assert train.x.shape == (12, 10, 1, 700) and test.x.shape == (6, 10, 1, 700)
    events, _ = EventFolder(root, "train", (700, 1, 1))[0]
    np.testing.assert_array_equal(train.x[0].sum((0, 1)).numpy(), np.bincount(events["x"], minlength=700))
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--engine",
            "spiking",
            "--network",
            "shd-fc",
            "--dataset",
            f"events:{root}:700x1x1",
            "--epochs",
            "1",
            "-T",
            "10",
            "--data-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["test_error"]) == 1


def test_events_info_counts_duration_on_fraction_and_rate(tmp_path):
    ev = events_2d(40, 7)
    ev["p"] = np.arange(40) < 30  # 30 ON, 10 OFF
    ev["t"] = np.linspace(1_000, 201_000, 40).astype(np.int64)  # 0.2 s
    write_nmnist_bin(tmp_path / "a.bin", ev)
    (info,) = events_info(tmp_path / "a.bin").recordings
    assert (info.format, info.events, info.sensor_size, info.sensor_from_header) == ("nmnist", 40, (20, 18, 2), False)
    assert info.duration_s == pytest.approx(0.2) and info.on_fraction == pytest.approx(0.75)
    assert info.events_per_s == pytest.approx(200)


def test_a_subset_frames_alike_whether_or_not_the_whole_split_is_cached(tmp_path):
    """With frames of a fixed window, samples have different T: a subset is padded to its own
    longest sample, before and after the whole split is cached."""
    root = tmp_path / "ev"
    (root / "train").mkdir(parents=True)
    rows = []
    for i, span in enumerate((10_000, 20_000, 90_000)):
        ev = events_2d(30, i)
        ev["t"] = np.linspace(0, span, 30).astype(np.int64)
        write_nmnist_bin(root / "train" / f"{i}.bin", ev)
        rows.append([f"{i}.bin", "0"])
    write_labels(root / "train" / "labels.csv", rows)
    spec = FrameSpec(time_window_us=5_000)
    from snn_drtp.data.events import cached_frames

    first, _ = cached_frames(f"events:{root}", "train", spec, tmp_path / "cache", progress=False, count=2)
    cached_frames(f"events:{root}", "train", spec, tmp_path / "cache", progress=False)
    again, _ = cached_frames(f"events:{root}", "train", spec, tmp_path / "cache", progress=False, count=2)
    assert first.shape[1] == 5 and np.array_equal(first, again)


def test_an_edited_test_recording_reframes_train_when_the_sensor_is_inferred(tmp_path):
    root = tmp_path / "ev"
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        write_nmnist_bin(root / split / "0.bin", events_2d(20, 1, width=5, height=5))
        write_labels(root / split / "labels.csv", [["0.bin", "0"]])
    train, _ = load_dataset(f"events:{root}", tmp_path / "cache", frames=FrameSpec(n_time_bins=1), progress=False)
    write_nmnist_bin(root / "test" / "0.bin", events_2d(20, 2, width=30, height=30))
    train, test = load_dataset(f"events:{root}", tmp_path / "cache", frames=FrameSpec(n_time_bins=1), progress=False)
    assert train.x.shape[-2:] == test.x.shape[-2:] == (30, 30)


def test_the_split_keeps_one_test_recording_of_each_class_with_two(tmp_path):
    rows = []
    for i in range(6):
        write_nmnist_bin(tmp_path / f"{i}.bin", events_2d(10, i))
        rows.append([f"{i}.bin", str(i // 2)])  # three classes of two
    write_labels(tmp_path / "labels.csv", rows)
    assert sorted(list_event_folder(tmp_path).labels["test"]) == [0, 1, 2]
    write_labels(tmp_path / "labels.csv", [["0.bin", "0"], ["1.bin", "1"]])
    with pytest.raises(EventFileError, match=r"2 recordings, no class with two or more: none can go to test"):
        list_event_folder(tmp_path)


def test_a_two_dimensional_sensor_with_more_than_two_channels_is_inferred(tmp_path):
    ev = events_2d(30, 4)
    ev["p"] = np.arange(30) % 4
    np.save(tmp_path / "a.npy", ev)
    np.save(tmp_path / "b.npy", events_2d(30, 5))
    write_labels(tmp_path / "labels.csv", [["a.npy", "0"], ["b.npy", "0"]])
    folder = EventFolder(tmp_path, "train")
    assert folder.sensor_size[2] == 4 and len(folder[0][0]) == 30


def test_events_info_skips_files_that_are_not_recordings(tmp_path):
    write_nmnist_bin(tmp_path / "a.bin", events_2d(10, 0))
    (tmp_path / "README.txt").write_text("recorded on 2026-11-30\n")
    info = events_info(tmp_path)
    assert [r.path.name for r in info.recordings] == ["a.bin"]


def test_events_show_refuses_bad_counts_and_a_folder_as_output(tmp_path):
    write_nmnist_bin(tmp_path / "a.bin", events_2d(10, 0))
    assert main(["events", "show", str(tmp_path / "a.bin"), "--out", str(tmp_path / "new" / "a.png")]) == 0
    assert (tmp_path / "new" / "a.png").is_file()
    with pytest.raises(ValueError, match=r"at least 1 recording and 1 slice; got 4 and 0"):
        show_events(tmp_path / "a.bin", tmp_path / "b.png", slices=0)
    with pytest.raises(ValueError, match=r"is a folder; give the PNG file to write"):
        show_events(tmp_path / "a.bin", tmp_path)
