import gzip
import struct

import numpy as np
import pytest

from snn_drtp.data.idx import IDXFormatError, parse_idx, read_idx


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_round_trip_plain_and_gzip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(a))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), a)


def test_truncated_file_names_the_problem(tmp_path):
    raw = idx_bytes(np.zeros((10, 28, 28), dtype=np.uint8))
    (tmp_path / "images").write_bytes(raw[:-100])
    with pytest.raises(IDXFormatError, match=r"truncated.*shape \(10, 28, 28\).*delete .*images and obtain it again"):
        read_idx(tmp_path / "images")
    with pytest.raises(IDXFormatError, match=r"truncated.*; delete it and run `snn-drtp data fetch mnist`"):
        read_idx(tmp_path / "images", "delete it and run `snn-drtp data fetch mnist`")


def test_trailing_bytes_and_bad_magic_and_short_header():
    raw = idx_bytes(np.zeros(5, dtype=np.uint8))
    with pytest.raises(IDXFormatError, match="trailing bytes"):
        parse_idx(raw + b"\x00")
    with pytest.raises(IDXFormatError, match="bad IDX magic"):
        parse_idx(b"\x1f\x8b" + raw[2:])
    with pytest.raises(IDXFormatError, match="too short"):
        parse_idx(b"\x00\x00")
    with pytest.raises(IDXFormatError, match="inside the IDX header"):
        parse_idx(raw[:6])


def test_corrupt_gzip(tmp_path):
    blob = gzip.compress(idx_bytes(np.zeros(100, dtype=np.uint8)))
    (tmp_path / "x.gz").write_bytes(blob[:-12])
    with pytest.raises(IDXFormatError, match="corrupt gzip"):
        read_idx(tmp_path / "x.gz")
