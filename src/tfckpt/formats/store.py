"""A convert source (safetensors, ``.npz``) as a :class:`~tfckpt.bundle.store.Store`, so that a
:class:`~tfckpt.bundle.reader.CheckpointReader` - and every command built on one (``ls``,
``tree``, ``stats``, ``diff``) - reads these files as it reads checkpoints.

The source has checked its header when it was opened (offsets, dtypes, byte lengths); values
are read one tensor at a time when asked for. There are no per-tensor checksums (the formats
have none), no slices and no data files apart from the file itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import numpy as np

from ..bundle.entry import BundleHeader, TensorInfo
from ..bundle.store import RecordStore
from ..errors import CorruptionError, UnsupportedError
from . import SourceTensor

__all__ = ["SourceStore"]


class SourceStore(RecordStore):
    """The tensors of one convert source; closing the store closes ``stack`` (the open file)."""

    def __init__(self, path: str, tensors: list[SourceTensor], stack: ExitStack) -> None:
        self.prefix = path
        self.index_name = path
        self.header = BundleHeader()
        self.verify_checksums = False  # nothing to verify: the formats store no checksums
        self._stack = stack
        self._tensors = {tensor.name: tensor for tensor in tensors}
        self._entries = {tensor.name: TensorInfo(tensor.name, tensor.dtype, tensor.shape, size=tensor.nbytes)
                         for tensor in tensors}
        self._slice_entries: dict[bytes, TensorInfo] = {}  # these formats have no partitioned tensors

    def stored_entries(self) -> Iterator[tuple[str, TensorInfo | CorruptionError | UnsupportedError]]:
        for name in sorted(self._entries):
            yield name, self._entries[name]

    def check_stored(self, info: TensorInfo) -> None:
        pass  # sizes and bounds were checked when the source's header was read

    def check_entry(self, info: TensorInfo) -> int:
        self.read_entry(info)
        return info.size

    def read_entry(self, info: TensorInfo) -> np.ndarray:
        return self._tensors[info.name].read()

    def debug_string(self) -> bytes:
        return "".join(f"{name} ({info.dtype.name}) [{','.join(str(d) for d in info.shape)}]\n"
                       for name, info in sorted(self._entries.items())).encode("utf-8", "surrogateescape")

    def close(self) -> None:
        self._stack.close()
