import json

import pytest
import torch

from snn_drtp.cli import main
from snn_drtp.config import TrainConfig
from snn_drtp.training import RunFolderMismatchError, train

SMALL = TrainConfig(
    network="synth-classification",
    dataset="synth-classification",
    rule="drtp",
    epochs=3,
    batch_size=50,
    dropout=0.1,
    train_subset=1000,
    test_subset=500,
    angle_batch=100,
    lr=2e-3,
)


def test_resume_after_interruption_gives_the_same_numbers(tmp_path):
    whole = train(SMALL, tmp_path / "whole", progress=False, log=None)
    part = train(SMALL, tmp_path / "part", progress=False, log=None, stop_after=1)
    assert part["epoch"] == [1]
    part = train(SMALL, tmp_path / "part", progress=False, log=None, stop_after=1)
    assert part["epoch"] == [1, 2]
    resumed = train(SMALL, tmp_path / "part", progress=False, log=None)
    for key in ("train_error", "test_error", "train_loss", "test_loss", "angle_to_bp"):
        assert resumed[key] == whole[key], key
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert saved["test_error"] == whole["test_error"]
    assert {"config.json", "metrics.json", "checkpoint.pt", "learning_curves.png", "angles.png"} <= {
        p.name for p in (tmp_path / "part").iterdir()
    }


def test_same_seed_same_numbers_and_learning_happens(tmp_path):
    a = train(SMALL, None, progress=False, log=None)
    b = train(SMALL, None, progress=False, log=None)
    assert a["test_error"] == b["test_error"]
    assert a["test_error"][-1] < 40.0  # chance is 90 %


def test_run_folder_with_other_config_is_refused(tmp_path):
    train(SMALL, tmp_path / "run", progress=False, log=None, stop_after=1)
    other = TrainConfig(**{**SMALL.to_dict(), "rule": "dfa"})
    with pytest.raises(RunFolderMismatchError, match=r"another configuration.*rule"):
        train(other, tmp_path / "run", progress=False, log=None)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"rule": "hebb"}, "rule 'hebb'"),
        ({"dropout": 1.0}, "dropout must be"),
        ({"epochs": 0}, "epochs must be"),
        ({"dataset": "imagenet"}, "dataset 'imagenet'"),
    ],
)
def test_bad_config_is_named(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{**SMALL.to_dict(), **bad}).validate()


def test_learning_rate_defaults_to_table_3():
    assert TrainConfig(network="fc1-500", rule="drtp").validate().lr == 1.5e-4
    assert TrainConfig(network="fc1-500", rule="shallow").validate().lr == 1.5e-2
    assert TrainConfig(network="fc2-500", rule="bp").validate().lr == 5e-4
    with pytest.raises(ValueError, match=r"Table 3 gives no learning rate.*--lr"):
        TrainConfig(network="conv-mnist", rule="shallow").validate()


def test_cli_train_and_clear_errors(tmp_path, capsys):
    code = main(
        [
            "train",
            "--network",
            "synth-regression",
            "--dataset",
            "synth-regression",
            "--rule",
            "dfa",
            "--epochs",
            "2",
            "--train-subset",
            "300",
            "--test-subset",
            "100",
            "--zero-init",
            "--no-progress",
            "--out",
            str(tmp_path / "reg"),
        ]
    )
    assert code == 0
    metrics = json.loads((tmp_path / "reg" / "metrics.json").read_text())
    assert metrics["test_loss"][1] < metrics["test_loss"][0]
    assert main(["train", "--network", "no-such-net", "--epochs", "1", "--out", str(tmp_path / "x")]) == 2
    assert "no network spec 'no-such-net'" in capsys.readouterr().err
