"""Camera formats read through their libraries: files written here by a library that writes the
format (dv-processing, faery, event_stream) or byte for byte from the format's public
description (Prophesee EVT 3.0 with clock wrap-arounds, ATIS-type DAT), read back with identical
events; truncated files give errors naming them; `events info`, `events show` and `train` on folders
of them."""

import json

import numpy as np
import pytest

from snn_drtp.cli import main
from snn_drtp.data.formats import EventFileError, MissingReaderError, read_recording

dv = pytest.importorskip("dv_processing")
faery = pytest.importorskip("faery")
event_stream = pytest.importorskip("event_stream")

WIDTH, HEIGHT = 640, 480


def ground_truth(n: int = 3000, start_us: int = 1_238_408, span_us: int = 40_000_000, seed: int = 0) -> np.ndarray:
    """Events on a 640 x 480 sensor over 40 s (so EVT 3's 2^24 us clock wraps twice), from a
    clock that does not start at 0, corners included, with repeated time stamps."""
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, dtype=[("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    ev["t"] = np.sort(start_us + rng.integers(0, span_us, n))
    ev["t"][10:20] = ev["t"][10]
    ev["x"], ev["y"], ev["p"] = rng.integers(0, WIDTH, n), rng.integers(0, HEIGHT, n), rng.integers(0, 2, n)
    ev["x"][:2], ev["y"][:2] = [0, WIDTH - 1], [0, HEIGHT - 1]
    return ev


def assert_same(recording, ev, rebased=True):
    for field in ("x", "y", "p"):
        np.testing.assert_array_equal(recording.events[field], ev[field], err_msg=field)
    expected = ev["t"] - (ev["t"][0] if rebased else 0)
    np.testing.assert_array_equal(recording.events["t"], expected)


def faery_array(ev):
    a = np.zeros(len(ev), faery.EVENTS_DTYPE)
    a["t"], a["x"], a["y"], a["on"] = ev["t"], ev["x"], ev["y"], ev["p"] == 1
    return a


# EVT 3.0, byte for byte: 16-bit little-endian words, type in the top 4 bits (Prophesee's EVT 3.0
# description): 0x8 EVT_TIME_HIGH (t bits 23-12), 0x6 EVT_TIME_LOW (t bits 11-0), 0x0 EVT_ADDR_Y
# (y), 0x2 EVT_ADDR_X (x, polarity in bit 11). Times wrap every 2^24 us.


def evt3_bytes(ev, dense_time_high=True, header=True) -> bytes:
    words, high, low, y = [], None, None, None
    for e in ev:
        t = int(e["t"])
        if high is None or t >> 12 != high:
            steps = range((high or (t >> 12) - 1) + 1, (t >> 12) + 1) if dense_time_high else [t >> 12]
            words += [(0x8 << 12) | (h & 0xFFF) for h in steps]
            high, low = t >> 12, None
        if t & 0xFFF != low:
            low = t & 0xFFF
            words.append((0x6 << 12) | low)
        if int(e["y"]) != y:
            y = int(e["y"])
            words.append((0x0 << 12) | y)
        words.append((0x2 << 12) | (int(e["p"]) << 11) | int(e["x"]))
    text = f"% evt 3.0\n% format EVT3;height={HEIGHT};width={WIDTH}\n% geometry {WIDTH}x{HEIGHT}\n% end\n"
    return (text.encode() if header else b"") + np.array(words, dtype="<u2").tobytes()


@pytest.mark.parametrize("dense", [True, False], ids=["camera-like TIME_HIGH", "sparse TIME_HIGH"])
def test_evt3_across_two_clock_wrap_arounds(tmp_path, dense):
    """With sparse TIME_HIGH and no event in the last 0.4 s before a wrap, evlib 0.13 misses the
    wrap (its times jump back by about 2^24 us): the reader restores it."""
    ev = ground_truth()
    if not dense:
        ev = ev[ev["t"] % 2**24 < 2**24 - 400_000]
    (tmp_path / "a.raw").write_bytes(evt3_bytes(ev, dense))
    recording = read_recording(tmp_path / "a.raw")
    assert recording.format == "evt3" and recording.sensor_size == (WIDTH, HEIGHT, 2)
    assert ev["t"][-1] - ev["t"][0] > 2 * 2**24
    assert_same(recording, ev)
    restored = [n for n in recording.notes if "clock wrap-around(s) restored" in n]
    assert restored == (
        [] if dense else ["2 missed 16777216 us clock wrap-around(s) restored (the decoder's times jumped back)"]
    )


def test_evt2_and_dat_written_by_faery(tmp_path):
    ev = ground_truth(span_us=5_000_000)
    stream = faery.events_stream_from_array(faery_array(ev), dimensions=(WIDTH, HEIGHT))
    stream.to_file(str(tmp_path / "a.raw"), version="evt2", zero_t0=False)
    faery.events_stream_from_array(faery_array(ev), dimensions=(WIDTH, HEIGHT)).to_file(
        str(tmp_path / "a.dat"), version="dat2", zero_t0=False
    )
    for name, fmt in (("a.raw", "evt2"), ("a.dat", "dat")):
        recording = read_recording(tmp_path / name)
        assert recording.format == fmt and recording.sensor_size == (WIDTH, HEIGHT, 2)
        assert_same(recording, ev)


def test_atis_type_dat_as_n_cars_records_it(tmp_path):
    """DAT byte for byte: '%' header lines, event type 0x00 (ATIS TD) and size 8, then per event a
    little-endian uint32 t and a uint32 with x in bits 13-0, y in 27-14, polarity in 31-28."""
    ev = ground_truth(n=500, span_us=100_000)
    ev["x"] %= 304
    ev["y"] %= 240
    body = np.zeros(len(ev), dtype=[("t", "<u4"), ("d", "<u4")])
    body["t"] = ev["t"]
    body["d"] = ev["x"] | (ev["y"] << 14) | (ev["p"] << 28)
    header = b"% Data file containing TD events.\n% Version 2\n% Width 304\n% Height 240\n" + bytes([0x00, 0x08])
    (tmp_path / "car.dat").write_bytes(header + body.tobytes())
    recording = read_recording(tmp_path / "car.dat")
    assert recording.sensor_size == (304, 240, 2)
    assert_same(recording, ev)


def write_aedat4(path, ev, frames=True):
    config = (
        dv.io.MonoCameraWriter.DAVISConfig("DAVIS346", (WIDTH, HEIGHT))
        if frames
        else dv.io.MonoCameraWriter.EventOnlyConfig("DVXplorer", (WIDTH, HEIGHT))
    )
    writer = dv.io.MonoCameraWriter(str(path), config)
    store = dv.EventStore()
    for e in ev:
        store.push_back(int(e["t"]), int(e["x"]), int(e["y"]), bool(e["p"]))
    writer.writeEvents(store)
    if frames:
        t0 = int(ev["t"][0])
        writer.writeFrame(dv.Frame(t0 + 1000, np.full((HEIGHT, WIDTH), 7, dtype=np.uint8)))
        writer.writeImu(dv.IMU(t0 + 2000, 25.0, 0.0, 0.0, 9.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    del writer  # dv-processing finishes the file when the writer is destroyed


def test_aedat4_from_dv_processing_skips_frames_and_imu_with_a_note(tmp_path):
    ev = ground_truth(span_us=2_000_000)
    write_aedat4(tmp_path / "a.aedat4", ev)
    recording = read_recording(tmp_path / "a.aedat4")
    assert recording.format == "aedat4" and recording.sensor_size == (WIDTH, HEIGHT, 2)
    assert_same(recording, ev)
    notes = " ".join(recording.notes)
    assert "skipped 1 frame packet(s)" in notes and "imus packet(s)" in notes
    assert f"times rebased to the first event (t_0 = {ev['t'][0]} us" in notes


def test_event_stream_dvs_and_atis(tmp_path):
    ev = ground_truth(span_us=2_000_000)
    dvs = np.zeros(len(ev), event_stream.dvs_dtype)
    dvs["t"], dvs["x"], dvs["y"], dvs["on"] = ev["t"], ev["x"], ev["y"], ev["p"] == 1
    with event_stream.Encoder(str(tmp_path / "a.es"), "dvs", WIDTH, HEIGHT) as encoder:
        encoder.write(dvs)
    recording = read_recording(tmp_path / "a.es")
    assert recording.format == "es" and recording.sensor_size == (WIDTH, HEIGHT, 2)
    assert_same(recording, ev, rebased=False)
    atis = np.zeros(len(ev), event_stream.atis_dtype)
    atis["t"], atis["x"], atis["y"], atis["polarity"] = ev["t"], ev["x"], ev["y"], ev["p"] == 1
    atis["exposure"][::10] = True
    with event_stream.Encoder(str(tmp_path / "b.es"), "atis", WIDTH, HEIGHT) as encoder:
        encoder.write(atis)
    recording = read_recording(tmp_path / "b.es")
    assert_same(recording, ev[atis["exposure"] == 0], rebased=False)
    assert recording.notes == (f"skipped {len(ev[::10])} exposure measurement(s) (not change events)",)


def test_events_off_the_header_sensor_are_refused(tmp_path):
    ev = ground_truth(n=50, span_us=1000)
    (tmp_path / "a.raw").write_bytes(evt3_bytes(ev).replace(b"geometry 640x480", b"geometry 320x240"))
    with pytest.raises(EventFileError, match=r"a.raw: event at x=\d+, y=\d+, p=\d lies outside the 320 x 240 sensor"):
        read_recording(tmp_path / "a.raw")


def written(tmp_path) -> dict[str, bytes]:
    """One small file of each camera format."""
    ev = ground_truth(n=400, span_us=500_000)
    write_aedat4(tmp_path / "w.aedat4", ev, frames=False)
    faery.events_stream_from_array(faery_array(ev), dimensions=(WIDTH, HEIGHT)).to_file(
        str(tmp_path / "w-evt2.raw"), version="evt2", zero_t0=False
    )
    faery.events_stream_from_array(faery_array(ev), dimensions=(WIDTH, HEIGHT)).to_file(
        str(tmp_path / "w.dat"), version="dat2", zero_t0=False
    )
    dvs = np.zeros(len(ev), event_stream.dvs_dtype)
    dvs["t"], dvs["x"], dvs["y"], dvs["on"] = ev["t"], ev["x"], ev["y"], ev["p"] == 1
    with event_stream.Encoder(str(tmp_path / "w.es"), "dvs", WIDTH, HEIGHT) as encoder:
        encoder.write(dvs)
    out = {name: (tmp_path / f"w.{name}").read_bytes() for name in ("aedat4", "dat", "es")}
    out["evt2"] = (tmp_path / "w-evt2.raw").read_bytes()
    out["evt3"] = evt3_bytes(ev)
    return out


@pytest.mark.parametrize(
    "fmt, cut, message",
    [
        ("aedat4", lambda raw: raw[: len(raw) // 2], r"ends inside a packet|truncated or corrupt"),
        ("aedat4", lambda raw: raw[:40], r"truncated or corrupt"),
        ("evt3", lambda raw: raw[:-1], r"not a whole number of 2-byte words \(1 left over\); the file is truncated"),
        ("evt3", lambda raw: raw[:30], r"ends inside its text header"),
        ("evt2", lambda raw: raw[:-3], r"not a whole number of 4-byte words \(1 left over\)"),
        ("dat", lambda raw: raw[:-5], r"not a whole number of 8-byte words \(3 left over\)"),
        ("dat", lambda raw: raw[:20], r"ends inside its text header"),
        ("es", lambda raw: raw[:16], r"truncated or corrupt \(the stream has an incomplete header\)"),
    ],
    ids=["aedat4-half", "aedat4-head", "evt3-odd", "evt3-head", "evt2-word", "dat-event", "dat-head", "es-head"],
)
def test_truncated_files_give_errors_naming_them(tmp_path, fmt, cut, message):
    raw = written(tmp_path)[fmt]
    path = tmp_path / f"cut.{fmt}"
    path.write_bytes(cut(raw))
    with pytest.raises(EventFileError, match=f"{path}.*({message})"):
        read_recording(path)


def test_a_missing_reader_names_the_package_and_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "aedat", None)
    (tmp_path / "w.aedat4").write_bytes(written(tmp_path)["aedat4"])
    with pytest.raises(MissingReaderError, match=r"needs the package aedat.*pip install 'snn-drtp\[cameras\]'"):
        read_recording(tmp_path / "w.aedat4")


def test_events_info_and_show_on_every_format(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for fmt, raw in written(tmp_path).items():
        (folder / f"rec-{fmt}.bin").write_bytes(raw)  # one name for all: the bytes say the format
    assert main(["events", "info", str(folder)]) == 0
    out = capsys.readouterr().out
    for fmt in ("aedat4", "evt2", "evt3", "dat", "es"):
        assert f"| rec-{fmt}.bin |  |  | {fmt} | 640x480x2 | 400 |" in out
    assert "5 recordings (" in out and "events: 2,000 in all" in out
    assert main(["events", "show", str(folder / "rec-evt3.bin"), "--out", str(tmp_path / "one.png")]) == 0
    assert main(["events", "show", str(folder), "--out", str(tmp_path / "all.png"), "--recordings", "5"]) == 0
    assert (tmp_path / "one.png").stat().st_size > 5000 and (tmp_path / "all.png").stat().st_size > 5000


@pytest.mark.parametrize("fmt", ["aedat4", "evt3"])
def test_train_on_a_folder_of_camera_recordings(tmp_path, fmt):
    root = tmp_path / "events"
    for split, n in (("train", 8), ("test", 4)):
        (root / split).mkdir(parents=True)
        rows = ["file,label"]
        for i in range(n):
            ev = ground_truth(n=300, span_us=200_000, seed=100 * (split == "test") + i)
            ev["x"] = ev["x"] % 16 + 16 * (i % 2)  # class 1 lights the right half
            ev["y"] %= 16
            path = root / split / f"{i}.{fmt}"
            if fmt == "aedat4":
                write_aedat4(path, ev, frames=False)
            else:
                path.write_bytes(evt3_bytes(ev))
            rows.append(f"{i}.{fmt},{i % 2}")
        (root / split / "labels.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    args = ["train", "--engine", "spiking", "--network", "nmnist-fc", "--dataset", f"events:{root}:34x34x2"]
    args += ["--epochs", "1", "-T", "5", "--data-dir", str(tmp_path / "cache"), "--out", str(out), "--no-progress"]
    assert main([*args, "--threads", "1"]) == 0
    assert len(json.loads((out / "metrics.json").read_text())["test_error"]) == 1


def test_prophesee_headers_in_any_case_and_data_starting_with_a_percent_sign(tmp_path):
    ev = ground_truth(n=20, span_us=1000)
    ev["t"] = 37 << 12  # the first word, TIME_HIGH 37 = 0x8025, starts the data with the byte '%'
    raw = evt3_bytes(ev, header=False)
    assert raw[:1] == b"%" and b"\n" not in raw
    header = f"% evt 3.0\n% Format EVT3;height={HEIGHT};width={WIDTH}\n% Geometry {WIDTH}x{HEIGHT}\n% end\n"
    (tmp_path / "a.raw").write_bytes(header.encode() + raw)
    recording = read_recording(tmp_path / "a.raw")
    assert recording.sensor_size == (WIDTH, HEIGHT, 2) and len(recording.events) == 20
    (tmp_path / "b.raw").write_bytes(header.replace("% evt", "% Evt").encode() + raw)
    with pytest.raises(EventFileError, match=r"b.raw: the header says EVT 3.0 but evlib reads the file as 'evt2'"):
        read_recording(tmp_path / "b.raw")


def test_a_percent_text_file_is_neither_raw_nor_dat(tmp_path):
    (tmp_path / "notes.txt").write_text("% my recording notes\nsecond line\n")
    with pytest.raises(EventFileError, match=r"notes.txt: text lines starting with '%'.*not RAW, and not followed by"):
        read_recording(tmp_path / "notes.txt")


def test_an_empty_atis_stream_has_no_events(tmp_path):
    with event_stream.Encoder(str(tmp_path / "e.es"), "atis", WIDTH, HEIGHT):
        pass
    assert len(read_recording(tmp_path / "e.es").events) == 0
