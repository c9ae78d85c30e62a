"""Run by torchrun from test_distributed.py: ``train OUT_DIR [--fail-rank R]`` trains through the CLI;
``params OUT_DIR DATA`` trains a Trainer and saves each rank's parameters to OUT_DIR/rank{R}.pt;
``stop OUT_DIR DATA`` does the same, but rank 1 alone asks to stop once past step 20 (as Ctrl+C reaching one rank)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    mode, out, rest = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    rank = int(os.environ["RANK"])
    if mode == "train":  # the CLI exactly as a user runs it; --fail-rank gives that rank a path that is not there
        from engine.cli import main as cli_main

        argv = list(rest)
        if "--fail-rank" in argv:
            i = argv.index("--fail-rank")
            bad = int(argv[i + 1])
            del argv[i : i + 2]
            if rank == bad:
                argv[argv.index("--data") + 1] = str(out / "missing.npz")
        return cli_main(argv)
    import torch

    from engine.config import ModelConfig, TrainConfig
    from engine.data import load_dataset
    from engine.distributed import Distributed
    from engine.messages import MetricsChunk
    from engine.trainer import Trainer

    dist = Distributed.from_environment()
    ds = load_dataset(rest[0])
    run = Trainer(
        ds,
        ModelConfig(image_shape=ds.image_shape, hidden=32),
        TrainConfig(epochs=2 if mode == "params" else 8, batch_size=64, iwae_k=2, seed=3),
        dist=dist,
    )
    for msg in run.run():
        if mode == "stop" and rank == 1 and isinstance(msg, MetricsChunk) and msg.step >= 20:
            run.stop()
    torch.save(
        {
            "step": run.step,
            "state": run.state.value,
            "params": {k: v.clone() for k, v in run.model.state_dict().items()},
        },
        out / f"rank{rank}.pt",
    )
    del run
    dist.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
