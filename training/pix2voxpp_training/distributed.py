"""Process-group plumbing: one process on the CPU or a GPU, or many under ``torchrun``.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; with ``WORLD_SIZE > 1`` a process
group is started (NCCL on GPUs, gloo on the CPU) and each process takes the GPU of its local rank.
Only rank 0 writes files, logs and progress bars (:attr:`DistContext.is_main`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from pix2voxpp_ros.core.inference import resolve_device


@dataclass(frozen=True)
class DistContext:
    """Where this process runs and who it is in the job.

    :ivar rank: global rank (0 without ``torchrun``).
    :ivar local_rank: rank on this node; selects the GPU.
    :ivar world_size: number of processes.
    :ivar device: this process's device.
    :ivar owns_group: :func:`setup` started the process group (and :func:`cleanup` ends it).
    """

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether a process group is running."""
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f'environment variable {name}={value!r} is not an integer') from exc


def setup(device: str = 'auto') -> DistContext:
    """Pick the device and, under ``torchrun``, join the process group.

    :param device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; under ``torchrun`` a CUDA device is
        replaced by the GPU of the local rank.
    :raises ValueError: an unknown device or CUDA requested where there is none.

    A process group that is already running (started by the caller) is joined as it is.
    """
    world_size = _env_int('WORLD_SIZE', 1)
    rank = _env_int('RANK', 0)
    local_rank = _env_int('LOCAL_RANK', 0)
    resolved = resolve_device(device)
    owns_group = False
    if world_size > 1:
        if resolved.type == 'cuda':
            resolved = torch.device('cuda', local_rank)
            torch.cuda.set_device(resolved)
        if not dist.is_initialized():
            backend = 'nccl' if resolved.type == 'cuda' else 'gloo'
            init_args: dict[str, Any] = {'backend': backend}
            if resolved.type == 'cuda':
                init_args['device_id'] = resolved
            dist.init_process_group(**init_args)
            owns_group = True
        rank, world_size = dist.get_rank(), dist.get_world_size()
    elif resolved.type == 'cuda' and resolved.index is not None:
        torch.cuda.set_device(resolved)
    return DistContext(rank, local_rank, world_size, resolved, owns_group)


def cleanup(context: DistContext) -> None:
    """Leave the process group if :func:`setup` started it; a caller's group stays up.

    (Re-creating a group in the same processes is unreliable with torchrun's store, so code that
    trains several stages in one job starts the group itself, once.)
    """
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistContext) -> None:
    """Wait for all ranks (a no-op in a single process)."""
    if context.distributed:
        dist.barrier()


def gather_objects(context: DistContext, value: Any) -> list[Any]:
    """Collect one picklable value per rank on every rank, in rank order."""
    if not context.distributed:
        return [value]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_object(context: DistContext, value: Any) -> Any:
    """Return rank 0's ``value`` on every rank."""
    if not context.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(context: DistContext, values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (returns it unchanged in a single process)."""
    if context.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_buffers(context: DistContext, module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts buffers at the start of each forward pass, so after the last training step of
    an epoch each rank holds its own statistics; validation and checkpoints use rank 0's.
    """
    if not context.distributed:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)
