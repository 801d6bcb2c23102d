"""emulated-shd: espeak-ng speech through lauscher's cochlea into SHD's HDF5 layout. The vectorised
hair-cell and bushy-cell stages against lauscher's own; utterances the same on every run; the files
read by Tonic's SHD class; a temporal network trained on them from the CLI."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from snn_drtp.cli import main
from snn_drtp.data.datasets import load_dataset
from snn_drtp.data.frames import FrameSpec
from snn_drtp.data.speech import (
    SAMPLE_RATE,
    Speaker,
    SpeechParams,
    bushy_cells,
    hair_cells,
    speech_samples,
    utterance_spikes,
    utterances,
)

lauscher = pytest.importorskip("lauscher")  # the [speech] extra; make setup installs it
from lauscher.audiowaves import MonoAudioWave  # noqa: E402
from lauscher.transformations import BasilarMembrane, BushyCell, HairCell, HanningWindow, RmsNormalizer  # noqa: E402

SMALL = "emulated-shd:classes=2,train_per_class=2,test_per_class=1,channels=24"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def membrane():
    """lauscher's basilar-membrane velocity of 30 ms of a spoken 'seven', 6 channels."""
    audio = speech_samples("seven", "en+m3", 160, 50)
    clip = audio[2000:2660]
    wave = MonoAudioWave(clip, SAMPLE_RATE).transform(RmsNormalizer(0.3)).transform(HanningWindow())
    return wave.transform(BasilarMembrane(channels=6))


def test_hair_cells_are_lauschers_meddis_model(membrane):
    theirs = np.asarray(membrane.transform(HairCell()).channels)
    ours = hair_cells(np.asarray(membrane.channels), membrane.sample_rate, HairCell())
    assert ours.shape == theirs.shape and theirs.max() > 1e-3
    np.testing.assert_array_equal(ours, theirs)


def test_bushy_cells_are_lauschers_with_the_same_fibre_draws(membrane):
    probability = membrane.transform(HairCell())
    np.random.seed(3)
    theirs = probability.transform(BushyCell())  # draws np.random.rand(samples, 40) channel by channel
    np.random.seed(3)
    ours = bushy_cells(
        np.asarray(probability.channels), probability.sample_rate, BushyCell(), lambda s: np.random.rand(*s)
    )
    unit, sample = np.nonzero(ours)
    assert len(unit) >= 3
    expected = sorted(
        zip(
            theirs.spike_labels.astype(int),
            np.round(theirs.spike_times * probability.sample_rate).astype(int),
            strict=True,
        )
    )
    assert sorted(zip(unit.tolist(), sample.tolist(), strict=True)) == [(int(a), int(b)) for a, b in expected]


def test_an_utterance_is_the_same_on_every_call_and_its_seed_matters():
    first = utterance_spikes("sieben", "de+m2", 140, 40, channels=16, seed=1)
    again = utterance_spikes("sieben", "de+m2", 140, 40, channels=16, seed=1)
    other = utterance_spikes("sieben", "de+m2", 140, 40, channels=16, seed=2)
    assert len(first[0]) > 50
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(first[0]) != len(other[0]) or not np.array_equal(first[0], other[0])
    assert first[1].max() < 16 and (np.diff(first[0]) >= 0).all()


def test_labels_words_and_voices_follow_shds_classes():
    """Labels 0-9: English zero ... nine; 10-19: German null ... neun, in German voices; seeded."""
    items = utterances(SpeechParams(train_per_class=2, test_per_class=1), "train")
    assert [label for label, *_ in items] == [label for label in range(20) for _ in range(2)]
    words = {label: word for label, word, *_ in items}
    assert (words[0], words[9], words[10], words[15], words[19]) == ("zero", "nine", "null", "fünf", "neun")
    assert all(voice.startswith("en" if label < 10 else "de") for label, _, voice, _, _ in items)
    assert items == utterances(SpeechParams(train_per_class=2, test_per_class=1), "train")
    assert items != utterances(SpeechParams(train_per_class=2, test_per_class=1, seed=1), "train")
    test_items = utterances(SpeechParams(train_per_class=2, test_per_class=1), "test")
    assert len(test_items) == 20 and [v for *_, v, _, _ in test_items] != [v for *_, v, _, _ in items[::2]]


def test_unknown_voice_and_bad_parameters_are_named():
    with pytest.raises(ValueError, match="espeak-ng has no voice 'xx-nowhere'"):
        speech_samples("one", "xx-nowhere", 160, 50)
    with pytest.raises(ValueError, match="'chanels=3' is not key=value with a key among"):
        SpeechParams.from_name("emulated-shd:chanels=3")
    with pytest.raises(ValueError, match="classes must be 1 to 20"):
        SpeechParams.from_name("emulated-shd:classes=21")


def test_emulated_shd_is_written_in_shds_layout_and_read_by_tonic(cache):
    train, test = load_dataset(SMALL, cache, frames=FrameSpec(n_time_bins=40))
    assert train.x.shape == (4, 40, 1, 700) and test.x.shape == (2, 40, 1, 700)
    assert train.y.tolist() == [0, 0, 1, 1] and test.y.tolist() == [0, 1]
    assert train.x.sum() > 100 and train.x[:, :, :, 24:].sum() == 0  # 24 channels of SHD's 700
    (folder,) = (cache / "emulated-shd").iterdir()
    with h5py.File(folder / "SHD" / "shd_train.h5") as f:
        assert f["extra/keys"][0].decode() == "english-zero" and f["extra/keys"][19].decode() == "german-neun"
        assert len(f["spikes/times"]) == 4 and f["spikes/times"][0].dtype == np.float32
        assert all(v.decode().startswith("en") for v in f["extra/speaker"][()])
    assert (folder / "SHD" / "shd_train.h5.zip").exists()
    params = json.loads((folder / "SHD" / "params.json").read_text())
    assert params["channels"] == 24 and params["classes"] == 2


def test_train_osttp_on_emulated_shd_from_the_cli(cache, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--engine", "spiking", "--network", "shd-rsnn", "--dataset", SMALL, "--rule", "osttp"]
    args += ["--steps", "40", "--epochs", "1", "--batch-size", "2", "--angle-batch", "0", "--data-dir", str(cache)]
    assert main([*args, "--threads", "1", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epoch"] == [1] and (out / "activity.png").exists()


def test_a_missing_speech_package_names_it_and_the_install_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import espeakng_loader raises ImportError
    with pytest.raises(
        ImportError, match=r"needs the Python package 'espeakng_loader': pip install 'snn-drtp\[speech\]'"
    ):
        Speaker()


def test_a_split_is_the_same_whether_built_one_utterance_or_two_at_a_time(tmp_path):
    from snn_drtp.data.speech import build

    params = SpeechParams(train_per_class=2, test_per_class=1, channels=12, classes=2, seed=5)
    seen: list[tuple[str, int, int]] = []
    build(tmp_path / "one", params, jobs=1)
    build(tmp_path / "two", params, lambda split, n, total: seen.append((split, n, total)), jobs=2)
    assert seen == [("train", 1, 4), ("train", 2, 4), ("train", 3, 4), ("train", 4, 4), ("test", 1, 2), ("test", 2, 2)]
    for split in ("train", "test"):
        with (
            h5py.File(tmp_path / "one" / "SHD" / f"shd_{split}.h5") as a,
            h5py.File(tmp_path / "two" / "SHD" / f"shd_{split}.h5") as b,
        ):
            assert len(a["labels"]) == len(b["labels"]) > 0
            for key in ("spikes/times", "spikes/units"):
                for x, y in zip(a[key][()], b[key][()], strict=True):
                    np.testing.assert_array_equal(x, y)
            assert a["labels"][()].tolist() == b["labels"][()].tolist()


def test_parallel_words_come_back_in_the_tasks_order():
    """A long word started first finishes after a short one started second: the results keep the
    tasks' order."""
    from snn_drtp.data.speech import spikes_of

    long_word = ("siebenhundertsiebenundsiebzigtausend", "de", 120, 50, 12, 1)
    short_word = ("eins", "de", 220, 50, 12, 2)
    together = spikes_of([long_word, short_word], jobs=2)
    alone = [utterance_spikes(*long_word), utterance_spikes(*short_word)]
    assert len(together[0][0]) > 2 * len(together[1][0])
    for (t1, u1), (t2, u2) in zip(together, alone, strict=True):
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(u1, u2)


def _speak_here_then_make_a_word(connection):
    try:
        Speaker().say("zwei", "de", 160, 50)
        utterance_spikes("drei", "de", 160, 50, channels=8, seed=0)
        connection.send("no error")
    except RuntimeError as exc:
        connection.send(str(exc))


def test_a_process_that_spoke_itself_may_not_make_words():
    """espeak-ng's state passes to forked children: after a Speaker in this process, its words would
    not be those made elsewhere, so they are refused (tried in a child, which keeps this process clean)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_speak_here_then_make_a_word, args=(send,))
    child.start()
    message = receive.recv()
    child.join()
    assert "espeak-ng was started in this process" in message and "has not created a Speaker" in message
