"""Benchmark: the N-MNIST emulator's speed, MNIST training images per second, in one process.

Each repeat emulates ``--images`` MNIST training images (chunks of 256, as the dataset pipeline
does) with 1 and with 2 torch threads, interleaved; the report gives medians. Also timed: the
same images emulated and turned into 10 frames each with Tonic's ToFrame (the first-use cost of
the ``emulated-nmnist`` dataset per image).

    python benchmarks/emulator.py --images 5000 --repeats 3
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from snn_drtp.core.atomic import write_json_and_markdown
from snn_drtp.data import load_dataset
from snn_drtp.data.emulator import EventEmulator
from snn_drtp.data.events import EMULATION_CHUNK
from snn_drtp.data.frames import FrameSpec


def emulate(images: torch.Tensor, frames: FrameSpec | None = None) -> float:
    """Images per second through the emulator (and ToFrame, given ``frames``)."""
    emulator = EventEmulator()
    t0 = time.perf_counter()
    for start in range(0, images.shape[0], EMULATION_CHUNK):
        streams = emulator(images[start : start + EMULATION_CHUNK], first_index=start)
        if frames is not None:
            for events in streams:
                frames(events, (34, 34, 2))
    return images.shape[0] / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/emulator")
    args = parser.parse_args()
    train, _ = load_dataset("mnist")
    images = train.x[: args.images, 0]
    frames = FrameSpec(n_time_bins=10, duration_us=310_000)
    cases = {
        "emulator, 1 thread": (1, None),
        "emulator, 2 threads": (2, None),
        "emulator + ToFrame (T = 10), 2 threads": (2, frames),
    }
    torch.set_num_threads(2)
    emulate(images[:512])
    speed: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(args.repeats):
        for name, (threads, spec) in cases.items():
            torch.set_num_threads(threads)
            speed[name].append(emulate(images, spec))
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in speed.items()), flush=True)
    medians = {name: statistics.median(v) for name, v in speed.items()}
    command = f"python benchmarks/emulator.py --images {args.images} --repeats {args.repeats}"
    report = {
        "command": command,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "images_per_second": speed,
        "median_images_per_second": medians,
        "goal": 1000,
    }
    lines = [
        "# N-MNIST emulator speed (MNIST training images)",
        "",
        f"`{command}`, torch {torch.__version__}; medians of {args.repeats} interleaved runs of {args.images} "
        f"images (chunks of {EMULATION_CHUNK}).",
        "",
        "| case | images/s | goal |",
        "|---|---|---|",
        *(f"| {name} | {value:.0f} | >= 1000 |" for name, value in medians.items()),
    ]
    print(write_json_and_markdown(args.out, report, lines))


if __name__ == "__main__":
    main()
