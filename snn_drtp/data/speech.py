"""``emulated-shd``: spoken digits 0-9 in English and German (the 20 classes of the Spiking Heidelberg
Digits, Cramer et al. 2020) synthesised offline and turned into spikes by a cochlea model, written
in SHD's HDF5 layout so the SHD loader reads them. A stand-in for the real recordings.

1. **Speech**: espeak-ng (its library and voice data from the ``espeakng-loader`` wheel, driven
   through its C API, ``speak_lib.h``), a seeded voice variant, speed (words per minute) and pitch
   per utterance; 22,050 samples/s.
2. **Cochlea** (``lauscher``, the chain SHD itself was made with, arXiv 1910.07407): RMS
   normalisation and a Hanning window, lauscher's basilar-membrane model for ``channels``
   frequency-selective places, then, per channel, the Meddis (1986, 1988) inner-hair-cell
   transmitter model and bushy cells, each a LIF neuron fed by 40 stochastic fibres with a
   refractory time. lauscher runs those two stages sample by sample in pure Python (about a minute
   per utterance at 700 channels here); :func:`hair_cells` and :func:`bushy_cells` compute the same
   equations with lauscher's parameters, vectorised over channels, and are checked against
   lauscher's own stages in the tests.
3. **File**: ``SHD/shd_train.h5`` and ``SHD/shd_test.h5`` with ``spikes/times`` (s, float),
   ``spikes/units`` (channel), ``labels`` (0-9 English, 10-19 German) and ``extra/speaker`` (the
   voice variant), under the cache folder's ``emulated-shd/<fingerprint>/``.

How it differs from SHD: 20 voices of one formant synthesiser (10 variants per language) instead
of 12 human speakers, no room, microphone or noise, words that start at once (the first spike
after about 3 ms), and fewer samples by default. Measured on one word per class (seed 0, 700
channels): a median of 5,573 spikes per word (1,836 to 8,262), 0.41 s long (0.22 to 0.59 s), 622 of
the 700 channels active, about 9 spikes per active channel. Accuracy on it does not predict
accuracy on SHD.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from snn_drtp.core.atomic import atomic_write_bytes
from snn_drtp.data.names import name_parameters

WORDS = (
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"),
)
"""Label l < 10: English WORDS[0][l]; l >= 10: German WORDS[1][l - 10] (SHD's order)."""
LANGUAGES = ("en", "de")
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f4")
"""espeak-ng's voice variants used (with each language's default voice: 20 voices). The variants with
breath noise (f2, f3, f5) are left out: espeak-ng draws that noise from a source that cannot be seeded,
so their samples differ from process to process."""
SAMPLE_RATE = 22050
INSTALL = "pip install 'snn-drtp[speech]' (espeakng-loader and lauscher)"


@dataclass(frozen=True)
class SpeechParams:
    """Utterances per class in each split, cochlea channels, the seed of voices, speeds and pitches;
    ``classes`` < 20 keeps the first classes only (English zero, one, ...: small test sets)."""

    train_per_class: int = 40
    test_per_class: int = 10
    channels: int = 700
    seed: int = 0
    classes: int = 20
    words_per_minute: tuple[int, int] = (120, 220)
    pitch: tuple[int, int] = (25, 75)

    def __post_init__(self) -> None:
        for name in ("train_per_class", "test_per_class", "channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"emulated-shd: {name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.classes <= 20:
            raise ValueError(f"emulated-shd: classes must be 1 to 20 (SHD's), got {self.classes}")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_name(cls, name: str) -> SpeechParams:
        """``emulated-shd`` or ``emulated-shd:train_per_class=40,test_per_class=10,channels=700,seed=0``."""
        keys = ("train_per_class", "test_per_class", "channels", "seed", "classes")
        example = "emulated-shd:train_per_class=40,test_per_class=10,channels=700,seed=0"
        values = name_parameters(name, dict.fromkeys(keys, int), example)
        return cls(**values)  # type: ignore[arg-type]  # only the int fields are settable by name


def is_emulated_shd(name: str) -> bool:
    return name == "emulated-shd" or name.startswith("emulated-shd:")


def _need(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"emulated-shd needs the Python package {module!r}: {INSTALL}") from None


SPOKEN_IN: set[int] = set()
"""The processes (pids) that have started espeak-ng: forked children inherit its state, so none of
them may make the utterances of a dataset (:func:`utterance_spikes` refuses)."""


class Speaker:
    """espeak-ng through its C API, synchronous: text -> int16 samples at 22,050 Hz. Its output
    depends on what the process synthesised before; :func:`speech_samples` speaks in a fresh
    process instead."""

    def __init__(self) -> None:
        loader = _need("espeakng_loader")
        SPOKEN_IN.add(os.getpid())
        self.lib = ctypes.CDLL(loader.get_library_path())
        rate = self.lib.espeak_Initialize(2, 0, loader.get_data_path().encode(), 0)  # AUDIO_OUTPUT_SYNCHRONOUS
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"espeak-ng started at {rate} samples/s, expected {SAMPLE_RATE}")
        self.chunks: list[np.ndarray] = []
        callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        self._callback = callback(self._collect)  # kept alive as long as the library may call it
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: Any, n: int, _events: Any) -> int:
        if n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def say(self, text: str, voice: str, words_per_minute: int, pitch: int) -> np.ndarray:
        """The samples of ``text`` in ``voice`` (e.g. ``en+f3``), as floats in [-1, 1]."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(1, words_per_minute, 0)  # espeakRATE
        self.lib.espeak_SetParameter(3, pitch, 0)  # espeakPITCH, 0-100
        self.chunks = []
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None)  # POS_CHARACTER, espeakCHARS_UTF8
        self.lib.espeak_Synchronize()
        if not self.chunks:
            raise RuntimeError(f"espeak-ng produced no sound for {text!r} in voice {voice!r}")
        return np.concatenate(self.chunks).astype(np.float64) / 32768.0


def hair_cells(velocity: np.ndarray, fs: float, params: Any) -> np.ndarray:
    """The Meddis inner-hair-cell model for every channel at once: velocity [C, S] -> firing
    probability [C, S]. With k(t) = g dt (s + A) / (s + A + B) (0 when s + A <= 0), per sample:
    q += y dt (M - q) [if q < M] - k q + x dt w;  c += k q - (l + r) dt c;  w += r dt c - x dt w
    (each clipped at 0, all from the previous values), output h dt c; the resting state as
    initial values. ``params``: a lauscher HairCell (its y, g, l, r, x, a, b, h, m)."""
    p = params
    ymdt, xdt, ydt = p.y * p.m / fs, p.x / fs, p.y / fs
    rdt, gdt, hdt, lrdt = p.r / fs, p.g / fs, p.h / fs, (p.l + p.r) / fs
    kt = p.g * p.a / (p.a + p.b)
    channels, samples = velocity.shape
    c = np.full(channels, p.m * p.y * kt / (p.l * kt + p.y * (p.l + p.r)))
    q = c * (p.l + p.r) / kt
    w = c * p.r / p.x
    out = np.empty((channels, samples))
    drive = velocity + p.a
    k_all = np.where(drive > 0, gdt * drive / np.where(drive + p.b != 0, drive + p.b, 1.0), 0.0)
    for j in range(samples):
        k = k_all[:, j]
        replenish = np.where(q < p.m, ymdt - ydt * q, 0.0)
        eject = k * q
        reuptake_and_loss = lrdt * c
        reuptake = rdt * c
        reprocess = xdt * w
        q = np.maximum(q + replenish - eject + reprocess, 0.0)
        c = np.maximum(c + eject - reuptake_and_loss, 0.0)
        w = np.maximum(w + reuptake - reprocess, 0.0)
        out[:, j] = c * hdt
    return out


def bushy_cells(
    probability: np.ndarray, fs: float, params: Any, uniform: Callable[[tuple[int, int]], np.ndarray]
) -> np.ndarray:
    """Bushy cells for every channel: probability [C, S] -> spikes [C, S] (0/1). Each of the
    cell's ``n_convergence`` fibres spikes where a uniform draw (``uniform((S, n))``, channel after
    channel) is below the probability, then keeps a refractory time (a spike within tau_refrac of the
    fibre's last kept spike is dropped); the cell sums its fibres' synaptic currents
    (I(t) = e^{-dt/tau_syn} I(t-1) + spikes(t)) into a LIF membrane v += weight / n dt I (clipped at
    1, decaying with tau_mem), spiking, resetting to 0 and going refractory for tau_refrac when it
    reaches 1. ``params``: a lauscher BushyCell."""
    p = params
    channels, samples = probability.shape
    refractory = p.tau_refrac * fs
    inputs = np.empty((channels, samples))
    for i in range(channels):
        inputs[i] = _fibre_counts(uniform((samples, p.n_convergence)) < probability[i][:, None], refractory)
    dt = 1.0 / fs
    return _lif_cells(inputs, p.weight * dt, math.exp(-dt / p.tau_mem), math.exp(-dt / p.tau_syn), refractory)


def _jit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """numba's compiled ``fn`` (numba comes with lauscher); ``fn`` itself without numba."""
    try:
        import numba
    except ImportError:
        return fn
    compiled: Callable[..., Any] = numba.njit(cache=False)(fn)
    return compiled


def _compile() -> None:
    """Compile the numba loops once here, so that the child processes forked per utterance inherit them."""
    _fibre_counts(np.zeros((2, 1), dtype=np.bool_), 1.0)
    _lif_cells(np.zeros((1, 2)), 1.0, 0.5, 0.5, 1.0)


@_jit
def _fibre_counts(fibres: np.ndarray, refractory: float) -> np.ndarray:
    """Spikes per sample over a cell's fibres [S, n], each fibre's spikes within ``refractory``
    samples of its last kept one dropped."""
    samples, n = fibres.shape
    counts = np.zeros(samples)
    for f in range(n):
        last = -refractory
        for j in range(samples):
            if fibres[j, f] and j - last >= refractory:
                last = j
                counts[j] += 1.0
    return counts


@_jit
def _lif_cells(inputs: np.ndarray, gain: float, decay_m: float, decay_s: float, refractory: float) -> np.ndarray:
    """The bushy cells' LIF membranes over inputs [C, S] (fibre spikes per sample): see
    :func:`bushy_cells`."""
    channels, samples = inputs.shape
    spikes = np.zeros((channels, samples))
    for i in range(channels):
        v, current, counter = 0.0, 0.0, 0.0
        for step in range(samples):
            if step > 0:
                if counter <= 0:
                    if v < 1.0:
                        v = v * decay_m
                    else:
                        counter = refractory
                        v = 0.0
                        spikes[i, step - 1] = 1.0
                else:
                    v = 0.0
                current = current * decay_s
            current = current + inputs[i, step]
            if counter <= 0:
                v = v + current * gain
            v = min(v, 1.0)
            counter -= 1
    return spikes


def cochlea(audio: np.ndarray, channels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(spike times in s, channels) of one utterance: lauscher's normalisation, window and basilar
    membrane, then :func:`hair_cells` and :func:`bushy_cells` (fibre draws from ``seed``)."""
    _need("lauscher")
    from lauscher.audiowaves import MonoAudioWave
    from lauscher.transformations import BasilarMembrane, BushyCell, HairCell, HanningWindow, RmsNormalizer

    wave = MonoAudioWave(audio, SAMPLE_RATE).transform(RmsNormalizer(0.3)).transform(HanningWindow())
    membrane = wave.transform(BasilarMembrane(channels=channels))
    velocity = np.asarray(membrane.channels, dtype=np.float64)
    probability = hair_cells(velocity, membrane.sample_rate, HairCell())
    generator = np.random.default_rng(seed)
    spikes = bushy_cells(probability, membrane.sample_rate, BushyCell(), generator.random)
    unit, sample = np.nonzero(spikes)
    order = np.argsort(sample, kind="stable")
    return sample[order] / membrane.sample_rate, unit[order]


def _in_child(connection: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        connection.send(fn(*args))
    except BaseException as exc:  # reported in the parent
        connection.send(exc)
    finally:
        connection.close()


def _speak_and_hear(
    word: str, voice: str, wpm: int, pitch: int, channels: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    return cochlea(Speaker().say(word, voice, wpm, pitch), channels, seed)


def _speak(word: str, voice: str, wpm: int, pitch: int) -> np.ndarray:
    return Speaker().say(word, voice, wpm, pitch)


def _start(fn: Callable[..., Any], *args: Any) -> tuple[Any, Any]:
    """A forked child computing fn(*args); (its pipe's reading end, the child). Refused in a process
    that has used espeak-ng itself (:data:`SPOKEN_IN`): the child would inherit its state."""
    import multiprocessing

    if os.getpid() in SPOKEN_IN:
        raise RuntimeError(
            f"espeak-ng was started in this process (pid {os.getpid()}); its synthesiser keeps state that forked "
            "children inherit, so a word made now would differ from the same word made elsewhere: make utterances "
            "(utterance_spikes, speech_samples, build) in a process that has not created a Speaker"
        )
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_in_child, args=(send, fn, args))
    child.start()
    send.close()
    return receive, child


def _finish(receive: Any, child: Any, what: str) -> Any:
    try:
        result = receive.recv()
    except EOFError:
        result = None
    receive.close()
    child.join()
    if result is None:
        raise RuntimeError(f"the process making {what} died with exit code {child.exitcode}")
    if isinstance(result, BaseException):
        raise result
    return result


def speech_samples(word: str, voice: str, wpm: int, pitch: int) -> np.ndarray:
    """The samples of ``word`` spoken by espeak-ng in a fresh child process: the same on every call."""
    samples: np.ndarray = _finish(*_start(_speak, word, voice, wpm, pitch), f"{word!r} ({voice})")
    return samples


def utterance_spikes(
    word: str, voice: str, wpm: int, pitch: int, channels: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(spike times, channels) of one utterance, synthesised and converted in a fresh child process:
    espeak-ng's output depends on what the process synthesised before (its synthesiser keeps state
    across calls, even across re-initialisation), so each utterance is the first of its process and
    the same on every run."""
    times, units = _finish(*_start(_speak_and_hear, word, voice, wpm, pitch, channels, seed), f"{word!r} ({voice})")
    return times, units


def spikes_of(
    tasks: list[tuple[str, str, int, int, int, int]], jobs: int, done: Callable[[int], None] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`utterance_spikes` of every task (word, voice, wpm, pitch, channels, seed), up to
    ``jobs`` children at a time, in the tasks' order; ``done(n)`` after each. A failing utterance
    stops the others and is raised."""
    from multiprocessing.connection import wait

    results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(tasks)
    running: dict[Any, tuple[int, Any]] = {}
    started = finished = 0
    try:
        while finished < len(tasks):
            while started < len(tasks) and len(running) < max(1, jobs):
                receive, child = _start(_speak_and_hear, *tasks[started])
                running[receive] = (started, child)
                started += 1
            for receive in wait(list(running)):
                i, child = running.pop(receive)
                results[i] = _finish(receive, child, f"{tasks[i][0]!r} ({tasks[i][1]})")
                finished += 1
                if done is not None:
                    done(finished)
    finally:
        for receive, (_, child) in running.items():
            child.kill()
            child.join()
            receive.close()
    return [r for r in results if r is not None]


def utterances(params: SpeechParams, split: str) -> list[tuple[int, str, str, int, int]]:
    """(label, word, voice, words per minute, pitch) of every utterance of a split, seeded, class
    after class; the test split draws from another stream than the training split."""
    per_class = params.train_per_class if split == "train" else params.test_per_class
    rng = np.random.default_rng([params.seed, 0 if split == "train" else 1])
    items = []
    for label in range(params.classes):
        language = label // 10
        for _ in range(per_class):
            voice = LANGUAGES[language] + VARIANTS[int(rng.integers(len(VARIANTS)))]
            wpm = int(rng.integers(params.words_per_minute[0], params.words_per_minute[1] + 1))
            pitch = int(rng.integers(params.pitch[0], params.pitch[1] + 1))
            items.append((label, WORDS[language][label % 10], voice, wpm, pitch))
    return items


def write_shd(
    path: Path, times: list[np.ndarray], units: list[np.ndarray], labels: list[int], voices: list[str]
) -> None:
    """SHD's HDF5 layout (``spikes/times``, ``spikes/units`` as variable-length arrays, ``labels``,
    ``extra/speaker``, ``extra/keys`` the class names), and beside it the ``.h5.zip`` that SHD is
    distributed as (Tonic checks for it); each written to a temporary file and renamed."""
    import zipfile

    import h5py

    tmp = path.with_suffix(".h5.tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("spikes/times", data=_ragged(times, np.float32), dtype=h5py.vlen_dtype(np.float32))
        f.create_dataset("spikes/units", data=_ragged(units, np.uint16), dtype=h5py.vlen_dtype(np.uint16))
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        f.create_dataset("extra/speaker", data=np.array(voices, dtype=h5py.string_dtype()))
        keys = [
            f"{language}-{word}" for language, words in zip(("english", "german"), WORDS, strict=True) for word in words
        ]
        f.create_dataset("extra/keys", data=np.array(keys, dtype=h5py.string_dtype()))
    zipped = path.with_name(path.name + ".zip.tmp")
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(tmp, path.name)
    tmp.replace(path)
    zipped.replace(path.with_name(path.name + ".zip"))


def _ragged(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
    out = np.empty(len(arrays), dtype=object)
    for i, a in enumerate(arrays):
        out[i] = np.asarray(a, dtype=dtype)
    return out


def emulated_shd_root(name: str, cache_dir: Path, progress: bool = True) -> tuple[Path, SpeechParams]:
    """The folder holding ``SHD/shd_{train,test}.h5`` of dataset ``name`` under ``cache_dir``
    (``emulated-shd/<fingerprint of its parameters>``), built first when it is not there."""
    from snn_drtp.core.atomic import folder_lock
    from snn_drtp.core.progress import progress as show_progress

    params = SpeechParams.from_name(name)
    root = cache_dir / "emulated-shd" / params.fingerprint()
    done = [root / "SHD" / f"shd_{split}.h5" for split in ("train", "test")]
    if all(path.exists() for path in done):
        return root, params
    root.mkdir(parents=True, exist_ok=True)
    with folder_lock(root):
        bars: dict[str, Any] = {}

        def report(split: str, i: int, *, total: int) -> None:
            if split not in bars:
                bars[split] = show_progress(total, f"emulated-shd {split}: speech -> cochlea", "utterance", progress)
            bars[split].update(1)
            if i == total:
                bars.pop(split).close()

        build(root, params, report, jobs=os.cpu_count() or 1)
    return root, params


def build(root: Path, params: SpeechParams, progress: Callable[..., None] | None = None, jobs: int = 1) -> Path:
    """Write (or find) ``root/SHD/shd_train.h5`` and ``shd_test.h5`` for ``params``, ``jobs``
    utterances at a time; returns ``root``; ``progress(split, n, total=N)`` after each utterance. A
    split already written is kept; one utterance's spikes depend only on (params, split, index),
    whatever ``jobs``."""
    folder = root / "SHD"
    folder.mkdir(parents=True, exist_ok=True)
    _compile()
    for split in ("train", "test"):
        path = folder / f"shd_{split}.h5"
        if path.exists():
            continue
        items = utterances(params, split)
        tasks = [
            (word, voice, wpm, pitch, params.channels, hash_seed(params.seed, split, i))
            for i, (_, word, voice, wpm, pitch) in enumerate(items)
        ]
        report = None if progress is None else partial(progress, split, total=len(tasks))
        spikes = spikes_of(tasks, jobs, report)
        times = [t.astype(np.float32) for t, _ in spikes]
        units = [u.astype(np.uint16) for _, u in spikes]
        write_shd(path, times, units, [item[0] for item in items], [item[2] for item in items])
    atomic_write_bytes(folder / "params.json", json.dumps(asdict(params), indent=1).encode())
    return root


def hash_seed(seed: int, split: str, index: int) -> int:
    """A 63-bit seed per utterance from (seed, split, index)."""
    digest = hashlib.sha256(f"{seed}/{split}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
