"""Hidden-layer activity of the trained seed-0 spiking runs of this experiment on the 200 test
words: the mean spike probability per step and how many of the 256 units fire on more than half
of the steps or never (the split into saturated and silent units that label-only signals cause).

    python experiments/temporal-emulated-shd/hidden_activity.py     # writes hidden_activity.md here
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from snn_drtp.runs.config import TrainConfig
from snn_drtp.runs.training import load_data, load_trained

HERE = Path(__file__).parent


def hidden_spikes(engine: Any, x: Any) -> torch.Tensor:
    """z(t) of hidden layer 1, [T, N, units]."""
    spikes: list[torch.Tensor] = []
    engine.simulate(x, lambda k, z, _v: spikes.append(z) if k == 1 else None)
    return torch.stack(spikes)


def main() -> None:
    torch.set_num_threads(1)
    lines = [
        "| network | rule | mean spike probability | units firing > 50 % of steps | silent units |",
        "|---|---|---|---|---|",
    ]
    for net in ("shd-rsnn", "shd-ffsnn"):
        for rule in ("bp", "eprop", "osttp", "drtp"):
            (run,) = sorted((HERE / "runs").glob(f"spiking-{net}-{rule}-T100-seed0-*"))
            engine = load_trained(run)
            saved = json.loads((run / "config.json").read_text())
            config = TrainConfig.from_dict({k: v for k, v in saved.items() if k != "network_spec"})
            _, test = load_data(config, engine, progress=False)
            z = hidden_spikes(engine, test.inputs(slice(None)))
            rate = z.mean((0, 1))
            lines.append(
                f"| {net} | {rule} | {float(z.mean()):.3f} | {int((rate > 0.5).sum())} of {rate.numel()} | "
                f"{int((rate == 0).sum())} |"
            )
            print(lines[-1], flush=True)
    (HERE / "hidden_activity.md").write_text(
        "Hidden activity of the seed-0 spiking runs after 20 epochs on the 200 test words\n"
        "(`python experiments/temporal-emulated-shd/hidden_activity.py`):\n\n" + "\n".join(lines) + "\n"
    )


if __name__ == "__main__":
    main()
