"""Event Stream (.es) files through ``event_stream``, the format's reference library.

Why ``event_stream``: it decoded DVS and ATIS streams exactly in our comparison
(``docs/event-readers.md``); faery stores y flipped (H - 1 - y) relative to it, and evlib does not
read the format. The sensor size is in the header. ATIS streams interleave exposure measurements
with change detections: only the change detections are events here (their number skipped is
noted). Generic and colour streams hold no polarity events and are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snn_drtp.data.formats.recording import EventFileError, EventRecording, in_time_order, tonic_events


def read(path: Path) -> EventRecording:
    from snn_drtp.data.formats import require

    event_stream = require("event_stream", "event-stream", "Event Stream files")
    try:
        decoder = event_stream.Decoder(str(path))
        kind = decoder.type
        if kind not in ("dvs", "atis"):
            raise EventFileError(
                f"{path}: an Event Stream of type {kind!r}; only 'dvs' and 'atis' streams hold polarity events"
            )
        chunks = list(decoder)
        width, height = int(decoder.width), int(decoder.height)
    except RuntimeError as exc:
        raise EventFileError(f"{path}: not a readable Event Stream file, truncated or corrupt ({exc})") from exc
    empty = np.zeros(0, dtype=event_stream.atis_dtype if kind == "atis" else event_stream.dvs_dtype)
    raw = np.concatenate(chunks) if chunks else empty
    notes: list[str] = []
    if kind == "atis":
        exposure = raw["exposure"]
        if np.any(exposure):
            notes.append(f"skipped {int(exposure.sum())} exposure measurement(s) (not change events)")
        raw = raw[~exposure]
        polarity = raw["polarity"]
    else:
        polarity = raw["on"]
    events = in_time_order(tonic_events(raw["x"], raw["t"].astype(np.int64), polarity, raw["y"]), notes)
    return EventRecording(path, "es", events, (width, height, 2), tuple(notes))
