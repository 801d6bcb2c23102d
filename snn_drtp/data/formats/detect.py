"""Which event format a file holds, from its first bytes, never from its name.

Magic bytes and headers (public format descriptions):

* AEDAT 4: the text line ``#!AER-DAT4.0``; AEDAT 1-3 (jAER, cAER) start ``#!AER-DAT`` with their
  version (read by none of the readers here);
* Prophesee: text header lines starting with ``%``; RAW files name their encoding
  (``% evt 3.0`` / ``% format EVT3;...``, EVT 2.0, EVT 2.1) and end the header with ``% end``;
  DAT files have no encoding line and follow the header with two bytes, event type and size;
* Event Stream: ``Event Stream`` (12 bytes), then major, minor and patch version and the type;
* NumPy ``.npy``: ``\\x93NUMPY``; HDF5: ``\\x89HDF\\r\\n\\x1a\\n``;
* N-MNIST binary (Orchard et al. 2015): no header, 5 bytes per event, so it is the format of a
  file that matches none of the above, a whole number of 5-byte events long, whose first events'
  timestamps do not decrease.

Known formats that are not read here (archives, MATLAB files, ROS bags, AEDAT 1-3, text) are
refused with their name and what to do.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from snn_drtp.data.formats.recording import EventFileError

HEADER_BYTES = 1 << 16
"""How much of a file is read to find its format (Prophesee headers are a few hundred bytes)."""
NMNIST_PROBE_EVENTS = 256
DAT_EVENT_TYPES = (0x00, 0x0C)
"""DAT event types read here: ATIS TD (0x00, as in N-CARS) and CD (0x0c), both 8 bytes."""

REFUSED = [
    (b"PK\x03\x04", "a zip archive", "extract it and point at the recordings inside"),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it (gunzip, or tar -xzf for .tar.gz) first"),
    (b"BZh", "a bzip2-compressed file", "decompress it (bunzip2, or tar -xjf) first"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it (unxz, or tar -xJf) first"),
    (b"MATLAB 5.0 MAT-file", "a MATLAB .mat file", "save the events from MATLAB or scipy.io as .npy (x, y, t, p)"),
    (b"#ROSBAG", "a ROS bag", "export the event topic to AEDAT4 or .npy (x, y, t, p) first"),
]
NAMES = {
    "aedat4": "AEDAT 4 (iniVation)",
    "evt2": "Prophesee EVT 2.0 RAW",
    "evt3": "Prophesee EVT 3.0 RAW",
    "dat": "Prophesee DAT",
    "es": "Event Stream",
    "npy": "NumPy .npy",
    "hdf5": "HDF5",
    "nmnist": "N-MNIST binary",
}
"""The formats read here, by the name :func:`detect_format` returns."""


class UnsupportedFormatError(EventFileError):
    """A file of a known event (or container) format that is not read here."""


class UnknownFormatError(EventFileError):
    """A file whose first bytes match no known format."""


def prophesee_header(head: bytes) -> tuple[list[str], int]:
    """The ``%`` lines at the start of a Prophesee file (without ``% ``) and the offset where the
    binary data begin."""
    lines, offset = [], 0
    while offset < len(head) and head[offset : offset + 1] == b"%":
        end = head.find(b"\n", offset)
        if end < 0:
            break
        lines.append(head[offset + 1 : end].decode("latin-1").strip())
        offset = end + 1
        if lines[-1] == "end":
            break
    return lines, offset


def prophesee_encoding(lines: list[str]) -> str | None:
    """``evt2``, ``evt3``, ``evt21`` (or another encoding's lower-case name) from a RAW header's
    ``evt`` or ``format`` line; None when it has neither (a DAT header)."""
    for line in lines:
        key, _, value = line.partition(" ")
        key, value = key.lower(), value.strip()
        if key == "evt":
            return "evt" + value.replace(".0", "").replace(".", "")
        if key == "format":
            return value.split(";")[0].strip().lower()
    return None


def detect_format(path: str | Path) -> str:
    """The format of an event file, one of :data:`NAMES`; :class:`UnsupportedFormatError` names a
    known format that is not read here, :class:`UnknownFormatError` shows the first bytes seen."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
    size = path.stat().st_size
    if not head:
        raise EventFileError(f"{path}: empty file (0 bytes); copy it again")
    if head.startswith(b"#!AER-DAT"):
        version = head[9:12].decode("latin-1", "replace")
        if version.startswith("4"):
            return "aedat4"
        raise UnsupportedFormatError(
            f"{path}: AEDAT {version} (jAER / cAER); only AEDAT 4 is read here: convert it with DV "
            "(dv-processing) or jAER to AEDAT 4, or to .npy (x, y, t, p)"
        )
    if head.startswith(b"Event Stream"):
        return "es"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith(b"%"):
        lines, _ = prophesee_header(head)
        encoding = prophesee_encoding(lines)
        if encoding in ("evt2", "evt3"):
            return encoding
        if encoding is not None:
            raise UnsupportedFormatError(
                f"{path}: a Prophesee RAW file in encoding {encoding!r}; EVT 2.0 and EVT 3.0 are read here: "
                "convert it with Metavision (metavision_file_to_dat / _hdf5) or faery"
            )
        _, offset = prophesee_header(head)
        kind = head[offset : offset + 2]
        if kind.startswith(b"%") and b"\n" not in head[offset:]:
            raise EventFileError(
                f"{path}: the file ends inside its text header (in a '%' line of a Prophesee RAW or DAT header, "
                f"{size} bytes); it is truncated: copy it again"
            )
        if len(kind) < 2 or (kind[0] in DAT_EVENT_TYPES and kind[1] == 8):
            return "dat"  # (a file cut before its type bytes is reported by the DAT reader)
        raise UnknownFormatError(
            f"{path}: text lines starting with '%' (a Prophesee-style header) without an 'evt' or 'format' line, "
            f"so not RAW, and not followed by DAT's event type and size bytes (found {kind.hex(' ')}); "
            f"{_what_was_seen(head, size)}"
        )
    for magic, name, fix in REFUSED:
        if head.startswith(magic):
            raise UnsupportedFormatError(f"{path}: {name}, not an event recording; {fix}")
    if len(head) > 262 and head[257:262] == b"ustar":
        raise UnsupportedFormatError(f"{path}: a tar archive, not an event recording; extract it (tar -xf) first")
    if _looks_like_nmnist(head, size):
        return "nmnist"
    raise UnknownFormatError(f"{path}: unknown event format; {_what_was_seen(head, size)}")


def _looks_like_nmnist(head: bytes, size: int) -> bool:
    """A whole number of 5-byte events whose first timestamps (23 bits) do not decrease."""
    if size % 5:
        return False
    n = min(NMNIST_PROBE_EVENTS, len(head) // 5)
    raw = np.frombuffer(head[: 5 * n], dtype=np.uint8).reshape(n, 5).astype(np.int64)
    t = ((raw[:, 2] & 127) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    regular = raw[:, 1] != 240  # y = 240 marks a timestamp overflow
    return bool(np.all(np.diff(t[regular]) >= 0))


def _what_was_seen(head: bytes, size: int) -> str:
    first = head[:16]
    text = first.decode("ascii", "replace")
    printable = bool(re.fullmatch(rb"[\t\n\r\x20-\x7e]*", head[:256]))
    seen = f"the first bytes are {first.hex(' ')} ({text!r}), {size} bytes in all"
    if printable:
        return (
            f"{seen}: a text file; write the events as .npy (a structured array with fields x, y, t, p) "
            "or one of the camera formats (AEDAT 4, EVT 2/3, DAT, Event Stream)"
        )
    hint = (
        f"; as an N-MNIST binary recording it would be truncated ({size} bytes is not a whole number of "
        f"5-byte events, {size % 5} bytes left over)"
        if size % 5
        else "; its 5-byte events would have timestamps going backwards, so it is not an N-MNIST recording either"
    )
    return f"{seen}. Read here: {', '.join(NAMES.values())}{hint}"
