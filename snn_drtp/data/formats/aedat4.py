"""AEDAT 4 (iniVation DV: DVXplorer, DAVIS346, ...) through the ``aedat`` library, Tonic's own
AEDAT 4 backend.

Why ``aedat``: in our comparison (``docs/event-readers.md``) it decoded every test file exactly,
LZ4-, ZSTD- and un-compressed, gave each stream's size from the file's XML header, and kept the
packets read before a truncation. A file holds packets of several streams; the events of every
event stream are read (times are microseconds on the camera's wall clock, rebased to the first
event), and frame, IMU and trigger packets are skipped and counted in a note.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snn_drtp.data.formats.recording import EventFileError, EventRecording, from_start, in_time_order, tonic_events


def read(path: Path) -> EventRecording:
    from snn_drtp.data.formats import require

    aedat = require("aedat", "aedat", "AEDAT 4 files")
    try:
        decoder = aedat.Decoder(str(path))
    except RuntimeError as exc:
        raise EventFileError(f"{path}: not a readable AEDAT 4 file, truncated or corrupt ({exc})") from exc
    streams = decoder.id_to_stream()
    sizes = {(s["width"], s["height"]) for s in streams.values() if s.get("type") == "events"}
    if not sizes:
        kinds = sorted({str(s.get("type")) for s in streams.values()})
        raise EventFileError(f"{path}: an AEDAT 4 file without an event stream (its streams: {kinds})")
    chunks: list[np.ndarray] = []
    skipped: dict[str, int] = {}
    try:
        for packet in decoder:
            if "events" in packet:
                chunks.append(packet["events"])
            else:
                kind = next(k for k in packet if k != "stream_id")
                skipped[kind] = skipped.get(kind, 0) + 1
    except RuntimeError as exc:
        raise EventFileError(
            f"{path}: the AEDAT 4 file ends inside a packet after {sum(map(len, chunks))} events ({exc}); "
            "it is truncated: copy it again, or record again if the recorder was stopped"
        ) from exc
    notes = [f"skipped {n} {kind} packet(s) (not events)" for kind, n in sorted(skipped.items())]
    if len(sizes) > 1:
        notes.append(f"{len(sizes)} event streams of sizes {sorted(sizes)} merged")
    raw = (
        np.concatenate(chunks) if chunks else np.zeros(0, dtype=[("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
    )
    events = tonic_events(raw["x"], raw["t"].astype(np.int64), raw["on"], raw["y"])
    events = from_start(in_time_order(events, notes), notes)
    width, height = max(w for w, _ in sizes), max(h for _, h in sizes)
    return EventRecording(path, "aedat4", events, (int(width), int(height), 2), tuple(notes))
