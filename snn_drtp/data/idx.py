"""Reader for the IDX format of MNIST-style datasets (LeCun et al.).

An IDX file is a big-endian header ``0x00 0x00 <dtype> <ndim>``, ``ndim`` uint32 sizes, then
``prod(sizes)`` items of ``dtype``. Every check below fails with an error that names the file,
what is wrong and how to repair it.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IDXFormatError(ValueError):
    """An IDX file is truncated, corrupt or of the wrong kind."""


def parse_idx(raw: bytes, source: str = "<bytes>", fix: str | None = None) -> np.ndarray:
    """Decode IDX bytes into an array of shape ``sizes``; validate magic, dimensions and length.
    ``fix`` says how to repair the file (default: delete it and obtain it again)."""
    fix = fix or f"delete {source} and obtain it again"
    if len(raw) < 4:
        raise IDXFormatError(f"{source}: {len(raw)} bytes is too short for an IDX header; {fix}")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise IDXFormatError(
            f"{source}: bad IDX magic number {raw[:4].hex()} (expected 0000 <type> <ndim>); "
            f"it is not an uncompressed IDX file; {fix}"
        )
    dtype, ndim = _DTYPES[raw[2]], raw[3]
    if ndim == 0:
        raise IDXFormatError(f"{source}: IDX header declares 0 dimensions; {fix}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(f"{source}: truncated inside the IDX header; {fix}")
    sizes = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(sizes)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise IDXFormatError(
            f"{source}: file {what}: header says shape {sizes} ({expected} bytes) "
            f"but the file holds {len(raw)} bytes; {fix}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(sizes)
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | Path, fix: str | None = None) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) into a native-endian NumPy array; errors end with
    ``fix``, how to repair the file."""
    path = Path(path)
    fix = fix or f"delete {path} and obtain it again"
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise IDXFormatError(f"{path}: corrupt gzip stream ({exc}); {fix}") from exc
    return parse_idx(raw, str(path), fix)
