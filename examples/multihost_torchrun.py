"""One TensorFlow checkpoint written by N processes on object storage, with torch.distributed.

    torchrun --nproc_per_node 4 examples/multihost_torchrun.py s3://my-bucket/run/model-100

Each rank holds its shard of a sharded array: some ranks own whole tensors, and every rank
owns a block of rows of one large embedding, saved as a partitioned variable (slices of one
tensor, as TF1's partitioned variables are). Each rank saves its part straight to the URL;
the launcher's barrier tells rank 0 that every part is complete, rank 0 merges them (data
files are moved by the store, never downloaded), and every rank returns once the merged
checkpoint is complete. TensorFlow can then restore it: tf.train.load_checkpoint(path).

Any launcher works the same way; only the barrier changes:
  JAX multi-process:  barrier=lambda: multihost_utils.sync_global_devices("tfckpt")
  Ray (actors):       barrier=a function that waits on a shared ray.util.collective barrier
  MPI (mpi4py):       barrier=MPI.COMM_WORLD.Barrier
"""

from __future__ import annotations

import sys

import numpy as np
import torch.distributed as dist

import tfckpt

ROWS_PER_RANK = 5
EMBEDDING_WIDTH = 3


def shard_of(rank: int, world_size: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """This rank's tensors, and its rows of the shared embedding (deterministic values)."""
    own = {f"layers/{rank}/kernel": np.full((2, 2), rank, np.float32),
           f"layers/{rank}/step": np.int64(100 + rank)}
    rows = np.arange(ROWS_PER_RANK * EMBEDDING_WIDTH, dtype=np.float32).reshape(ROWS_PER_RANK, EMBEDDING_WIDTH)
    return own, rows + 1000 * rank


def main(prefix: str) -> None:
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    own, rows = shard_of(rank, world_size)
    full_shape = (ROWS_PER_RANK * world_size, EMBEDDING_WIDTH)
    with tfckpt.CheckpointWriter(tfckpt.distributed.part_prefix(prefix, rank, world_size)) as writer:
        for name, value in own.items():
            writer.add(name, value)
        writer.add_slice("embedding", full_shape, f"{rank * ROWS_PER_RANK},{ROWS_PER_RANK}:-", rows)
    if rank == 0:
        try:
            tfckpt.distributed.merge_parts(prefix, world_size, barrier=dist.barrier)
        finally:
            dist.barrier()  # release the other ranks, merged or not
    else:
        dist.barrier()  # this rank's part is saved
        dist.barrier()  # rank 0 has merged
    # One write per line: the ranks share torchrun's stdout, and print() writes the text and
    # its newline separately, so lines of several ranks could run into each other.
    sys.stdout.write(f"rank {rank}: {prefix} has {len(tfckpt.load_checkpoint(prefix))} tensors\n")
    sys.stdout.flush()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
