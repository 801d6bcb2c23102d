"""Training configuration: one dataclass that the CLI, the Python API and run folders share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from snn_drtp.data.datasets import DATASET_NAMES
from snn_drtp.networks import load_spec
from snn_drtp.paper import paper_learning_rate
from snn_drtp.rules import RULES

ENGINES = ("rate", "spiking")
SPIKING_RULES = ("drtp", "dfa", "sdfa", "shallow", "bp")
SPIKING_DEFAULT_LR = 5e-4
SPIKING_FIELDS = ("steps", "encoder", "surrogate", "slope", "tau_pre", "time_chunk", "event_driven", "neuron")
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run's numbers (``threads`` and ``data_dir`` do not).

    ``lr=None`` takes the paper's Table 3 rate for (dataset, network, rule) in the rate engine and
    ``SPIKING_DEFAULT_LR`` in the spiking one. The spiking fields (``steps`` = T, ``encoder``,
    ``surrogate``, ``slope``, ``tau_pre``, ``time_chunk``) and ``neuron`` (overrides of the network
    spec's ``[neuron]`` table) matter only to the spiking engine, where rule ``bp`` means
    surrogate-gradient BPTT.
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
    threads: int | None = None
    data_dir: str | None = None

    def validate(self) -> TrainConfig:
        """Check every field; return a copy with ``lr`` resolved from Table 3 when unset."""
        checks = [
            (self.rule in RULES, f"rule {self.rule!r} is not one of {', '.join(RULES)}"),
            (self.engine in ENGINES, f"engine {self.engine!r} is not one of {', '.join(ENGINES)}"),
            (self.dataset in DATASET_NAMES, f"dataset {self.dataset!r} is not one of {', '.join(DATASET_NAMES)}"),
            (self.optimizer in OPTIMIZERS, f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}"),
            (self.lr is None or self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (self.threads is None or self.threads >= 1, f"threads must be >= 1, got {self.threads}"),
            (
                self.engine != "spiking" or self.rule in SPIKING_RULES,
                f"rule {self.rule!r} is not available in the spiking engine; choose one of {', '.join(SPIKING_RULES)}",
            ),
            (self.steps >= 1, f"steps (T) must be >= 1, got {self.steps}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.lr is not None:
            return self
        if self.engine == "spiking":
            return replace(self, lr=SPIKING_DEFAULT_LR)
        spec = load_spec(self.network)
        return replace(self, lr=paper_learning_rate(self.dataset, spec.lr_key, self.rule))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

    def numbers_key(self) -> dict[str, Any]:
        """The fields that change a run's numbers, apart from ``epochs`` (a run may be extended)."""
        d = self.to_dict()
        for key in ("threads", "data_dir", "epochs"):
            d.pop(key)
        if self.engine == "rate":
            for key in SPIKING_FIELDS:
                d.pop(key)
        return d
