#!/usr/bin/env bash
# The device checks to run on a machine with a CUDA GPU (the device tool, when a task is lent one):
# the CUDA tests of tests/test_devices.py (skipped elsewhere), benchmarks/gpu.py at full size (its
# report written to $OUT/gpu.{json,md} where the device tool sets OUT, else benchmarks/results/), the
# temporal step times on cuda (benchmarks/temporal_speed.py), the whole suite, and the demo on cuda.
#   bash tests/gpu_check.sh            (from the repository root, with the project installed)
set -euo pipefail
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device here'; print(torch.cuda.get_device_name(0))"
python -m pytest -q -rs tests/test_devices.py
python benchmarks/gpu.py --device cuda --out "${OUT:-benchmarks/results}/gpu"
python benchmarks/temporal_speed.py --device cuda --out "${OUT:-benchmarks/results}"
python -m pytest -q -p no:cacheprovider
snn-drtp demo --device cuda --out runs/demo-cuda
