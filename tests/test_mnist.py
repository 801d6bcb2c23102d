"""Real MNIST (fetched and checksum-verified into the cache on first use)."""

import pytest
import torch

from snn_drtp.data import load_dataset
from snn_drtp.runs.config import TrainConfig
from snn_drtp.runs.training import train

pytestmark = pytest.mark.mnist


def test_mnist_tensors():
    train_set, test_set = load_dataset("mnist")
    assert train_set.x.shape == (60000, 1, 28, 28) and test_set.x.shape == (10000, 1, 28, 28)
    assert train_set.x.dtype == torch.float32 and float(train_set.x.min()) == 0.0 and float(train_set.x.max()) == 1.0
    assert torch.bincount(test_set.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.slow
def test_first_drtp_epoch_matches_the_authors_code():
    """The authors' code, one seed on this machine kind: 12.81 % test error after epoch 1."""
    metrics = train(TrainConfig(network="fc1-500", rule="drtp", epochs=1), None, progress=False, log=None)
    assert 11.5 <= metrics["test_error"][0] <= 14.5
    assert 45.0 < metrics["angle_to_bp"]["layer1"][0] < 90.0
