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
=============  ==============================  ========================================

Registering a rule: write its class in a new module here with ``@register`` and import the
module below.
"""

from snn_drtp.rules import bp, dfa, drtp, fa, sdfa, shallow, ternary_drtp  # noqa: F401  (registration)
from snn_drtp.rules.base import LayerView, Rule, Timing, check_rule, get_rule, register, rule_names, rule_table

__all__ = ["LayerView", "Rule", "Timing", "check_rule", "get_rule", "register", "rule_names", "rule_table"]
