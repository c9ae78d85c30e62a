"""Data-parallel training under torchrun: one process per device; torch.distributed does every exchange.

    torchrun --standalone --nproc_per_node N main.py train ...

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address; ``from_environment`` reads them (None in
a single process). The process group uses NCCL on CUDA and gloo on the CPU, one device per local rank.

What a rank does (engine/trainer.py asks this module):
- **batches**: every rank draws the same seeded permutation each epoch and takes its contiguous part of every
  global batch (``rows``), so the ranks together see exactly the single-process batches; the training setting
  ``batch_size`` is the global batch. The reparameterisation noise is drawn for the whole global batch on every
  rank and sliced the same way, so a run with N ranks follows a single process with the same global batch up to
  the order of floating-point sums.
- **gradients**: DistributedDataParallel averages them across ranks during backward; since every rank's loss is
  its part's mean, the average is the global batch's mean gradient.
- **metrics**: each step's (ELBO, recon, KL) row is averaged across ranks on the device (no host sync); the test
  set is split across ranks at the end of each epoch and the sums are added up (``sum_``, ``gather_rows``), so
  every rank holds the whole test set's figures.
- **stopping**: a stop on any rank (Ctrl+C reaches every rank under torchrun) is agreed on every ``AGREE_EVERY``
  steps by one tiny all-reduce, so all ranks stop after the same step and none waits for a partner forever.
- **files**: only rank 0 prints, writes the checkpoint and the metrics CSV (engine/cli.py)."""

from __future__ import annotations

import gc
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .launch import DistributedError, JobPlace, job_place

AGREE_EVERY = 32  # steps between two agreements on stopping (one 1-element all-reduce and one host read)


@dataclass(frozen=True)
class Distributed(JobPlace):
    """This process's part in a data-parallel job (its place, engine/launch.py) and every exchange it makes."""

    @staticmethod
    def from_environment(env: dict | None = None) -> "Distributed | None":
        """The torchrun-launched process's place in the job; None when not launched as several processes."""
        place = job_place(env)
        return None if place is None else Distributed(place.rank, place.world, place.local_rank, place.local_world)

    # -- set-up -----------------------------------------------------------------------------------------------
    def device(self, requested: str) -> torch.device:
        """One device per local rank: cuda:LOCAL_RANK when CUDA is asked for or available, else the CPU."""
        if requested in ("auto", "cuda") and torch.cuda.is_available():
            if self.local_rank >= torch.cuda.device_count():
                raise DistributedError(
                    f"local rank {self.local_rank} has no GPU: this machine has "
                    f"{torch.cuda.device_count()}; start fewer processes per node"
                )
            return torch.device("cuda", self.local_rank)
        if requested.startswith("cuda:"):
            raise DistributedError(
                f"device {requested!r}: under torchrun each process uses the GPU of its local "
                f"rank; pass --device cuda (or auto)"
            )
        if requested == "cuda":
            raise DistributedError("device 'cuda' asked for, but this torch build sees no CUDA GPU")
        if requested == "mps":
            raise DistributedError("distributed training runs on CUDA GPUs or CPUs, not on Apple MPS")
        return torch.device("cpu")

    def cpu_threads(self) -> int:
        """The most CPU threads one rank's steps may use: this machine's cores shared by its ranks."""
        from .threads import usable_cores

        return max(1, usable_cores() // self.local_world)

    def start(self, device: torch.device) -> None:
        """Join the process group (NCCL for CUDA, gloo for the CPU)."""
        if dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", **({"device_id": device} if device.type == "cuda" else {})
        )

    def close(self, together: bool = True) -> None:
        """Leave the process group; the training run using it must be dropped first. ``together``: after the ranks meet at a barrier (every rank ended the same
        way), so none tears down its connections while another still uses them; else at once (this rank failed
        on its own, and torchrun ends the others)."""
        if dist.is_initialized():
            # a DistributedDataParallel wrapper no longer referenced may still sit in a reference cycle holding
            # the group; freed after destroy_process_group (at interpreter exit) it aborts the process
            gc.collect()
            if together:
                dist.barrier()
            dist.destroy_process_group()

    def check_batch(self, batch_size: int) -> None:
        if batch_size < self.world:
            raise DistributedError(
                f"batch size {batch_size} is smaller than the {self.world} processes sharing "
                f"each batch; use a batch size of at least {self.world}"
            )

    # -- data and model -------------------------------------------------------------------------------------
    def rows(self, n: int) -> slice:
        """This rank's contiguous part of a batch of ``n`` rows (sizes differ by at most one)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def wrap(self, model: torch.nn.Module) -> "_DataParallelForward":
        from torch.nn.parallel import DistributedDataParallel

        ids = [model_device(model).index] if model_device(model).type == "cuda" else None
        return _DataParallelForward(DistributedDataParallel(model, device_ids=ids), model)

    # -- exchanges --------------------------------------------------------------------------------------------
    def average_(self, t: torch.Tensor) -> torch.Tensor:
        """In place: the mean of ``t`` over ranks."""
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.div_(self.world)

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """In place: the sum of ``t`` over ranks."""
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def gather_rows(self, part: torch.Tensor, n: int) -> torch.Tensor:
        """The (n, ...) tensor whose ``rows(n)`` part each rank holds, on every rank."""
        full = torch.zeros((n, *part.shape[1:]), dtype=part.dtype, device=part.device)
        full[self.rows(n)] = part
        return self.sum_(full)

    def any_(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when ``flag`` is true on any (a host read: call it every few steps, not each)."""
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())  # SYNC: one per AGREE_EVERY steps


class _DataParallelForward:
    """What engine.objectives.elbo_terms needs of a model: calling it (through DDP, which hooks the gradient
    averaging into backward) and its likelihood."""

    def __init__(self, ddp, model: torch.nn.Module):
        self._ddp, self.likelihood = ddp, model.likelihood

    def __call__(self, x, eps=None, y=None):  # y: a conditional model's labels (VAE.forward)
        return self._ddp(x, eps, y)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
