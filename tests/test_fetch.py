import pytest

from snn_drtp.data import download as fetch_mod
from snn_drtp.data.download import ChecksumError, FetchError, IDXDataset, fetch, md5_of


def test_cached_file_with_wrong_checksum_is_refused(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"not the real labels")
    with pytest.raises(ChecksumError) as info:
        fetch("mnist", tmp_path)
    text = str(info.value)
    assert "checksum mismatch for t10k-labels-idx1-ubyte" in text and "27ae3e4e" in text
    assert f"delete it and run `snn-drtp data fetch mnist --data-dir {tmp_path}`" in text


def test_all_sources_failing_lists_each_and_the_fix(tmp_path, monkeypatch):
    payload = b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"
    fake = IDXDataset("fake", {"labels": md5_of(payload)}, ("http://127.0.0.1:9/",), ())
    monkeypatch.setitem(fetch_mod.DATASETS, "fake", fake)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FetchError) as info:
        fetch("fake", tmp_path / "cache", source_dir=empty, quiet=True)
    text = str(info.value)
    assert f"directory {empty}" in text and "mirror http://127.0.0.1:9/" in text and "--source-dir" in text


def test_source_dir_is_verified_and_cached_atomically(tmp_path, monkeypatch):
    payload = b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"
    fake = IDXDataset("fake", {"labels": md5_of(payload)}, (), ())
    monkeypatch.setitem(fetch_mod.DATASETS, "fake", fake)
    src = tmp_path / "src"
    src.mkdir()
    (src / "labels").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x08")
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch("fake", tmp_path / "cache", source_dir=src, quiet=True)
    assert not (tmp_path / "cache" / "fake" / "labels").exists()
    (src / "labels").write_bytes(payload)
    folder = fetch("fake", tmp_path / "cache", source_dir=src, quiet=True)
    assert (folder / "labels").read_bytes() == payload
    assert [p.name for p in folder.iterdir()] == ["labels"]


def test_unknown_dataset():
    with pytest.raises(KeyError, match="unknown IDX dataset"):
        fetch("cifar-100")
