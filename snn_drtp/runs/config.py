"""Training configuration: one dataclass that the CLI, the Python API and run folders share."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from snn_drtp.core.checks import check_field_types, unknown_keys
from snn_drtp.core.devices import device_kind, resolve_device
from snn_drtp.core.engines import BRIAN2_TARGETS, ENGINES
from snn_drtp.core.networks import NetworkSpec, load_spec
from snn_drtp.core.paper import paper_learning_rate
from snn_drtp.data.datasets import DATASET_NAMES, is_known_dataset
from snn_drtp.data.emulator import EmulatorParams
from snn_drtp.data.events import EMULATED, default_duration, is_event_dataset
from snn_drtp.data.frames import FrameSpec
from snn_drtp.rules import Eligibility, get_rule, rule_names
from snn_drtp.spiking.neuron import check_neuron

SPIKING_DEFAULT_LR = 5e-4
TEMPORAL_DEFAULT_LR = 1e-3
"""Adam's rate for temporal networks (both engines) when none is given."""
SPIKING_FIELDS = ("steps", "encoder", "surrogate", "slope", "tau_pre", "time_chunk", "event_driven", "neuron")
"""Fields that only the spiking engine reads."""
OPTIMIZERS = ("adam", "sgd", "nag")
EXAMPLES = {"lr": 1e-3, "train_subset": 1000, "test_subset": 1000, "threads": 1, "init_from": "runs/<run folder>"}
"""Example values that type errors suggest where a field's default is no example."""
NOT_NUMBERS = ("threads", "data_dir", "epochs", "brian2_target")
"""Fields that do not change a run's numbers (``epochs``: a run may be extended; Brian2's targets
compute the same float64 operations)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run's numbers (``threads`` and ``data_dir`` do not).

    ``lr=None`` takes the paper's Table 3 rate for (dataset, network, rule) in the rate engine and
    ``SPIKING_DEFAULT_LR`` in the spiking one. The spiking fields (``steps`` = T for static input,
    ``encoder``, ``surrogate``, ``slope``, ``tau_pre``, ``time_chunk``, ``event_driven``) and
    ``neuron`` (overrides of the network spec's ``[neuron]`` table) matter only to the spiking
    engine, where rules with a backward sweep (bp, fa) run backpropagation through time.
    ``detach_reset`` concerns temporal networks: the reset is left out of their derivatives
    (eligibility traces and BPTT alike).

    Event datasets are binned into ``steps`` frames (``n_time_bins`` = T) unless ``frames`` sets
    ``time_window_us``; ``frames`` holds the other :class:`FrameSpec` fields (``duration_us``,
    ``merge_polarity``, ``denoise_us``, ``downsample``) and ``emulator`` overrides the emulator's
    parameters for ``emulated-*`` datasets. Both engines see the same frames: the spiking engine
    frame by frame, the rate engine their mean. ``init_from`` starts from the parameters of a run
    folder (any engine's) or a ``.nir`` file instead of the seed's initialisation.
    """

    network: str = "fc1-500"
    rule: str = "drtp"
    dataset: str = "mnist"
    engine: str = "rate"
    epochs: int = 100
    lr: float | None = None
    batch_size: int = 60
    dropout: float = 0.0
    optimizer: str = "adam"
    seed: int = 0
    zero_init: bool = False
    train_subset: int | None = None
    test_subset: int | None = None
    angle_batch: int = 1000
    steps: int = 25
    encoder: str = "rate"
    surrogate: str = "fast_sigmoid"
    slope: float = 4.0
    tau_pre: float = 0.0
    time_chunk: int = 0
    event_driven: bool = True
    neuron: dict[str, Any] = field(default_factory=dict)
    frames: dict[str, Any] = field(default_factory=dict)
    emulator: dict[str, Any] = field(default_factory=dict)
    brian2_target: str = "numpy"
    detach_reset: bool = True
    init_from: str | None = None
    threads: int | None = None
    device: str = "cpu"
    data_dir: str | None = None

    def validate(self) -> TrainConfig:
        """Check every field; return a copy with ``lr`` resolved when unset. Each value is checked
        against its annotation first (int, float: an int is accepted, inf and nan are not; bool, str,
        dict, optional), then its range; the neuron parameters (the spec's ``[neuron]`` table under
        ``neuron``) for a spiking engine or when ``neuron`` is given; ``emulator`` only with an
        emulated dataset."""
        check_field_types({f.name: getattr(self, f.name) for f in fields(self)}, TrainConfig, examples=EXAMPLES)
        checks = [
            (self.rule in rule_names(), f"rule {self.rule!r} is not one of {', '.join(rule_names())}"),
            (self.engine in ENGINES, f"engine {self.engine!r} is not one of {', '.join(ENGINES)}"),
            (
                self.brian2_target in BRIAN2_TARGETS,
                f"Brian2 target {self.brian2_target!r} is not one of {', '.join(BRIAN2_TARGETS)}",
            ),
            (
                is_known_dataset(self.dataset),
                f"dataset {self.dataset!r} is not one of {', '.join(DATASET_NAMES)}, tonic:<Class> or "
                "events:<folder> (N-MNIST-format recordings with a labels.csv)",
            ),
            (self.optimizer in OPTIMIZERS, f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}"),
            (
                self.lr is None or (math.isfinite(self.lr) and self.lr > 0),
                f"learning rate must be a finite number > 0, got {self.lr}; pass e.g. --lr 1e-3",
            ),
            (
                not self.emulator or self.dataset in EMULATED,
                f"--emulator {' '.join(f'{k}={v}' for k, v in self.emulator.items())}: emulator parameters only "
                f"apply to the emulated datasets ({', '.join(EMULATED)}); "
                f"dataset {self.dataset!r} is not emulated: drop --emulator or choose an emulated-* dataset",
            ),
            (self.threads is None or self.threads >= 1, f"threads must be >= 1, got {self.threads}"),
            (
                self.train_subset is None or self.train_subset >= 1,
                f"train subset must be >= 1 examples (or unset for all), got {self.train_subset}",
            ),
            (
                self.test_subset is None or self.test_subset >= 1,
                f"test subset must be >= 1 examples (or unset for all), got {self.test_subset}",
            ),
            (self.angle_batch >= 0, f"angle batch must be >= 0 examples (0 = no angles), got {self.angle_batch}"),
            (self.steps >= 1, f"steps (T) must be >= 1, got {self.steps}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        resolve_device(self.device)
        self.frame_spec()
        check_field_types(self.emulator, EmulatorParams, "emulator: ")
        EmulatorParams.from_dict(self.emulator)
        spec = self._spec()
        if self.spiking or self.neuron:
            spec_neuron = spec.neuron if spec is not None else {}
            check_neuron(spec_neuron, f"network {self.network}: [neuron] ")
            check_neuron({**spec_neuron, **self.neuron})
        rule = get_rule(self.rule)
        temporal = spec is not None and spec.temporal
        if rule.eligibility is not Eligibility.INSTANT and not temporal:
            raise ValueError(
                f"rule {self.rule!r} learns from eligibility traces over time ({rule.eligibility.value}); it needs a "
                f"temporal network (one ending in a readout layer), not {self.network!r}: e.g. --network randman-rsnn"
            )
        if self.lr is not None:
            return self
        if temporal:
            return replace(self, lr=TEMPORAL_DEFAULT_LR)
        if self.spiking:
            return replace(self, lr=SPIKING_DEFAULT_LR)
        if rule.paper_lr_of is None:
            raise ValueError(f"rule {self.rule!r} has no default learning rate; pass one with --lr")
        spec = spec or load_spec(self.network)  # no such spec: the error naming the known networks
        return replace(self, lr=paper_learning_rate(self.dataset, spec.lr_key, rule.paper_lr_of))

    def _spec(self) -> NetworkSpec | None:
        """The network spec; None when there is none (building the network reports that, naming the
        known networks)."""
        try:
            return load_spec(self.network)
        except FileNotFoundError:
            return None

    @property
    def spiking(self) -> bool:
        """Whether the engine simulates LIF neurons (and reads the spiking fields)."""
        entry = ENGINES.get(self.engine)
        return entry is not None and entry.spiking

    def frame_spec(self) -> FrameSpec:
        """How an event dataset becomes frames: T = ``steps`` bins over the dataset's default window,
        overridden by ``frames``."""
        unknown = set(self.frames) - set(FrameSpec.__dataclass_fields__) | ({"n_time_bins"} & set(self.frames))
        if unknown:
            raise ValueError(
                f"unknown frame parameters {sorted(unknown)}; known: time_window_us, duration_us, merge_polarity, "
                "denoise_us, downsample (the number of bins is --steps)"
            )
        check_field_types(self.frames, FrameSpec, "frames: ")
        values = {"n_time_bins": self.steps, "duration_us": default_duration(self.dataset), **self.frames}
        return FrameSpec(**values)

    def emulator_params(self) -> EmulatorParams:
        return EmulatorParams.from_dict(self.emulator)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        unknown_keys(data, [f.name for f in fields(cls)], "", "config keys")
        return cls(**data)

    def numbers_key(self) -> dict[str, Any]:
        """The fields that change a run's numbers, ``lr`` resolved (the spiking fields only for the
        spiking engine, but T also for the rate twin of an event dataset; frames and emulator only
        for event datasets)."""
        d = replace(self, device="cpu").validate().to_dict()  # a GPU run's key, read back where there is none
        for key in NOT_NUMBERS:
            d.pop(key)
        d["device"] = device_kind(self.device)  # random draws differ between kinds of device, not units
        event_data = is_event_dataset(self.dataset)
        if not self.spiking:
            for key in SPIKING_FIELDS:
                if not (event_data and key == "steps"):
                    d.pop(key)
        if not event_data:
            d.pop("frames")
            d.pop("emulator")
        return d

    def identity(self) -> str:
        """A short hash of the fields of :meth:`numbers_key` that differ from the defaults: the same
        for every config that gives the same numbers, different otherwise."""
        defaults = TrainConfig().to_dict()
        differing = {k: v for k, v in self.numbers_key().items() if k == "lr" or v != defaults[k]}
        blob = json.dumps(differing, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:8]

    def run_name(self) -> str:
        """A readable prefix and :meth:`identity`: ``rate-fc1-500-drtp-seed0-1a2b3c4d``,
        ``spiking-fc1-1000-drtp-T25-seed0-5e6f7a8b``."""
        steps = f"-T{self.steps}" if self.spiking else ""
        network = Path(self.network).stem
        return f"{self.engine}-{network}-{self.rule}{steps}-seed{self.seed}-{self.identity()}"
