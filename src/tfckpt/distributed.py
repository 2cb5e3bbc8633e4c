"""One checkpoint written by many processes: each rank saves its part, one rank merges.

Works with any launcher (torch.distributed, JAX multi-host, Ray, MPI, plain
``multiprocessing``) as long as all ranks see the same storage (a shared disk, or a URL such
as ``s3://bucket/run/model-100``). The parts use TensorFlow's own layout for sharded saves
(``PREFIX_temp/part-RRRRR-of-WWWWW``), and the merge is ``MergeV2Checkpoints``, so the result
is exactly what a TF1 ``Saver(sharded=True)`` produces. With the launcher's barrier, one call
on every rank::

    tfckpt.distributed.save(my_tensors, "s3://bucket/run/model-100", rank, world_size,
                            barrier=torch.distributed.barrier)   # or a JAX / Ray barrier

Without one, rank 0 polls until every part has appeared::

    tfckpt.distributed.save_part(my_tensors, "ckpt/model-100", rank, world_size)   # every rank
    tfckpt.distributed.merge_parts("ckpt/model-100", world_size)                   # rank 0

Every tensor name must be saved by exactly one rank (partitioned tensors excepted: ranks may
each save slices of one tensor with ``CheckpointWriter.add_slice`` via ``part_prefix``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import storage
from .arguments import path_argument
from .bundle.merge import merge_bundles
from .bundle.naming import index_filename
from .bundle.writer import save_mapping
from .errors import InvalidArgumentError, MergeConflictError, PartsTimeoutError, TfckptError
from .storage import PathLike

__all__ = ["Barrier", "MergeConflictError", "PartsTimeoutError", "merge_parts", "part_prefix", "save", "save_part"]


Barrier = Callable[[], object]


def part_prefix(prefix: PathLike, rank: int, world_size: int) -> str:
    """Where rank ``rank`` of ``world_size`` writes its part of the checkpoint ``prefix``."""
    if not 0 <= rank < world_size:
        raise InvalidArgumentError(f"rank {rank} is outside 0..{world_size - 1}")
    return storage.join(f"{path_argument(prefix, 'prefix')}_temp", f"part-{rank:05d}-of-{world_size:05d}")


def save_part(tensors: Mapping[str, Any], prefix: PathLike, rank: int, world_size: int, *,
              sync: bool = True) -> str:
    """Save this rank's tensors as its part of ``prefix``; return the part's prefix."""
    return save_mapping(tensors, part_prefix(prefix, rank, world_size), sync=sync)


def _missing(parts: list[str], fs: storage.Filesystem) -> list[int]:
    return [rank for rank, part in enumerate(parts) if not fs.exists(index_filename(part))]


def merge_parts(prefix: PathLike, world_size: int, *, timeout: float | None = 600.0,
                poll_interval: float = 0.05, barrier: Barrier | None = None) -> str:
    """Merge the ``world_size`` parts of ``prefix`` into it; return it.

    Each part's index appears atomically, so a part that exists is complete. Without
    ``barrier``, this waits (polling) until all parts exist, and raises
    :class:`PartsTimeoutError` naming the missing ranks if ``timeout`` seconds pass first.
    With ``barrier`` (the launcher's, e.g. ``torch.distributed.barrier``; the other ranks
    call it after :func:`save_part`), it waits for that instead and then raises at once for
    any missing part. Two merges into one prefix at the same time: the second raises
    :class:`MergeConflictError`. ``prefix`` may be a URL: data files are then moved by the
    filesystem itself (no download).
    """
    prefix = path_argument(prefix, "prefix")
    fs = storage.filesystem_for(prefix)  # the parts live beside the prefix
    parts = [part_prefix(prefix, rank, world_size) for rank in range(world_size)]
    if barrier is not None:
        barrier()
        missing = _missing(parts, fs)
        if missing:
            raise PartsTimeoutError(f"parts of {prefix} from ranks {missing} do not exist after the barrier: "
                                    f"those ranks did not save")
    else:
        deadline = None if timeout is None else time.monotonic() + timeout
        while missing := _missing(parts, fs):
            if deadline is not None and time.monotonic() >= deadline:
                raise PartsTimeoutError(f"parts of {prefix} from ranks {missing} did not appear within {timeout} s")
            time.sleep(poll_interval)
    with _merge_lock(prefix, fs):
        merge_bundles(parts, prefix)
    if not fs.is_remote:  # object stores have no directories to remove
        fs.rmtree(f"{prefix}_temp")  # only temporaries can be left there
    return prefix


def save(tensors: Mapping[str, Any], prefix: PathLike, rank: int, world_size: int, *, barrier: Barrier,
         sync: bool = True) -> str:
    """Every rank's one call: save this rank's part, wait at ``barrier``, rank 0 merges, wait
    at ``barrier`` again; return ``prefix`` on every rank once the merged checkpoint is
    complete. If the merge fails, rank 0 raises its error and the others a
    :class:`TfckptError` saying so (after the second barrier, so no rank is left waiting).

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> prefix = os.path.join(tempfile.mkdtemp(), "model-1")
    >>> tfckpt.distributed.save({"w": np.ones(2)}, prefix, 0, 1, barrier=lambda: None) == prefix
    True
    """
    prefix = path_argument(prefix, "prefix")
    save_part(tensors, prefix, rank, world_size, sync=sync)
    if rank == 0:
        try:
            merge_parts(prefix, world_size, barrier=barrier)
        finally:
            barrier()  # release the other ranks, merged or not
        return prefix
    barrier()  # the parts are saved: rank 0 may merge
    barrier()  # rank 0 has merged (or failed)
    if not storage.filesystem_for(prefix).exists(index_filename(prefix)):
        raise TfckptError(f"rank 0 failed to merge {prefix}; see its error")
    return prefix


@contextlib.contextmanager
def _merge_lock(prefix: str, fs: storage.Filesystem) -> Iterator[None]:
    """``PREFIX.merging``, created exclusively for the time of one merge: of racing merges
    exactly one creates it where the storage decides creates (``conditional_create``: local
    files, S3, GCS); elsewhere (``memory://``) the create is a check then a write."""
    lock = f"{prefix}.merging"
    note = f"{socket.gethostname()} pid {os.getpid()} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode()
    try:
        fs.create_exclusive(lock, note)
    except FileExistsError:
        owner = (fs.read_bytes(lock) or b"").decode(errors="replace").strip()
        raise MergeConflictError(f"another merge into {prefix} is under way ({lock} was created by {owner}); "
                                 f"if that job died, delete {lock}") from None
    try:
        yield
    finally:
        fs.remove(lock)
