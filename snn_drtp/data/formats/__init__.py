"""Event recordings of every supported format as Tonic structured arrays.

:func:`read_recording` finds a file's format from its first bytes (:func:`detect_format`) and
reads it with the reader of that format:

==========  =========================================  ==========================================
format      reader                                     sensor size from
==========  =========================================  ==========================================
aedat4      ``aedat`` (Tonic's AEDAT 4 backend)        the event stream's size in the header
evt2, evt3  ``evlib``                                  ``% geometry`` / ``% format`` header lines
dat         ``expelliarmus`` (installed with Tonic)    ``% Width`` / ``% Height`` header lines
es          ``event_stream``                           the file's header (DVS and ATIS types)
npy, hdf5   NumPy, h5py                                an HDF5 ``sensor_size`` attribute
nmnist      ``tonic.io.read_mnist_file``               none (no header)
==========  =========================================  ==========================================

Optional readers are in the ``cameras`` extra (``pip install 'snn-drtp[cameras]'``); a missing one
raises :class:`MissingReaderError` naming the package and the command that installs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from snn_drtp.data.formats.detect import NAMES, UnknownFormatError, UnsupportedFormatError, detect_format
from snn_drtp.data.formats.recording import (
    EVENT_DTYPE,
    EVENT_DTYPE_1D,
    EventFileError,
    EventRecording,
    normalise_polarity,
    on_sensor,
)

READERS: dict[str, tuple[str, str]] = {
    "aedat4": ("snn_drtp.data.formats.aedat4", "read"),
    "evt2": ("snn_drtp.data.formats.prophesee", "read_evt2"),
    "evt3": ("snn_drtp.data.formats.prophesee", "read_evt3"),
    "dat": ("snn_drtp.data.formats.prophesee", "read_dat"),
    "es": ("snn_drtp.data.formats.eventstream", "read"),
    "npy": ("snn_drtp.data.formats.arrays", "read_npy"),
    "hdf5": ("snn_drtp.data.formats.arrays", "read_hdf5"),
    "nmnist": ("snn_drtp.data.formats.nmnist", "read"),
}
"""Format name -> (module, function) of its reader, imported on first use."""


class MissingReaderError(ImportError):
    """The library that reads a format is not installed."""


def require(module: str, package: str, what: str) -> ModuleType:
    """``import module``, or :class:`MissingReaderError` naming ``package`` and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingReaderError(
            f"reading {what} needs the package {package}, which is not installed: "
            f"pip install 'snn-drtp[cameras]' (or pip install {package})"
        ) from exc


def read_recording(path: str | Path) -> EventRecording:
    """The events of one file of any supported format, its header's sensor size and notes; an
    event off the header's sensor is an :class:`EventFileError`."""
    path = Path(path)
    fmt = detect_format(path)
    module, function = READERS[fmt]
    reader: Callable[[Path], EventRecording] = getattr(importlib.import_module(module), function)
    return on_sensor(reader(path))


__all__ = [
    "EVENT_DTYPE",
    "EVENT_DTYPE_1D",
    "NAMES",
    "EventFileError",
    "EventRecording",
    "MissingReaderError",
    "UnknownFormatError",
    "UnsupportedFormatError",
    "detect_format",
    "normalise_polarity",
    "read_recording",
    "require",
]
