"""Progress of long loops, on a terminal and in a log.

On a terminal (stderr is a TTY) a tqdm bar; otherwise, as in a log file or a batch job, a line on
stderr at most every ``every_s`` seconds and at the end, ``<what>: <done>/<total> <unit>s (<p> %),
<elapsed> s, ETA <s> s``, where ETA = elapsed (total - done) / done.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

from tqdm import tqdm


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


class LogProgress:
    """Progress lines for a log (see the module docstring)."""

    def __init__(self, total: int, desc: str, unit: str, every_s: float = 30.0, stream: TextIO | None = None):
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.stream = stream if stream is not None else sys.stderr
        self.done, self.start = 0, time.perf_counter()
        self.last = self.start

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every_s:
            self.last = now
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = now - self.start
        share = 100 * self.done / self.total if self.total else 100.0
        eta = elapsed * (self.total - self.done) / self.done if self.done else float("nan")
        print(
            f"{self.desc}: {self.done}/{self.total} {self.unit}s ({share:.0f} %), {elapsed:.0f} s, ETA {eta:.0f} s",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        self._line(time.perf_counter())


def progress(total: int, desc: str, unit: str = "sample", enabled: bool = True) -> Progress:
    """A tqdm bar on a terminal, :class:`LogProgress` lines otherwise; nothing when not ``enabled``."""
    if not enabled:
        return tqdm(total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, leave=False)
    return LogProgress(total, desc, unit)
