"""Processes that end with the process that started them, however it ends (SIGKILL included).

A sweep's workers train into run folders; one that outlived its sweep would write on after the
user believed the sweep stopped, and hold the run's folder lock. On Linux the kernel can send a
process a signal when its parent goes (``prctl(PR_SET_PDEATHSIG)``); elsewhere nothing is done.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal the kernel sends a process when the thread that created it exits."""


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> None:
    """On Linux, have the kernel send this process ``sig`` (SIGKILL unless told) when its parent
    goes, however the parent ends; a no-op elsewhere. PR_SET_PDEATHSIG fires when the *thread*
    that started this process exits: a process pool's workers are started by the thread that
    creates the pool, which waits until they are done (workers the pool restarts come from its
    handler thread, which lives as long as the pool). A parent that died before the call
    (``getppid`` is no longer ``parent``) ends this process now. If the kernel refuses the call, a
    warning says so and the process runs on (an exception here would make a pool restart workers
    for ever)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        print(
            f"snn-drtp: warning: prctl(PR_SET_PDEATHSIG) failed ({os.strerror(errno)}); process {os.getpid()} "
            "would outlive a killed parent",
            file=sys.stderr,
        )
        return
    if os.getppid() != parent:
        os._exit(1)
