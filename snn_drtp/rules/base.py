"""What every learning rule is: a provider of the third factor m_k of hidden layer k.

All rules update a synapse from unit j of layer k-1 to unit i of layer k as

    dW_k[i, j] = -eta * m_k[i] * post_k[i] * pre_k[j]

(Frenkel et al. 2021, Fig. 1). ``post_k`` (f'(z_k) in the rate engine, a surrogate psi(v_k(t)) in
the spiking one) and ``pre_k`` (y_{k-1}, or spikes or traces x_{k-1}(t)) are local and computed by
the engines; ``m_k`` is the rule's estimate of the loss gradient delta y_k at the layer's output,
and ``delta z_k = m_k * post_k`` is the *modulatory signal*. A rule says *when* its third factor
exists (:class:`Timing`) and computes it from what the layer can see at that moment
(:class:`LayerView`). Engines ask at the moment their timing allows and never look at a rule's
name. The output layer always learns from its own error; rules concern the hidden layers.

In time, a rule also says which eligibility its third factor multiplies (:class:`Eligibility`):
today's static rules take post_k(t) pre_k(t) of the present step; the temporal rules (OSTTP,
e-prop) an eligibility trace e_k(t) that carries each synapse's past forward in time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

import torch


class Timing(Enum):
    """When hidden layer k's third factor becomes available."""

    LABEL = "label"
    """From the label alone, before the forward pass: no feedback path, no update locking (DRTP)."""
    OUTPUT = "output"
    """Once the network output (hence the error) exists: update locked (DFA, sDFA)."""
    BACKWARD = "backward"
    """From the layer above, in a backward sweep: update locked, layer by layer (BP, FA)."""
    NEVER = "never"
    """Hidden layers do not learn (shallow learning)."""


class Eligibility(Enum):
    """What a hidden layer's learning signal L_k(t) multiplies at step t (the temporal engine;
    the static engines simulate ``INSTANT`` only)."""

    INSTANT = "instant"
    """post_k(t) pre_k(t): the present step only, the synapse's history dropped (three-factor DRTP)."""
    TRACE = "trace"
    """e_k(t) = dz_k(t)/dW_k along the neuron's own state, carried forward in time (OSTL; OSTTP)."""
    FILTERED = "filtered"
    """ebar_k(t) = kappa ebar_k(t-1) + e_k(t): the trace through the readout's filter
    (e-prop, Bellec et al. 2020, where L_k(t) is the readout's error at t)."""


@dataclass(frozen=True)
class LayerView:
    """What hidden layer k can see when its rule is asked for m_k.

    ``y_star`` [N, C] and ``B`` (B_k [C, N_k]) are always there. ``error`` e = y_K - y* ([..., N, C];
    in the spiking engine the running error of every step of a window) exists from the output on.
    In a backward sweep, ``delta_above`` is delta z_{k+1}, ``W_above`` and ``F_above`` are layer
    k+1's forward weights and FA's fixed random matrix of the same shape, and
    ``carry(delta, M)`` sends a signal at layer k+1's input side through M: M^T delta for a dense
    layer, the transposed convolution for a convolutional one, dropout mask included.
    """

    k: int
    y_star: torch.Tensor
    B: torch.Tensor
    error: torch.Tensor | None = None
    delta_above: torch.Tensor | None = None
    W_above: torch.Tensor | None = None
    F_above: torch.Tensor | None = None
    carry: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def need(self, what: str, rule: str) -> torch.Tensor:
        """The field ``what``, or an error saying that ``rule`` was asked too early."""
        value = getattr(self, what)
        if value is None:
            raise ValueError(
                f"rule {rule} needs {what} for hidden layer {self.k}, which the engine did not provide yet"
            )
        return value

    def carried(self, matrix: torch.Tensor, rule: str) -> torch.Tensor:
        """carry(delta z_{k+1}, M): the signal of the layer above sent down through M."""
        carry = self.carry
        if carry is None:
            raise ValueError(f"rule {rule} needs a backward sweep to reach hidden layer {self.k}")
        return carry(self.need("delta_above", rule), matrix)


class Rule(ABC):
    """A learning rule: when its hidden layers' third factor exists, and how it is computed.

    A new rule is one subclass in one file of ``snn_drtp/rules/``, registered with
    :func:`register` and imported in ``snn_drtp/rules/__init__.py``.
    """

    name: ClassVar[str]
    timing: ClassVar[Timing]
    summary: ClassVar[str]
    """m_k in a line, and what the rule needs (``snn-drtp rules`` lists it)."""
    exact: ClassVar[bool] = False
    """True for the exact gradient (BP): the reference of alignment angles, compared with nothing."""
    paper_lr_of: ClassVar[str | None] = None
    """The rule whose Table 3 learning rate this one takes by default (the paper's rules: itself)."""
    eligibility: ClassVar[Eligibility] = Eligibility.INSTANT
    """What the third factor multiplies in time (engines that simulate another refuse the rule)."""

    @abstractmethod
    def third_factor(self, view: LayerView) -> torch.Tensor:
        """m_k = estimated delta y_k of hidden layer k, shaped [..., N, N_k] (or like the signal
        the view's ``carry`` returns)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


_REGISTRY: dict[str, type[Rule]] = {}


def register(cls: type[Rule]) -> type[Rule]:
    """Class decorator: make ``cls`` available by its ``name`` (CLI, configs, :func:`get_rule`)."""
    if cls.name in _REGISTRY:
        raise ValueError(f"rule name {cls.name!r} is registered twice ({_REGISTRY[cls.name].__name__}, {cls.__name__})")
    _REGISTRY[cls.name] = cls
    return cls


def rule_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def rule_table() -> list[tuple[str, str, str]]:
    """(name, timing, summary) of every registered rule, the earliest timing first."""
    order = list(Timing)
    rules = sorted(_REGISTRY.values(), key=lambda cls: (order.index(cls.timing), cls.name))
    return [(cls.name, cls.timing.value, cls.summary) for cls in rules]


def get_rule(name: str) -> Rule:
    """The registered rule called ``name``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown rule {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]()


def check_instant(rule: Rule, engine: str) -> Rule:
    """``rule`` when its third factor multiplies the present step's activity; a clear error for a
    rule that learns from eligibility traces, which a static engine does not keep."""
    if rule.eligibility is not Eligibility.INSTANT:
        raise ValueError(
            f"rule {rule.name!r} learns from eligibility traces over time ({rule.eligibility.value}); the {engine} "
            "engine keeps none: train a temporal network (one ending in a readout layer), e.g. --network randman-rsnn"
        )
    return rule


def check_rule(rule: object) -> Rule:
    """``rule`` when it is a rule object; a clear error for a name or anything else (engines take
    the object, so that a rule defined in a script needs no registration)."""
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, str):
        raise TypeError(f"rule {rule!r} is a name; engines take a rule object: get_rule({rule!r})")
    raise TypeError(f"rule {rule!r} is a {type(rule).__name__}, not a Rule; get one with get_rule(name)")
