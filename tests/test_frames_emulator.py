"""Frames through Tonic's ToFrame with its quirks handled, the frame cache, and the emulator."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from snn_drtp.data import events as events_module
from snn_drtp.data.emulator import EmulatorParams, EventEmulator, saccade_path
from snn_drtp.data.events import SHARED_NMNIST, cached_frames
from snn_drtp.data.formats import EVENT_DTYPE
from snn_drtp.data.frames import FrameSpec


def stream(times, xs=None, ys=None, ps=None) -> np.ndarray:
    n = len(times)
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["t"] = times
    ev["x"] = xs if xs is not None else np.arange(n) % 40
    ev["y"] = ys if ys is not None else np.arange(n) % 30
    ev["p"] = ps if ps is not None else np.arange(n) % 2
    return ev


def test_every_event_of_the_span_lands_in_one_of_the_t_bins():
    """Tonic's n_time_bins sizes bins (t_last - t_first) // T and loses the last events; ours keeps all."""
    ev = stream(np.array([100, 250, 999, 1000, 1001, 5003]))
    frames = FrameSpec(n_time_bins=4)(ev, (40, 30, 2))
    assert frames.shape == (4, 2, 30, 40) and int(frames.sum()) == 6
    # window ceil(4904 / 4) = 1226 from t = 100: bins [100, 1326) [1326, 2552) [2552, 3778) [3778, 5004)
    assert frames.reshape(4, -1).sum(1).tolist() == [5, 0, 0, 1]


def test_single_event_streams_keep_their_event():
    ev = stream(np.array([777]))
    for bins in (1, 3):
        frames = FrameSpec(n_time_bins=bins)(ev, (40, 30, 2))
        assert frames.shape[0] == bins and int(frames.sum()) == 1 and frames[0, 0, 0, 0] == 1


def test_trailing_partial_window_is_kept_and_a_fixed_clock_aligns_samples():
    ev = stream(np.array([0, 10, 1500, 2999, 3100]))
    frames = FrameSpec(time_window_us=1000)(ev, (40, 30, 2))
    assert frames.reshape(frames.shape[0], -1).sum(1).tolist() == [2, 1, 1, 1]
    clocked = FrameSpec(n_time_bins=3, duration_us=3000)(ev, (40, 30, 2))
    assert clocked.reshape(3, -1).sum(1).tolist() == [2, 1, 1]


def test_empty_streams_give_zero_frames_in_the_usual_order():
    frames = FrameSpec(n_time_bins=5)(stream(np.array([], dtype=np.int64)), (40, 30, 2))
    assert frames.shape == (5, 2, 30, 40) and frames.dtype == np.uint8 and frames.sum() == 0


def test_polarity_merge_downsampling_and_counts():
    ev = stream(
        np.array([5, 6, 7, 8]), xs=np.array([3, 3, 39, 0]), ys=np.array([2, 2, 29, 0]), ps=np.array([0, 1, 1, 0])
    )
    merged = FrameSpec(n_time_bins=1, merge_polarity=True)(ev, (40, 30, 2))
    assert merged.shape == (1, 1, 30, 40) and merged[0, 0, 2, 3] == 2
    small = FrameSpec(n_time_bins=1, downsample=0.25)(ev, (40, 30, 2))
    assert small.shape == (1, 2, 8, 10) and small[0, 1, 7, 9] == 1 and small[0, :, 0, 0].tolist() == [2, 1]
    with pytest.raises(ValueError, match=r"downsample is a spatial factor in \(0, 1\], got 2"):
        FrameSpec(downsample=2)


def test_frame_cache_is_keyed_by_the_frame_parameters(tmp_path, monkeypatch):
    calls = []
    real = events_module.frames_of

    def counting(source, spec, *args):
        calls.append(spec)
        return real(source, spec, *args)

    monkeypatch.setattr(events_module, "frames_of", counting)
    images = torch.zeros(3, 1, 28, 28)
    images[:, 0, 10:18, 12:16] = 1.0
    source = events_module.EmulatedSource(images, torch.tensor([1, 2, 3]), EventEmulator())
    monkeypatch.setattr(events_module, "event_source", lambda *a, **k: (source, {"test": 1}))
    a, labels = cached_frames("emulated-nmnist", "train", FrameSpec(n_time_bins=4), tmp_path)
    b, _ = cached_frames("emulated-nmnist", "train", FrameSpec(n_time_bins=4), tmp_path)
    c, _ = cached_frames("emulated-nmnist", "train", FrameSpec(n_time_bins=6), tmp_path)
    assert len(calls) == 2 and np.array_equal(a, b) and a.shape[1] == 4 and c.shape[1] == 6
    assert labels.tolist() == [1, 2, 3] and len(list((tmp_path / "frames").glob("*.npy"))) == 4


class CountingEmulator(EventEmulator):
    """The emulator, counting the images it is asked to record."""

    def __init__(self):
        super().__init__()
        self.images = 0

    def __call__(self, images, first_index=0):
        self.images += images.shape[0]
        return super().__call__(images, first_index=first_index)


def test_a_subset_of_an_emulated_split_emulates_only_its_images(tmp_path, monkeypatch, capsys):
    images = torch.zeros(300, 1, 28, 28)
    images[:, 0, 10:18, 12:16] = torch.linspace(0.2, 1.0, 300)[:, None, None]
    emulator = CountingEmulator()
    source = events_module.EmulatedSource(images, torch.arange(300) % 10, emulator)
    monkeypatch.setattr(events_module, "event_source", lambda *a, **k: (source, {"test": 2}))
    spec = FrameSpec(n_time_bins=3)
    first, labels = cached_frames("emulated-nmnist", "train", spec, tmp_path, count=5)
    assert emulator.images == 5 and first.shape[0] == 5 and labels.tolist() == [0, 1, 2, 3, 4]
    assert "emulated-nmnist train frames: 5/5 samples (100 %)" in capsys.readouterr().err  # a log line, not a TTY
    cached_frames("emulated-nmnist", "train", spec, tmp_path, count=5)
    assert emulator.images == 5  # the subset's own cache entry
    whole, _ = cached_frames("emulated-nmnist", "train", spec, tmp_path)
    assert emulator.images == 305 and np.array_equal(whole[:5], first)
    again, again_labels = cached_frames("emulated-nmnist", "train", spec, tmp_path, count=7)
    assert emulator.images == 305 and np.array_equal(again, whole[:7]) and again_labels.tolist() == list(range(7))


def digit(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    image = torch.zeros(28, 28)
    image[6:22, 12:16] = 0.5 + 0.5 * torch.rand(16, 4, generator=g)
    return image


def test_emulator_is_seeded_batch_independent_and_in_tonic_format():
    images = torch.stack([digit(i) for i in range(5)])
    emulator = EventEmulator(seed=3)
    a = emulator(images)
    b = emulator(images[2:4], first_index=2)
    assert all(np.array_equal(a[2 + i], b[i]) for i in range(2))
    assert not np.array_equal(a[0], EventEmulator(seed=4)(images[:1])[0])
    for ev in a:
        assert ev.dtype == EVENT_DTYPE and np.all(np.diff(ev["t"]) >= 0)
        assert ev["x"].max() < 34 and ev["y"].max() < 34 and set(np.unique(ev["p"])) <= {0, 1}


def test_emulated_events_follow_the_saccades_and_the_threshold():
    """A bright bar moving with the saccades gives events while it moves (the raised-cosine
    displacement changes) and almost none between saccades; ON and OFF balance; a higher contrast
    threshold gives fewer events, about in proportion."""
    params = EmulatorParams(noise_hz=0.0, threshold=0.3)
    ev = EventEmulator(params)(digit()[None])[0]
    t = torch.arange(0, 310_000, 1000, dtype=torch.float64)
    px, py = saccade_path(params, t)
    speed = torch.sqrt(torch.diff(px) ** 2 + torch.diff(py) ** 2).numpy()
    moving = speed > 1e-4
    bins = np.clip(ev["t"] // 1000, 0, len(moving) - 1)
    assert moving[bins].mean() > 0.98
    assert 0.4 < ev["p"].mean() < 0.6
    fewer = EventEmulator(replace(params, threshold=2 * params.threshold))(digit()[None])[0]
    assert 0.35 < len(fewer) / len(ev) < 0.65
    blank = EventEmulator(EmulatorParams(noise_hz=5.0))(torch.zeros(1, 28, 28))[0]
    assert abs(len(blank) - 5.0 * 0.31 * 34 * 34) < 5 * np.sqrt(5.0 * 0.31 * 34 * 34)


@pytest.mark.parametrize("negative", [False, True])
def test_polarity_follows_the_edges_of_a_moving_bar(negative):
    """Saccade 1 moves the image right (+x) over the sensor: a bright bar on a dark screen brightens
    the pixels ahead of its right edge (ON) and darkens those behind its left edge (OFF), so ON
    events lie right of OFF events; on a negative display (dark bar on a bright screen) the other
    way round."""
    params = EmulatorParams(
        noise_hz=0.0,
        threshold=0.3,
        negative=negative,
        saccades=((4.0, 0.0),),
        saccade_starts_us=(0.0,),
        saccade_durations_us=(100_000.0,),
    )
    ev = EventEmulator(params)(digit()[None])[0]
    on, off = ev["x"][ev["p"] == 1].mean(), ev["x"][ev["p"] == 0].mean()
    assert len(ev) > 50 and (on < off - 2 if negative else on > off + 2)


def test_emulator_defaults_are_the_committed_fit():
    fitted = json.loads((Path(__file__).parent.parent / "experiments/emulator-vs-real/fitted_params.json").read_text())
    assert EmulatorParams.from_dict(fitted) == EmulatorParams()


@pytest.mark.skipif(not SHARED_NMNIST.is_dir(), reason="needs ../shared/data/nmnist-small (real recordings)")
def test_emulation_resembles_the_real_recordings_of_the_same_digits():
    from snn_drtp.studies.emulator_fit import compare, emulate, real_recordings

    real = real_recordings("test", limit=30)
    summary = compare(real.events, emulate(real, EmulatorParams()))["summary"]
    assert 0.7 < summary["events_ratio"] < 1.3 and summary["median_correlation"] > 0.7
