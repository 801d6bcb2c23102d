"""Events already decoded to arrays: NumPy ``.npy`` structured arrays and HDF5 files.

Fields are found by name or by a NumPy field title (Tonic's dtypes and the ``aedat`` library name
polarity ``on``): x from ``x``, ``channel``, ``unit``, ``address`` or ``addresses`` (N-TIDIGITS);
y from ``y`` (absent: a 1-D sensor); t from ``t``, ``ts``, ``timestamp(s)`` or ``time``; p from
``p``, ``on``, ``polarity`` or ``pol`` (absent: all 0). Times are microseconds (Tonic's unit)
unless an HDF5 dataset's ``unit`` or ``units`` attribute says ``s`` or ``ms``; float times with
fractions spanning under 100 us look like seconds and are refused. An HDF5 file holds its events
as one structured dataset (at ``events``, ``CD/events`` or as the file's only dataset) or as one
dataset per field, at the root or under ``events``; its ``sensor_size`` (or ``width`` /
``height``) attribute gives the sensor. Times are kept as stored (Tonic's arrays count from the
recording's start), unless the first is past 2^32 us (71 minutes), which is taken as a wall clock
and rebased.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from snn_drtp.data.formats.recording import EventFileError, EventRecording, from_start, in_time_order, tonic_events

FIELDS = {
    "x": ("x", "channel", "unit", "address", "addresses"),
    "y": ("y",),
    "t": ("t", "ts", "timestamp", "timestamps", "time"),
    "p": ("p", "on", "polarity", "pol"),
}
UNIT_SCALE = {"us": 1.0, "µs": 1.0, "microseconds": 1.0, "ms": 1e3, "milliseconds": 1e3, "s": 1e6, "seconds": 1e6}
WALL_CLOCK_US = 2**32
HDF5_TABLES = ("events", "CD/events")
HDF5_GROUPS = ("", "events")


def _field(names: Mapping[str, Any], role: str) -> str | None:
    return next((alias for alias in FIELDS[role] if alias in names), None)


def _microseconds(path: Path, t: np.ndarray, unit: str | None) -> np.ndarray:
    if unit is not None:
        scale = UNIT_SCALE.get(unit.strip().lower())
        if scale is None:
            raise EventFileError(f"{path}: time unit {unit!r} is not one of {', '.join(UNIT_SCALE)}")
        return np.round(t.astype(np.float64) * scale).astype(np.int64)
    if np.issubdtype(t.dtype, np.floating):
        if len(t) and not np.all(np.isfinite(t)):
            raise EventFileError(f"{path}: times include NaN or infinite values")
        if len(t) > 1 and np.any(t != np.round(t)) and float(t.max() - t.min()) < 100:
            raise EventFileError(
                f"{path}: times span {float(t.min()):g} to {float(t.max()):g} with fractions: they look like "
                "seconds, but arrays hold microseconds (Tonic's unit); multiply t by 1e6, or give the HDF5 "
                "dataset a unit attribute 's'"
            )
        return np.round(t).astype(np.int64)
    return t.astype(np.int64)


def _recording(
    path: Path, fmt: str, columns: Mapping[str, np.ndarray], units: str | None, sensor: tuple[int, int, int] | None
) -> EventRecording:
    names = {role: _field(columns, role) for role in FIELDS}
    x_name, t_name = names["x"], names["t"]
    if x_name is None or t_name is None:
        raise EventFileError(
            f"{path}: no {'x' if x_name is None else 't'} field among {sorted(columns)}; expected fields "
            f"x, y, t, p (or {', '.join(a for r in FIELDS.values() for a in r[1:])})"
        )
    t = _microseconds(path, np.asarray(columns[t_name]), units)
    x = np.asarray(columns[x_name])
    y, p = (None if names[r] is None else np.asarray(columns[str(names[r])]) for r in ("y", "p"))
    lengths = {len(v) for v in (x, y, p, t) if v is not None}
    if len(lengths) > 1:
        raise EventFileError(f"{path}: the fields have different lengths {sorted(lengths)}; the file is corrupt")
    for role, values in (("x", x), ("y", y)):
        if values is not None and len(values) and values.min() < 0:
            raise EventFileError(f"{path}: negative {role} coordinate {int(values.min())}")
    notes: list[str] = []
    events = in_time_order(tonic_events(x, t, p, y), notes)
    if len(events) and events["t"][0] >= WALL_CLOCK_US:
        events = from_start(events, notes, "a wall clock")
    return EventRecording(path, fmt, events, sensor, tuple(notes))


def read_npy(path: Path) -> EventRecording:
    """A structured ``.npy`` array of events (see the module docstring)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise EventFileError(f"{path}: not a readable .npy file, truncated or corrupt ({exc}); copy it again") from exc
    fields = array.dtype.fields
    if fields is None:
        raise EventFileError(
            f"{path}: a plain {array.dtype} array of shape {array.shape}, whose columns have no names; save a "
            "structured array with fields x, y, t, p (e.g. with tonic.io.make_structured_array)"
        )
    return _recording(path, "npy", {name: array[name] for name in fields}, None, None)


def read_hdf5(path: Path) -> EventRecording:
    """Events in an HDF5 file (see the module docstring)."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise EventFileError(f"{path}: not a readable HDF5 file, truncated or corrupt ({exc}); copy it again") from exc
    with handle:
        sensor = _hdf5_sensor(handle.attrs)
        datasets = [name for name, item in handle.items() if isinstance(item, h5py.Dataset)]
        single = [handle[datasets[0]]] if len(datasets) == 1 else []
        tables = [handle[name] for name in HDF5_TABLES if name in handle] + single
        table = next((t for t in tables if isinstance(t, h5py.Dataset) and t.dtype.fields), None)
        if table is not None:
            array = _read(path, table)
            columns = {n: array[n] for n in array.dtype.fields or ()}
            return _recording(path, "hdf5", columns, _unit(table.attrs), sensor)
        for group in HDF5_GROUPS:
            node = handle.get(group) if group else handle
            if not isinstance(node, h5py.Group):
                continue
            fields = {name: item for name, item in node.items() if isinstance(item, h5py.Dataset)}
            t_name = _field(fields, "t")
            if _field(fields, "x") and t_name:
                units = _unit(fields[t_name].attrs)
                return _recording(path, "hdf5", {n: _read(path, v) for n, v in fields.items()}, units, sensor)
        if "spikes" in handle and "labels" in handle:
            raise EventFileError(
                f"{path}: an SHD-layout collection of {len(handle['labels'])} recordings (spikes/times, spikes/units, "
                "labels), not one recording: read it with dataset shd (Tonic's SHD class; files under "
                "<data dir>/tonic/SHD)"
            )
        raise EventFileError(
            f"{path}: no events found: expected a structured dataset 'events' or datasets x, y, t, p at the root, "
            f"or under events/; the file holds {sorted(handle)}"
        )


def _read(path: Path, dataset: Any) -> np.ndarray:
    try:
        return np.asarray(dataset[()])
    except OSError as exc:  # a truncated file, or a compression filter h5py lacks
        raise EventFileError(
            f"{path}: dataset {dataset.name} cannot be read ({exc}); the file is truncated, or compressed with a "
            "filter h5py does not have (Prophesee's ECF: pip install hdf5plugin)"
        ) from exc


def _unit(attrs: Any) -> str | None:
    for key in ("unit", "units"):
        if key in attrs:
            value = attrs[key]
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def _hdf5_sensor(attrs: Any) -> tuple[int, int, int] | None:
    if "sensor_size" in attrs:
        size = [int(v) for v in np.ravel(attrs["sensor_size"])]
        return (size[0], size[1] if len(size) > 1 else 1, size[2] if len(size) > 2 else 2)
    if "width" in attrs and "height" in attrs:
        return (int(attrs["width"]), int(attrs["height"]), 2)
    return None
