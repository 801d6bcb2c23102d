"""The shipped DVS Gesture network is driven on DVS-Gesture-like frames: before any training every
layer of ``dvsgesture-conv`` spikes on 128 x 128 clips framed at 32 x 32, as counts, binary or
normalised frames; and per-sample normalisation makes the input drive independent of the event rate.

The clips are written here with the statistics of a hand gesture seen by a DVS128: a forearm
(a 40 x 8 pixel bar) waving about the elbow at 1 to 2 Hz for 6 s, events on its leading (ON) and
trailing (OFF) edges, 10 % background noise, 50k to 2M events per clip (the assumption: a
few hundred thousand events per clip, an order of magnitude either way).
"""

import json

import numpy as np
import pytest
import torch

from snn_drtp.cli import main
from snn_drtp.data.formats import EVENT_DTYPE
from snn_drtp.data.frames import FrameSpec
from snn_drtp.runs.build import build_engine
from snn_drtp.runs.config import TrainConfig
from snn_drtp.spiking.inputs import SpikeTrain
from snn_drtp.spiking.monitors import record

CLIP_EVENTS = (50_000, 300_000, 2_000_000)
SENSOR = (128, 128, 2)


def gesture_clip(rng: np.random.Generator, n_events: int, duration_us: int = 6_000_000) -> np.ndarray:
    t = np.sort(rng.integers(0, duration_us, n_events))
    frequency, amplitude = rng.uniform(1.0, 2.0), rng.uniform(0.5, 1.0)
    elbow_x, elbow_y = rng.uniform(50, 78, 2)
    phase = 2 * np.pi * frequency * t / 1e6
    angle = amplitude * np.sin(phase)
    along = rng.uniform(0, 40, n_events)
    side = rng.choice([-1, 1], n_events)
    half_width = 4 + rng.normal(0, 1, n_events)
    x = elbow_x + along * np.sin(angle) + side * half_width * np.cos(angle)
    y = elbow_y - along * np.cos(angle) + side * half_width * np.sin(angle)
    noise = rng.random(n_events) < 0.1
    x[noise], y[noise] = rng.uniform(0, 128, (2, int(noise.sum())))
    events = np.zeros(n_events, dtype=EVENT_DTYPE)
    events["x"], events["y"] = np.clip(x, 0, 127), np.clip(y, 0, 127)
    events["t"], events["p"] = t, side * np.sign(np.cos(phase)) > 0
    return events


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [gesture_clip(rng, n) for n in CLIP_EVENTS]


def layer_rates(frames: np.ndarray) -> dict[int, list[float]]:
    """Per layer, each clip's mean spikes per neuron and step in the untrained shipped network."""
    engine = build_engine(TrainConfig(network="dvsgesture-conv", dataset="dvsgesture", engine="spiking"))
    x = torch.from_numpy(np.asarray(frames, dtype=np.float32)).transpose(0, 1).contiguous()
    rec = record(engine, SpikeTrain(x))
    return {k: rec.layer_spikes(k).flatten(2).mean(dim=(0, 2)).tolist() for k in rec.layers}


@pytest.mark.parametrize("how", ["counts", "binary", "normalise"])
def test_every_layer_of_the_untrained_gesture_network_spikes(clips, how):
    spec = FrameSpec(n_time_bins=25, downsample=0.25, binary=how == "binary", normalise=how == "normalise")
    frames = spec.finish_split(np.stack([FrameSpec(n_time_bins=25, downsample=0.25)(c, SENSOR) for c in clips]))
    rates = layer_rates(frames)
    assert sorted(rates) == [1, 2, 3, 4]
    for k, per_clip in rates.items():
        assert min(per_clip) > 0.01, f"layer {k} nearly silent on a clip: {per_clip}"


def test_normalised_frames_drive_the_first_layer_alike_at_any_event_rate(clips):
    counting = FrameSpec(n_time_bins=25, downsample=0.25)
    raw = np.stack([counting(c, SENSOR) for c in clips])
    normalised = FrameSpec(n_time_bins=25, downsample=0.25, normalise=True).finish_split(raw)
    for sample, counts in zip(normalised, raw, strict=True):
        active = counts > 0
        assert np.isclose(sample[active].mean(), 1.0, rtol=1e-5)
        np.testing.assert_allclose(sample, counts / counts[active].mean(), rtol=1e-6)
    spread = {name: max(r[1]) / min(r[1]) for name, r in (("raw", layer_rates(raw)), ("norm", layer_rates(normalised)))}
    assert spread["norm"] < spread["raw"] / 1.5, spread


def test_one_epoch_on_a_folder_of_128_by_128_recordings(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "gestures"
    for split, n in (("train", 6), ("test", 3)):
        (root / split).mkdir(parents=True)
        rows = ["file,label"]
        for i in range(n):
            np.save(root / split / f"{i}.npy", gesture_clip(rng, 20_000, duration_us=1_000_000))
            rows.append(f"{i}.npy,{i % 3}")
        (root / split / "labels.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    args = ["train", "--engine", "spiking", "--network", "dvsgesture-conv", "--dataset", f"events:{root}:128x128x2"]
    args += ["--downsample", "0.25", "--normalise-frames", "-T", "10", "--epochs", "1", "--batch-size", "3"]
    args += ["--data-dir", str(tmp_path / "cache"), "--out", str(out), "--no-progress", "--threads", "1"]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["test_error"]) == 1
