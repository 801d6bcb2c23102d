"""Atomic file writes (write to a temporary file in the same folder, then rename over the target),
a guard that keeps Ctrl-C from splitting a group of writes, exclusive folder locks across
processes, and the clean-up of temporaries that an interrupted write left behind."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

TEMPORARY_SUFFIX = ".tmp"
_TEMPORARY = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}" + re.escape(TEMPORARY_SUFFIX))
"""The name :func:`tempfile.mkstemp` gives :func:`_atomic_file`'s temporaries: ``.NAME.XXXXXXXX.tmp``."""
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's file mode creation mask, left as it is: read from ``/proc/self/status``
    (Linux 4.7 and later), else by setting and restoring it under a lock; the mask set meanwhile
    is 077, so a file another thread creates in that instant is private rather than open."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


@contextmanager
def _atomic_file(path: str | Path) -> Iterator[Any]:
    """A binary handle on a temporary file beside ``path``, flushed, synced and renamed over
    ``path`` when the block ends; removed instead if the block raises. The file gets mode
    0666 & ~umask, as ``open`` would give it. A process killed inside the block leaves the
    temporary ``.NAME.XXXXXXXX.tmp``, which :func:`clean_stale_temporaries` removes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())  # mkstemp makes 0600; follow the umask
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees either the old file or the whole new one."""
    with _atomic_file(path) as handle:
        handle.write(data)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    with _atomic_file(path) as handle:
        torch.save(obj, handle)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) while the block runs, so a group of files is written whole; a
    Ctrl-C that arrived meanwhile is raised as KeyboardInterrupt when the block ends. Outside the
    main thread (where signal handlers cannot be set) the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if not received or previous is signal.SIG_IGN:
        return
    if callable(previous) and previous is not signal.default_int_handler:
        previous(signal.SIGINT, None)
        return
    raise KeyboardInterrupt


def write_json_and_markdown(stem: str | Path, data: Any, lines: list[str]) -> str:
    """Write ``stem.json`` (``data``) and ``stem.md`` (``lines``), each atomically; return the markdown."""
    stem = Path(stem)
    text = "\n".join(lines) + "\n"
    atomic_write_json(stem.with_suffix(".json"), data)
    atomic_write_bytes(stem.with_suffix(".md"), text.encode())
    return text


def atomic_save_npy(path: str | Path, array: Any) -> None:
    """``numpy.save`` to a temporary file in the same folder, then rename over ``path``."""
    with _atomic_file(path) as handle:
        np.save(handle, array)


def clean_stale_temporaries(folder: str | Path, targets: Collection[str] | None = None) -> list[Path]:
    """Remove the temporaries ``.NAME.XXXXXXXX.tmp`` that interrupted atomic writes left directly
    in ``folder`` (only those of the file names in ``targets`` when given) and return them; a
    missing folder has none. It also removes a live writer's temporary, so call it only where no
    other process writes those files: under the folder's :func:`folder_lock`."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        match = _TEMPORARY.fullmatch(entry.name)
        if match and (targets is None or match["target"] in targets) and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return sorted(removed)


LOCK_NAME = ".lock"


class FolderInUseError(RuntimeError):
    """Another process holds a folder's lock: ``folder``, the holder's ``pid`` (None when it could
    not be read) and the fix, in one line."""

    def __init__(self, folder: Path, pid: int | None, kind: str, fix: str):
        self.folder, self.pid = folder, pid
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"{kind} {folder} is in use by another snn-drtp process ({holder}); {fix}")


def _holder_pid(fd: int) -> int | None:
    """The pid the lock's holder wrote into the lock file, waiting up to 0.2 s for it to be written
    (the holder writes it just after taking the lock); None if none is readable."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        time.sleep(0.01)
    return None


@contextmanager
def folder_lock(
    folder: str | Path,
    blocking: bool = False,
    lock_name: str = LOCK_NAME,
    kind: str = "run folder",
    fix: str = "wait for it or choose another --out",
) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``folder/lock_name`` (the folder is created) while the block
    runs and yield the folder. Another process (or another open of the same lock in this process)
    holding it: wait for it with ``blocking``, else raise :class:`FolderInUseError` naming the
    holder's pid, which the holder writes into the lock file. The lock goes when the block ends,
    however it ends, and with the process if that dies (the kernel drops it with the last file
    descriptor); the lock file stays, empty, since removing it would let one process lock a fresh
    file while another still held the old one."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / lock_name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            raise FolderInUseError(folder, _holder_pid(fd), kind, fix) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield folder
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
