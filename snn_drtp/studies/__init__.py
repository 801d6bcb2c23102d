"""Studies built on runs: experiment grids and summaries (``experiments``), spike versus rate
validation (``validation``), the emulator fit to real recordings (``emulator_fit``), the
PyTorch-Brian2 cross-check (``crosscheck``) and the demo (``demo``)."""
