"""Prophesee recordings: EVT 2.0 and EVT 3.0 RAW files through ``evlib``, DAT files through
``expelliarmus`` (installed with Tonic).

Why these (``docs/event-readers.md`` has the measurements): on EVT 3.0, expelliarmus 1.1.12 decoded
every test file with times wrong by growing multiples of 4096 us (also on a real EVK3 recording),
and faery froze every time after the first 2^24 us wrap-around; evlib decoded the camera's files
exactly, across wrap-arounds. EVT 2.0 is read by the same library. evlib does not read DAT;
expelliarmus decoded DAT exactly (across its 2^32 us wrap too) and, unlike faery, also reads the
older ATIS type-0 (TD) files such as N-CARS.

What is checked here, because the libraries do not: the text header must be whole (expelliarmus
loops forever on a file cut inside it), the data must be whole words (EVT 2: 4 bytes, EVT 3: 2
bytes, DAT: the event size from its header), and time must run forward. An EVT 3 writer that emits
TIME_HIGH only when it changes (faery's does) can leave evlib one 2^24 us wrap short: a backward
jump of more than one TIME_HIGH tick (4,096 us) is taken as such a missed wrap and 2^24 us is added
from there on, with a note (a sparse file cannot tell gaps of more than 2^24 us apart anyway). EVT
2.0 times wrap every 2^34 us (4.8 h); evlib misdecodes a recording across that, so one is refused.
The sensor comes from the header (``% geometry WxH``, ``% format ...;width=W;height=H``, DAT's
``% Width`` / ``% Height``, or the sensor generation in the plugin name: :data:`SENSORS`); times are
rebased to the first event (a camera's clock starts at power-on, and faery's ``% t0`` header lines
are then irrelevant).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from snn_drtp.data.formats.detect import DAT_EVENT_TYPES, HEADER_BYTES, prophesee_header
from snn_drtp.data.formats.recording import EventFileError, EventRecording, from_start, in_time_order, tonic_events

EVT3_WRAP_US = 1 << 24
EVT3_TICK_US = 1 << 12
EVT2_WRAP_US = 1 << 34
SENSORS = {
    "gen3": (640, 480),
    "gen31": (640, 480),
    "gen4": (1280, 720),
    "gen41": (1280, 720),
    "imx636": (1280, 720),
    "genx320": (320, 320),
}
"""Prophesee sensor generations and their pixel arrays, for headers that name the HAL plugin
(``% plugin_name hal_plugin_gen41_evk3``) or sensor but give no geometry."""
WORD_BYTES = {"evt2": 4, "evt3": 2}
NAMES = {"evt2": "EVT 2.0", "evt3": "EVT 3.0", "dat": "DAT"}


def _header(path: Path, fmt: str) -> tuple[list[str], int]:
    """The header lines and the data offset, after checking the header is whole."""
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
    lines, offset = prophesee_header(head)
    size = path.stat().st_size
    ended = bool(lines) and lines[-1] == "end"
    rest = head[offset:]
    if not ended and ((rest.startswith(b"%") and b"\n" not in rest) or offset >= size):
        raise EventFileError(
            f"{path}: the {NAMES[fmt]} file ends inside its text header ({size} bytes); it is truncated: copy it again"
        )
    return lines, offset


def _sensor(header: list[str]) -> tuple[int, int, int] | None:
    lines = [line.lower() for line in header]
    for line in lines:
        if m := re.fullmatch(r"geometry\s+(\d+)x(\d+)", line):
            return int(m[1]), int(m[2]), 2
    for line in lines:
        if line.startswith("format "):
            fields = dict(part.split("=", 1) for part in line.split(";")[1:] if "=" in part)
            if "width" in fields and "height" in fields:
                return int(fields["width"]), int(fields["height"]), 2
    values = {k: v.strip() for k, _, v in (line.partition(" ") for line in lines)}
    if values.get("width", "").isdigit() and values.get("height", "").isdigit():
        return int(values["width"]), int(values["height"]), 2
    named = " ".join(values.get(k, "") for k in ("plugin_name", "sensor_name"))
    for generation, (width, height) in SENSORS.items():
        if re.search(rf"(^|[_ ]){generation}([_ ]|$)", named):
            return width, height, 2
    return None


def _check_words(path: Path, fmt: str, offset: int, word: int) -> None:
    data = path.stat().st_size - offset
    if data % word:
        raise EventFileError(
            f"{path}: {data} bytes of {NAMES[fmt]} data is not a whole number of {word}-byte words "
            f"({data % word} left over); the file is truncated: copy it again"
        )


def _unwrap(t: np.ndarray, wrap: int, notes: list[str]) -> np.ndarray:
    """``t`` with ``wrap`` added after every backward step of more than one TIME_HIGH tick (4,096 us:
    more than a sensor's time-stamp jitter), the steps a decoder that missed a wrap leaves."""
    jumps = np.flatnonzero(np.diff(t) < -EVT3_TICK_US) + 1
    if len(jumps):
        notes.append(f"{len(jumps)} missed {wrap} us clock wrap-around(s) restored (the decoder's times jumped back)")
        t = t + np.searchsorted(jumps, np.arange(len(t)), side="right") * wrap
    return t


def _recording(path: Path, fmt: str, x, y, t, p, lines: list[str], notes: list[str]) -> EventRecording:
    events = tonic_events(np.asarray(x), np.asarray(t, dtype=np.int64), np.asarray(p), np.asarray(y))
    events = from_start(in_time_order(events, notes), notes)
    return EventRecording(path, fmt, events, _sensor(lines), tuple(notes))


def _read_raw(path: Path, fmt: str) -> EventRecording:
    from snn_drtp.data.formats import require

    lines, offset = _header(path, fmt)
    _check_words(path, fmt, offset, WORD_BYTES[fmt])
    evlib_formats = require("evlib.formats", "evlib", f"Prophesee {NAMES[fmt]} files")
    notes: list[str] = []
    if path.stat().st_size == offset:
        return _recording(path, fmt, [], [], [], [], lines, notes)
    seen = str(evlib_formats.detect_format(str(path))[0]).lower()
    if seen != fmt:
        raise EventFileError(
            f"{path}: the header says {NAMES[fmt]} but evlib reads the file as {seen!r} (it looks for the lower-case "
            f"line '% evt {NAMES[fmt][4:]}'); write that header line in lower case"
        )
    try:
        frame = evlib_formats.load_events(str(path))
        frame = frame.collect() if hasattr(frame, "collect") else frame
    except OSError as exc:
        raise EventFileError(f"{path}: evlib cannot decode this {NAMES[fmt]} file ({exc})") from exc
    column = frame["t"]
    t = column.dt.total_microseconds().to_numpy() if str(column.dtype).startswith("Duration") else column.to_numpy()
    t = np.asarray(t, dtype=np.int64)
    if fmt == "evt3":
        t = _unwrap(t, EVT3_WRAP_US, notes)
    if fmt == "evt2" and len(t) and int(t.max()) - int(t.min()) >= EVT2_WRAP_US:
        raise EventFileError(
            f"{path}: this EVT 2.0 recording crosses the format's 2^34 us (4.8 h) clock wrap-around, which evlib "
            "does not decode; cut the recording before the wrap (e.g. with metavision_file_cutter)"
        )
    return _recording(
        path, fmt, frame["x"].to_numpy(), frame["y"].to_numpy(), t, frame["polarity"].to_numpy(), lines, notes
    )


def read_evt2(path: Path) -> EventRecording:
    return _read_raw(path, "evt2")


def read_evt3(path: Path) -> EventRecording:
    return _read_raw(path, "evt3")


def read_dat(path: Path) -> EventRecording:
    lines, offset = _header(path, "dat")
    with path.open("rb") as handle:
        handle.seek(offset)
        kind = handle.read(2)
    if len(kind) < 2:
        raise EventFileError(
            f"{path}: the DAT file ends after its text header, without the event type and size bytes; it is truncated"
        )
    event_type, event_size = kind
    if event_type not in DAT_EVENT_TYPES or event_size != 8:
        raise EventFileError(
            f"{path}: DAT event type {event_type:#04x} of {event_size} bytes; only CD / TD events (type 0x0c or "
            "0x00, 8 bytes) are read"
        )
    _check_words(path, "dat", offset + 2, event_size)
    from snn_drtp.data.formats import require

    expelliarmus = require("expelliarmus", "expelliarmus", "Prophesee DAT files")
    if path.resolve().suffix == ".dat":
        raw = expelliarmus.Wizard(encoding="dat", fpath=str(path)).read()
    else:  # expelliarmus insists on a name ending .dat (and resolves links): read a copy so named
        with tempfile.TemporaryDirectory() as folder:
            named = Path(folder) / "recording.dat"
            shutil.copyfile(path, named)
            raw = expelliarmus.Wizard(encoding="dat", fpath=str(named)).read()
    if raw is None:
        raw = np.zeros(0, dtype=[("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.uint8)])
    return _recording(path, "dat", raw["x"], raw["y"], raw["t"], raw["p"], lines, [])
