"""One checkpoint written by many processes: each rank saves its part, one rank merges.

Works with any launcher (torch.distributed, JAX multi-host, Ray, MPI, plain
``multiprocessing``) as long as all ranks see the same storage. The parts use TensorFlow's own
layout for sharded saves (``PREFIX_temp/part-RRRRR-of-WWWWW``), and the merge is
``MergeV2Checkpoints``, so the result is exactly what a TF1 ``Saver(sharded=True)`` produces::

    # on every rank
    tfckpt.distributed.save_part(my_tensors, "ckpt/model-100", rank, world_size)
    # on rank 0, once (it waits for the other parts to appear)
    tfckpt.distributed.merge_parts("ckpt/model-100", world_size)

Every tensor name must be saved by exactly one rank (partitioned tensors excepted: ranks may
each save slices of one tensor with ``CheckpointWriter.add_slice`` via ``part_prefix``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from typing import Any

from . import storage
from .bundle.merge import merge_bundles
from .bundle.naming import index_filename
from .bundle.writer import save_mapping
from .errors import InvalidArgumentError, TfckptError
from .storage import PathLike

__all__ = ["PartsTimeoutError", "merge_parts", "part_prefix", "save_part"]


class PartsTimeoutError(TfckptError, TimeoutError):
    """Not every rank's part appeared before the timeout."""


def part_prefix(prefix: PathLike, rank: int, world_size: int) -> str:
    """Where rank ``rank`` of ``world_size`` writes its part of the checkpoint ``prefix``."""
    if not 0 <= rank < world_size:
        raise InvalidArgumentError(f"rank {rank} is outside 0..{world_size - 1}")
    return storage.join(f"{os.fspath(prefix)}_temp", f"part-{rank:05d}-of-{world_size:05d}")


def save_part(tensors: Mapping[str, Any], prefix: PathLike, rank: int, world_size: int, *,
              sync: bool = True) -> str:
    """Save this rank's tensors as its part of ``prefix``; return the part's prefix."""
    return save_mapping(tensors, part_prefix(prefix, rank, world_size), sync=sync)


def merge_parts(prefix: PathLike, world_size: int, *, timeout: float | None = 600.0,
                poll_interval: float = 0.05) -> str:
    """Wait until all ``world_size`` parts exist, merge them into ``prefix``; return it.

    Each part's index appears atomically, so a part that exists is complete. ``prefix`` may
    be a URL: data files are then moved by the filesystem itself (no download). Raises
    :class:`PartsTimeoutError` naming the missing ranks if ``timeout`` seconds pass first.
    """
    prefix = os.fspath(prefix)
    parts = [part_prefix(prefix, rank, world_size) for rank in range(world_size)]
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        missing = [rank for rank, part in enumerate(parts) if not storage.exists(index_filename(part))]
        if not missing:
            break
        if deadline is not None and time.monotonic() >= deadline:
            raise PartsTimeoutError(f"parts of {prefix} from ranks {missing} did not appear within {timeout} s")
        time.sleep(poll_interval)
    merge_bundles(parts, prefix)
    if not storage.is_url(prefix):  # object stores have no directories to remove
        shutil.rmtree(f"{prefix}_temp", ignore_errors=True)  # only temporaries can be left there
    return prefix
