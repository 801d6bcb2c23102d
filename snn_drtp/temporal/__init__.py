"""Temporal learning: recurrent LIF / ALIF layers (and their leaky tanh rate twin), a leaky-integrator
readout, eligibility traces computed forward in time, and the engines that train them with OSTTP,
e-prop, three-factor DRTP or BPTT."""
