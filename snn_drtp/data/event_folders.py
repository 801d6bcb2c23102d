"""Folders of labelled event recordings, of any format :mod:`snn_drtp.data.formats` reads.

Two layouts:

* ``<root>/train/labels.csv`` and ``<root>/test/labels.csv``, each naming files in its folder
  (as ``shared/data/nmnist-small``; a folder may hold one of the two splits);
* ``<root>/labels.csv`` alone: one folder, split into train and test by a seeded, stratified
  draw: of each class's recordings, round(``test_fraction`` n) go to test (the permutation from
  ``split_seed``; at least one of each class with two or more), the rest to train, both in the
  order of ``labels.csv``.

``labels.csv`` has a header with the columns ``file`` and ``label`` (a byte-order mark, spaces and
capitals are tolerated) and one row per recording; other columns are kept aside, except a
``class`` (or ``class_name`` / ``name``) column, which names the class of each integer label.
Labels are non-negative integers (class indices), or text (class names) in every row, mapped to
indices in sorted order over both splits. The class list is the names in index order (for integer
labels without a name column, None).

The sensor (W, H, P) is given, or inferred over both splits: W and H the largest of the headers'
sizes and of x + 1 and y + 1 over every event, P = 2 for a 2-D sensor (ON / OFF); for a 1-D sensor
(recordings without y) H = 1 and P = the largest p + 1 (for a 2-D sensor with more than ON / OFF
channels, P = the largest p + 1 too).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snn_drtp.data.formats import EventFileError, read_recording
from snn_drtp.data.formats.recording import events_sensor, off_sensor

SPLITS = ("train", "test")
CLASS_COLUMNS = ("class", "class_name", "name")
TEST_FRACTION = 0.2
SPLIT_SEED = 0


@dataclass(frozen=True)
class Listing:
    """What a folder's labels.csv files say: per split the files and their class indices, the
    class names (None: integer labels without names) and the labels.csv files read."""

    files: dict[str, list[Path]]
    labels: dict[str, list[int]]
    classes: tuple[str, ...] | None
    labels_files: tuple[Path, ...]


def _rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header (stripped, lower case) and the (line number, row) pairs of a labels.csv."""
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if "file" not in header or "label" not in header:
        raise EventFileError(
            f"{path}: the header must name the columns file and label (e.g. 'file,label'); found {header!r}"
        )
    rows = []
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise EventFileError(f"{path}, line {line}: {len(cells)} cells, but the header has {len(header)}")
        rows.append((line, {h: c.strip() for h, c in zip(header, cells, strict=True)}))
    if not rows:
        raise EventFileError(f"{path}: no recordings listed (only a header); add one row per recording: file,label")
    return header, rows


def _class_indices(
    tables: dict[Path, list[tuple[int, dict[str, str]]]],
) -> tuple[dict[Path, list[int]], tuple[str, ...] | None]:
    """Every row's class index and the class names (see the module docstring)."""
    entries = [(path, line, row) for path, rows in tables.items() for line, row in rows]
    integer = [bool(re.fullmatch(r"[+-]?\d+", row["label"])) for _, _, row in entries]
    for (path, line, row), whole in zip(entries, integer, strict=True):
        label = row["label"]
        if whole and int(label) < 0:
            raise EventFileError(f"{path}, line {line}: label {label} is negative; labels are class indices 0, 1, ...")
        if not whole and re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", label):
            raise EventFileError(f"{path}, line {line}: label {label!r} is not an integer class index")
        if not label:
            raise EventFileError(f"{path}, line {line}: empty label for file {row['file']!r}")
    if any(integer) and not all(integer):
        path, line, row = entries[integer.index(False) if integer[0] else integer.index(True)]
        raise EventFileError(
            f"{path}, line {line}: label {row['label']!r} mixes with labels of the other kind; give every "
            "recording an integer class index or every recording a class name"
        )
    if not all(integer):
        names = tuple(sorted({row["label"] for _, _, row in entries}))
        position = {name: i for i, name in enumerate(names)}
        return {p: [position[row["label"]] for _, row in rows] for p, rows in tables.items()}, names
    out = {p: [int(row["label"]) for _, row in rows] for p, rows in tables.items()}
    column = next((c for c in CLASS_COLUMNS if c in next(iter(entries))[2]), None)
    if column is None:
        return out, None
    named: dict[int, str] = {}
    for path, line, row in entries:
        if column not in row:
            raise EventFileError(
                f"{path}: no {column!r} column, which the other labels.csv has; give both splits the same columns"
            )
        index, name = int(row["label"]), row[column]
        if named.setdefault(index, name) != name:
            raise EventFileError(
                f"{path}, line {line}: label {index} is named {name!r} here but {named[index]!r} earlier"
            )
    return out, tuple(named.get(i, str(i)) for i in range(max(named) + 1))


def list_event_folder(root: str | Path, test_fraction: float = TEST_FRACTION, split_seed: int = SPLIT_SEED) -> Listing:
    """The recordings and labels of a folder in either layout (see the module docstring)."""
    root = Path(root)
    split_tables = {s: root / s / "labels.csv" for s in SPLITS}
    single = root / "labels.csv"
    if any(p.is_file() for p in split_tables.values()):
        paths = [p for p in split_tables.values() if p.is_file()]
    elif single.is_file():
        paths = [single]
    else:
        raise FileNotFoundError(
            f"{root}: no labels.csv; an event folder holds train/labels.csv and test/labels.csv, or one labels.csv "
            "(split into train and test here), with columns file,label naming recordings in the folder"
        )
    tables = {p: _rows(p)[1] for p in paths}
    indices, classes = _class_indices(tables)
    files = {p: [p.parent / row["file"] for _, row in rows] for p, rows in tables.items()}
    for path, listed in files.items():
        missing = [
            str(f.relative_to(path.parent)) if f.is_relative_to(path.parent) else str(f)
            for f in listed
            if not f.is_file()
        ]
        if missing:
            raise FileNotFoundError(f"{path} names {len(missing)} missing file(s) in {path.parent}: {missing[:5]}")
    if paths != [single]:
        present = [s for s in SPLITS if split_tables[s] in tables]
        return Listing(
            {s: files[split_tables[s]] for s in present},
            {s: indices[split_tables[s]] for s in present},
            classes,
            tuple(paths),
        )
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    labels = np.asarray(indices[single])
    rng = np.random.default_rng(split_seed)
    test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        share = max(1, round(test_fraction * len(members))) if len(members) > 1 else 0
        test[rng.permutation(members)[:share]] = True
    if not test.any():
        raise EventFileError(
            f"{single}: {len(labels)} recordings, no class with two or more: none can go to test; add recordings, "
            "or give train/ and test/ folders each with a labels.csv"
        )
    return Listing(
        {
            "train": [f for f, t in zip(files[single], test, strict=True) if not t],
            "test": [f for f, t in zip(files[single], test, strict=True) if t],
        },
        {"train": labels[~test].tolist(), "test": labels[test].tolist()},
        classes,
        (single,),
    )


def infer_sensor(paths: list[Path]) -> tuple[int, int, int]:
    """The sensor that holds every recording of ``paths`` (see the module docstring), remembered for
    the same files (path and SHA-256 of the bytes: a file rewritten in place with its size and time
    stamp is decoded again), so that the two splits of a folder decode the recordings once."""
    return _inferred(tuple((p, _digest(p)) for p in paths))


def _digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@functools.lru_cache(maxsize=8)
def _inferred(files: tuple[tuple[Path, str], ...]) -> tuple[int, int, int]:
    sizes, kinds = [], set()
    for path, _ in files:
        recording = read_recording(path)
        kinds.add(recording.one_dimensional)
        if len(kinds) > 1:
            raise EventFileError(
                f"{path}: a 1-D recording among 2-D ones (or the reverse); one folder holds one sensor"
            )
        sizes.append(events_sensor(recording.events))
        if recording.sensor_size is not None:
            sizes.append((recording.sensor_size[0], recording.sensor_size[1], 0))
    width, height, polarities = (max(size[k] for size in sizes) for k in range(3))
    return width, height, polarities


class EventFolder:
    """One split of an event folder: ``folder[i]`` is (events, class index), read on demand and
    checked against the sensor. The sensor (W, H, P) is given or inferred over both splits (so that
    train and test frames match), when first asked for."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        sensor_size: tuple[int, int, int] | None = None,
        test_fraction: float = TEST_FRACTION,
        split_seed: int = SPLIT_SEED,
    ):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.root, self.split = Path(root), split
        self.listing = list_event_folder(self.root, test_fraction, split_seed)
        if split not in self.listing.files:
            raise FileNotFoundError(
                f"no {self.root / split / 'labels.csv'}: the folder has {', '.join(self.listing.files)} "
                f"but no {split} split"
            )
        self.files, self.labels = self.listing.files[split], self.listing.labels[split]
        self.classes = self.listing.classes
        self._sensor = sensor_size

    @property
    def sensor_size(self) -> tuple[int, int, int]:
        if self._sensor is None:
            self._sensor = infer_sensor([f for files in self.listing.files.values() for f in files])
        return self._sensor

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        path = self.files[index]
        events = read_recording(path).events
        where = off_sensor(events, self.sensor_size)
        if where is not None:
            raise EventFileError(
                f"{path}: event at {where} lies outside the sensor (W, H, P) = {self.sensor_size}; the file is "
                "corrupt or the sensor size is wrong"
            )
        return events, self.labels[index]
