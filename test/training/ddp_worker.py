"""Run by test_training.py under torchrun: train, then save this replica's weights."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from soundloc_training.checkpoints import trainable_state
from soundloc_training.config import load_config
from soundloc_training.models.localizer import Localizer
from soundloc_training.orchestration import run


def main() -> None:
    config = load_config(sys.argv[1])
    out = Path(config.out_dir)
    captured = {}
    original_init = Localizer.__init__

    def capture(self, *args, **kwargs):  # keep a handle on this process's model
        original_init(self, *args, **kwargs)
        captured.setdefault("model", self)
        captured.setdefault("initial", {k: v.clone() for k, v in trainable_state(self).items()})

    Localizer.__init__ = capture
    run(config)
    rank = dist.get_rank()
    out.mkdir(parents=True, exist_ok=True)
    # parameters only: BatchNorm running statistics are per-process by design (rank 0's are saved)
    parameters = {k: v.detach() for k, v in captured["model"].named_parameters() if v.requires_grad}
    torch.save(parameters, out / f"rank{rank}.pt")
    if rank == 0:
        torch.save(captured["initial"], out / "rank0_initial.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
