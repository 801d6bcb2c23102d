"""snn-drtp: spiking and rate-coded networks that learn with direct random target projection."""

__version__ = "0.1.0"
