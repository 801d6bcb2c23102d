"""The core every engine shares: the parameter set W_k, b_k, B_k, F_k (``params``), network specs
(``networks``), the engine protocol and registry (``engines``), measures (``metrics``), atomic
file writes (``atomic``) and the paper's numbers (``paper``)."""
