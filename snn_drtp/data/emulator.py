"""An event-camera emulator that records static images the way N-MNIST was recorded.

Orchard et al. (2015) showed each MNIST digit on a monitor to an ATIS camera that moved through
three saccades (a triangle: right-down, right-up, back left), so a still image became a stream of
brightness-change events. This module does the same in simulation, for a batch of images at once:

1. The image, blurred by the optics (Gaussian, ``blur`` pixels) and shown on a display whose black
   level is ``dark`` (fraction of white), gives the log intensity L = ln(dark + (1 - dark) I); with
   ``negative`` the display shows it dark on a bright screen, I -> 1 - I (the real recordings'
   ON/OFF sense calls for this: the fit below picks it).
2. The image moves over the 34 x 34 sensor along the saccades; saccade k starts at
   ``saccade_starts_us[k]`` and moves by its displacement with a raised-cosine profile over
   ``saccade_durations_us[k]`` (speed bell-shaped, as the real recordings' event rates are).
   Sensor pixel (i, j) sees L at image position (i - y0 - p_y(t), j - x0 - p_x(t)), bilinearly
   interpolated; (x0, y0) = ``offset``.
3. Each pixel keeps a reference level L_ref (the log intensity at t = 0) and, every ``dt_us``,
   emits n = floor((L - L_ref) / C) ON events or n = floor((L_ref - L) / C) OFF events, moving
   L_ref by n C; the event times are where L crosses L_ref +- k C, linearly interpolated in the
   step. On a pixel's lattice m = (L_ref - L(0)) / C this is the staircase
   m(t) = clip(m(t - dt), floor(x(t)), ceil(x(t))), x = (L - L(0)) / C, one clamp per step. The
   threshold C = ``threshold`` (1 + ``mismatch`` N(0, 1)) varies from pixel to pixel, fixed for
   one emulated sensor (from ``seed``). A refractory period lets a pixel fire at most
   max(1, dt / ``refractory_us``) events a step; the rest are lost.
4. Background noise: Poisson events at ``noise_hz`` per pixel, uniform in time, random polarity.

Everything random is seeded: the mismatch map by the emulator's seed, the noise of image i by
(seed, i), so an image's events do not depend on the batch it is emulated in. Events come out as
Tonic structured arrays (x, y, t in microseconds, p) with sensor size (34, 34, 2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from snn_drtp.data.formats import EVENT_DTYPE

SENSOR_SIZE = (34, 34, 2)
MARGIN = 12
KEY_SHIFT = 1 << 32
"""Events are sorted by the key image x KEY_SHIFT + time (microseconds)."""
NOISE_BLOCK = 1024


@dataclass(frozen=True)
class EmulatorParams:
    """The emulated sensor, display and motion (times in microseconds, positions in pixels).

    The defaults are the fit to the real nmnist-small training recordings (``snn-drtp
    emulator-fit``; ``experiments/emulator-vs-real/fitted_params.json``); the saccade displacements
    are those of the N-MNIST protocol (Orchard et al. 2015; Tonic's ``stabilize``)."""

    threshold: float = 0.6553
    mismatch: float = 0.05
    refractory_us: float = 1000.0
    noise_hz: float = 0.352
    dark: float = 0.02
    negative: bool = True
    blur: float = 0.0
    offset: tuple[float, float] = (0.0, 2.0)
    saccades: tuple[tuple[float, float], ...] = ((2.8, 5.6), (3.15, -6.3), (-6.3, 0.0))
    saccade_starts_us: tuple[float, ...] = (2500.0, 105000.0, 207500.0)
    saccade_durations_us: tuple[float, ...] = (120000.0, 90000.0, 100000.0)
    duration_us: float = 310000.0
    dt_us: float = 5000.0

    def __post_init__(self) -> None:
        positive = ("threshold", "refractory_us", "dark", "duration_us", "dt_us")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"emulator parameter {name} must be > 0, got {getattr(self, name)}")
        for name in ("mismatch", "noise_hz", "blur"):
            if getattr(self, name) < 0:
                raise ValueError(f"emulator parameter {name} must be >= 0, got {getattr(self, name)}")
        if not len(self.saccades) == len(self.saccade_starts_us) == len(self.saccade_durations_us):
            raise ValueError(
                f"emulator: {len(self.saccades)} saccades need as many start times and durations, got "
                f"{len(self.saccade_starts_us)} and {len(self.saccade_durations_us)}"
            )
        if self.dark >= 1:
            raise ValueError(f"emulator parameter dark is the display's black level, in (0, 1); got {self.dark}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EmulatorParams:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown emulator parameters {sorted(unknown)}; known: {sorted(known)}")
        values = dict(data)
        for key in ("offset", "saccade_starts_us", "saccade_durations_us"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        if "saccades" in values:
            values["saccades"] = tuple(tuple(float(v) for v in s) for s in values["saccades"])
        return cls(**values)


def saccade_path(params: EmulatorParams, times_us: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(p_x(t), p_y(t)): the image's displacement at ``times_us``, each saccade a raised cosine
    s(tau) = (1 - cos(pi tau)) / 2 of its displacement over its duration."""
    px = torch.zeros_like(times_us)
    py = torch.zeros_like(times_us)
    for (ax, ay), start, span in zip(
        params.saccades, params.saccade_starts_us, params.saccade_durations_us, strict=True
    ):
        tau = ((times_us - start) / max(span, 1e-9)).clamp(0.0, 1.0)
        s = (1 - torch.cos(math.pi * tau)) / 2
        px = px + ax * s
        py = py + ay * s
    return px, py


def _blur_matrix(size: int, sigma: float) -> torch.Tensor:
    """G [size, size]: G x is x convolved with a Gaussian of ``sigma`` pixels (zero outside)."""
    x = torch.arange(size, dtype=torch.float32)
    g = torch.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * max(sigma, 1e-6) ** 2))
    return g / g.sum(1, keepdim=True) if sigma > 0 else torch.eye(size)


@dataclass
class EventEmulator:
    """Emulates N-MNIST-style recordings of images [N, H, W] (values in [0, 1], H, W <= 34)."""

    params: EmulatorParams = field(default_factory=EmulatorParams)
    seed: int = 0

    def __post_init__(self) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        w, h, _ = SENSOR_SIZE
        mismatch = 1 + self.params.mismatch * torch.randn(h, w, generator=gen)
        self.threshold = self.params.threshold * mismatch.clamp(min=0.2)

    def log_canvas(self, images: torch.Tensor) -> torch.Tensor:
        """ln(dark + (1 - dark) I) of the blurred images on a canvas with a margin of background, laid out
        [height, width, image] so that every step's window is a contiguous run over the images."""
        p = self.params
        padded = F.pad(images.float(), (MARGIN, MARGIN, MARGIN, MARGIN))
        if p.negative:
            padded = 1 - padded
        gy, gx = _blur_matrix(padded.shape[1], p.blur), _blur_matrix(padded.shape[2], p.blur)
        blurred = gy @ padded @ gx.T if p.blur > 0 else padded
        return torch.log(p.dark + (1 - p.dark) * blurred.clamp(0.0, 1.0)).permute(1, 2, 0).contiguous()

    def __call__(self, images: torch.Tensor, first_index: int = 0) -> list[np.ndarray]:
        """One event stream per image; image n is the dataset's example ``first_index + n`` (it
        seeds that image's noise)."""
        if images.dim() != 3 or images.shape[1] > SENSOR_SIZE[1] or images.shape[2] > SENSOR_SIZE[0]:
            raise ValueError(f"images must be [N, H, W] with H, W <= 34, got shape {tuple(images.shape)}")
        p = self.params
        w, h, _ = SENSOR_SIZE
        canvas = self.log_canvas(images)
        steps = math.ceil(p.duration_us / p.dt_us)
        times = torch.arange(steps + 1, dtype=torch.float64) * p.dt_us
        px, py = saccade_path(p, times)
        u, v = MARGIN - p.offset[0] - px, MARGIN - p.offset[1] - py
        inverse = (1.0 / self.threshold).unsqueeze(2)
        cap = max(1, int(p.dt_us // p.refractory_us))

        def seen(s: int) -> torch.Tensor:
            """L at step s, bilinear on the canvas moved by the saccades, [34, 34, N]."""
            iu, iv = math.floor(u[s]), math.floor(v[s])
            fu, fv = float(u[s]) - iu, float(v[s]) - iv
            window = canvas[iv : iv + h + 1, iu : iu + w + 1]
            top = torch.lerp(window[:h, :w], window[:h, 1:], fu)
            return torch.lerp(top, torch.lerp(window[1:, :w], window[1:, 1:], fu), fv)

        # ref is the pixel's reference level in threshold units, y = L / C; a step emits trunc(y - ref)
        # events (positive: ON) and moves ref by as much: ref(t) = clip(ref, floor(y), ceil(y)) on the
        # pixel's lattice y(0) + k.
        ref = seen(0).mul_(inverse).view(-1)
        y_prev = ref.clone()
        keys, packed = [], []
        batch = images.shape[0]
        for s in range(1, steps + 1):
            y = seen(s).mul_(inverse).view(-1)
            jump = (y - ref).to(torch.int32)  # rounds toward zero: trunc(y - ref)
            (idx,) = jump.nonzero(as_tuple=True)
            if idx.numel():
                moved = jump[idx]
                count = moved.abs().clamp_(max=cap)
                rep = torch.repeat_interleave(torch.arange(idx.numel()), count)
                k = torch.arange(int(count.sum())) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count) + 1
                idx, up = idx[rep], moved[rep] > 0
                crossed = ref[idx] + torch.where(up, k, -k)
                before = y_prev[idx]
                frac = ((crossed - before) / (y[idx] - before)).clamp_(0, 1)
                t = (times[s - 1] + frac.double() * p.dt_us).long()
                pixel = torch.div(idx, batch, rounding_mode="floor")
                keys.append((idx - pixel * batch) * KEY_SHIFT + t)
                packed.append(pixel + (up.long() << 16))
            ref += jump
            y_prev = y
        return self._streams(images.shape[0], keys, packed, first_index)

    def _streams(
        self, batch: int, keys: list[torch.Tensor], packed: list[torch.Tensor], first_index: int
    ) -> list[np.ndarray]:
        """Per image, its events and background noise sorted by time, as structured arrays. Events
        travel as a sort key image x KEY_SHIFT + time and packed pixel (y W + x) + polarity 2^16."""
        p = self.params
        w = SENSOR_SIZE[0]
        if p.noise_hz > 0:
            key, pix = self._noise(first_index, batch)
            keys.append(key)
            packed.append(pix)
        if not keys:
            return [np.empty(0, dtype=EVENT_DTYPE) for _ in range(batch)]
        sorted_keys, order = torch.sort(torch.cat(keys), stable=True)
        xyp = torch.cat(packed)[order].numpy()
        sort_key = sorted_keys.numpy()
        events = np.empty(len(sort_key), dtype=EVENT_DTYPE)
        pixel = xyp & 0xFFFF
        events["x"], events["y"], events["p"] = pixel % w, pixel // w, xyp >> 16
        events["t"] = sort_key % KEY_SHIFT
        bounds = np.searchsorted(sort_key // KEY_SHIFT, np.arange(batch + 1))
        return [events[bounds[n] : bounds[n + 1]] for n in range(batch)]

    def _noise(self, first_index: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Background events of images first_index ... first_index + batch - 1 as (key, packed).
        Image i's noise comes from the generator of its block of NOISE_BLOCK images, seeded with
        (seed, block), so it does not depend on the batch the image is emulated in."""
        p = self.params
        w, h, _ = SENSOR_SIZE
        keys, packed = [], []
        for block in range(first_index // NOISE_BLOCK, (first_index + batch - 1) // NOISE_BLOCK + 1):
            rng = np.random.default_rng((self.seed, block))
            counts = rng.poisson(p.noise_hz * p.duration_us * 1e-6 * w * h, NOISE_BLOCK)
            image = np.repeat(np.arange(block * NOISE_BLOCK, (block + 1) * NOISE_BLOCK), counts) - first_index
            t = np.floor(rng.random(len(image)) * p.duration_us).astype(np.int64)
            pix = rng.integers(0, w * h, len(image)) | (rng.integers(0, 2, len(image)) << 16)
            mine = (image >= 0) & (image < batch)
            keys.append(torch.from_numpy(image[mine] * KEY_SHIFT + t[mine]))
            packed.append(torch.from_numpy(pix[mine]))
        return torch.cat(keys), torch.cat(packed)
