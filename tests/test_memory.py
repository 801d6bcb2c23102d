"""The allocator setting that keeps freed memory for reuse (large windows stay fast)."""

import platform
import subprocess
import sys

import pytest

RESIDENT_AFTER_FREE = """
import sys
import torch
from snn_drtp.core.memory import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
x = torch.ones(64 * 2**20 // 4)
del x
print(int(open("/proc/self/statm").read().split()[1]) * 4096)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_retained_memory_stays_with_the_process_after_a_large_tensor_is_freed():
    """A 64 MiB tensor, written and freed: by default glibc unmaps it (the next one faults its pages
    in again); after retain_freed_memory() the process keeps it for reuse."""

    def resident(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", RESIDENT_AFTER_FREE, mode], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    assert resident("retain") - resident("default") > 48 * 2**20
