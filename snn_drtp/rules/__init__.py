"""Learning rules as third-factor providers, shared by every engine; one rule a file.

=============  ==============================  ========================================
rule           m_k (hidden layer k)             timing
=============  ==============================  ========================================
bp             W_{k+1}^T delta z_{k+1}          backward sweep (weight transport)
fa             F_{k+1}^T delta z_{k+1}          backward sweep
dfa            B_k^T (y_K - y*)                 once the output exists
sdfa           B_k^T sign(y_K - y*)             once the output exists
drtp           B_k^T y*                         from the label, before the forward pass
drtp-ternary   ternary(B_k)^T y*                from the label, before the forward pass
shallow        none                             never
osttp          B_k^T y*(t) x trace e_k(t)       from the label, at every step (temporal engine)
eprop          B_k^T (pi(t) - y*(t)) x ebar_k   once the readout's output exists (temporal)
eprop-sym      W_out^T (pi(t) - y*(t)) x ebar   once the readout's output exists (temporal)
=============  ==============================  ========================================

Registering a rule: write its class in a new module here with ``@register`` and import the
module below.
"""

from snn_drtp.rules import bp, dfa, drtp, eprop, fa, osttp, sdfa, shallow, ternary_drtp  # noqa: F401  (registration)
from snn_drtp.rules.base import (
    Eligibility,
    LayerView,
    Rule,
    Timing,
    check_instant,
    check_rule,
    get_rule,
    register,
    rule_names,
    rule_table,
)

__all__ = [
    "Eligibility",
    "LayerView",
    "Rule",
    "Timing",
    "check_instant",
    "check_rule",
    "get_rule",
    "register",
    "rule_names",
    "rule_table",
]
