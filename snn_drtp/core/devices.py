"""Torch devices by name, checked before anything is built on them."""

from __future__ import annotations

import torch


def device_kind(name: str | torch.device) -> str:
    """The kind of device ``name`` names (cpu, cuda or mps), whether or not this machine has one:
    what a run's numbers depend on (a run trained on a GPU is read back on a machine without)."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {name!r} is not a torch device; use cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r}: snn-drtp runs on cpu, cuda or mps, not {device.type}")
    return device.type


def resolve_device(name: str | torch.device) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps`` as a torch device, refused with a clear message when
    the name is not a device or the device is not available on this machine."""
    device_kind(name)
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"cuda:0 ... cuda:{torch.cuda.device_count() - 1}"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r}: MPS (Apple GPU) is not available on this machine; use --device cpu")
    return device
