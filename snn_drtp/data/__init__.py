"""Data: IDX reading, fetching with checksums, in-memory tensor datasets, synthetic tasks."""

from snn_drtp.data.datasets import DATASET_NAMES, load_dataset
from snn_drtp.data.download import ChecksumError, FetchError, fetch
from snn_drtp.data.idx import IDXFormatError, read_idx
from snn_drtp.data.tensors import TensorData

__all__ = [
    "DATASET_NAMES",
    "ChecksumError",
    "FetchError",
    "IDXFormatError",
    "TensorData",
    "fetch",
    "load_dataset",
    "read_idx",
]
