"""Which process of which job this is, read from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE). Imports no torch, so the CLI can refuse bad flags at once, before torch loads;
engine/distributed.py builds the process group from a ``JobPlace``."""

from __future__ import annotations

import os
from dataclasses import dataclass


class DistributedError(RuntimeError):
    """The environment asks for distributed training that cannot be set up; the message says why."""


@dataclass(frozen=True)
class JobPlace:
    rank: int
    world: int
    local_rank: int
    local_world: int = 1  # processes on this machine: they share its cores

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def job_place(env: dict | None = None) -> JobPlace | None:
    """The torchrun-launched process's place in the job; None when not launched as several processes."""
    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", rank))
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
    except ValueError as e:
        raise DistributedError(f"torchrun's environment is not numeric ({e})") from None
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise DistributedError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return JobPlace(rank, world, local, max(1, local_world))
