"""Atomic file writes (write to a temporary file in the same folder, then rename over the target)
and a guard that keeps Ctrl-C from splitting a group of writes."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch


@contextmanager
def _atomic_file(path: str | Path) -> Iterator[Any]:
    """A binary handle on a temporary file beside ``path``, flushed, synced and renamed over
    ``path`` when the block ends; removed instead if the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
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
    import numpy as np

    with _atomic_file(path) as handle:
        np.save(handle, array)
