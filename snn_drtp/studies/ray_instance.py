"""A local Ray instance for one sweep, in a process group of its own that ends with the sweep.

``ray.init()`` without an address starts Ray's processes (GCS, raylet, the dashboard and
runtime-env agents, the workers) as descendants of the sweep. Ray ends most of them when the
driver exits, but when the driver is SIGKILLed its two agents live on (ray-project/ray#52385; seen
here with Ray 2.60). So the sweep starts its instance from a *keeper*: a small process in a new
session that starts Ray (``ray.init(address="local")``), prints the instance's address and waits.
When the sweep finishes, stops, or dies however it dies (the kernel's parent-death signal, Linux),
the keeper gets SIGTERM and SIGKILLs every process it started: its descendants, found in /proc,
and its process group. The sweep itself joins the instance as an ordinary driver.

Command line (the sweep runs it): ``python -m snn_drtp.studies.ray_instance PARENT_PID CPUS``.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import ModuleType

from snn_drtp.core.processes import die_with_parent

OBJECT_STORE_BYTES = 100 * 2**20
"""The object store of a local instance: runs pass only their metrics, so 100 MB is plenty (Ray's
default, 30 % of the memory, fails where /dev/shm is small, as in containers)."""
AUTH_MODE = "RAY_AUTH_MODE"
"""Ray's authentication switch, read when Ray is imported: a local instance starts with token
authentication (Ray's default; the token is ~/.ray/auth_token), and a driver that joins it by its
address uses the token only when this variable says ``token``."""
STOP_SECONDS = 30.0
"""How long the sweep waits for the keeper to end its instance before killing the keeper's group."""


def import_ray(local: bool) -> ModuleType:
    """Ray, imported for a sweep on a local instance (``local``) or on a cluster. For a local
    instance, token authentication is switched on (``RAY_AUTH_MODE=token``, unless the user set
    it) before Ray is first imported, so that this process and the keeper agree."""
    if local and "ray" not in sys.modules:
        os.environ.setdefault(AUTH_MODE, "token")
    try:
        import ray
    except ImportError:
        raise ValueError(
            "the ray backend needs Ray 2.x: pip install 'snn-drtp[cluster]' (or pip install ray==2.60.0)"
        ) from None
    return ray


@contextmanager
def local_ray_instance(cpus: int) -> Iterator[str]:
    """The address of a local Ray instance of ``cpus`` CPUs, kept by a keeper process while the
    block runs and ended with every process of it when the block is left (or this process dies)."""
    with tempfile.TemporaryFile("w+") as errors:
        keeper = subprocess.Popen(
            [sys.executable, "-m", "snn_drtp.studies.ray_instance", str(os.getpid()), str(cpus)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            start_new_session=True,
        )
        try:
            assert keeper.stdout is not None
            address = keeper.stdout.readline().strip()
            if not address:
                keeper.wait()
                errors.seek(0)
                tail = "\n".join(errors.read().strip().splitlines()[-15:])
                raise RuntimeError(f"the local Ray instance did not start (exit code {keeper.returncode}):\n{tail}")
            yield address
        finally:
            keeper.terminate()
            try:
                keeper.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(keeper.pid, signal.SIGKILL)
                keeper.wait()


def join_local_instance(ray: ModuleType, address: str) -> None:
    """Connect this process to the local instance at ``address`` as a driver."""
    try:
        ray.init(address=address, configure_logging=False)
    except ConnectionError as exc:
        raise RuntimeError(
            f"{exc}: the local instance uses token authentication, and this process imported Ray with "
            f"{AUTH_MODE}={os.environ.get(AUTH_MODE)!r}; export {AUTH_MODE}=token before Ray is imported, "
            "or call ray.init() before the sweep, which then runs on that instance"
        ) from exc


def descendants(pid: int) -> list[int]:
    """Every living descendant of process ``pid`` (children first, then theirs), read from /proc;
    empty where there is no /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = int(status.split("\nPPid:\t", 1)[1].split("\n", 1)[0])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, frontier = [], [pid]
    while frontier:
        children = [child for parent in frontier for child in parents.get(parent, [])]
        found += children
        frontier = children
    return found


def _end_instance(*_: object) -> None:
    """SIGKILL the keeper's descendants (Ray's workers lead process groups of their own) and then its
    process group, the keeper included."""
    for pid in descendants(os.getpid()):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os.killpg(0, signal.SIGKILL)


def keep(parent: int, cpus: int) -> None:
    """The keeper: receive SIGTERM when ``parent`` goes, start the instance, print its address and
    wait; SIGTERM or any exit ends the instance. ``ray.init`` replaces the SIGTERM handler with its
    own, which stops the processes it knows and exits (leaving the agents), so the keeper's handler
    is installed before the start, again after it, and as an exit hook in between."""
    signal.signal(signal.SIGTERM, _end_instance)
    atexit.register(_end_instance)
    die_with_parent(parent, signal.SIGTERM)
    import ray

    ray.init(
        address="local",
        num_cpus=cpus,
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False,
        configure_logging=False,
    )
    signal.signal(signal.SIGTERM, _end_instance)
    print(ray.get_runtime_context().gcs_address, flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    keep(int(sys.argv[1]), int(sys.argv[2]))
