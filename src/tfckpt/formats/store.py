"""A convert source (safetensors, ``.npz``) as a :class:`~tfckpt.bundle.store.Store`, so that a
:class:`~tfckpt.bundle.reader.CheckpointReader` - and every command built on one (``ls``,
``tree``, ``stats``, ``diff``) - reads these files as it reads checkpoints.

The source has checked its header when it was opened (offsets, dtypes, byte lengths); values
are read one tensor at a time when asked for. There are no per-tensor checksums (the formats
have none), no slices and no data files apart from the file itself.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import ExitStack

import numpy as np

from ..bundle.entry import BundleHeader, TensorInfo
from ..bundle.slices import TensorSlice
from ..bundle.store import Listing
from ..dtypes import DType
from ..errors import CorruptionError, TfckptError, UnsupportedError
from . import SourceTensor

__all__ = ["SourceStore"]


class SourceStore:
    """The tensors of one convert source; closing the store closes ``stack`` (the open file)."""

    def __init__(self, path: str, tensors: list[SourceTensor], stack: ExitStack) -> None:
        self.prefix = path
        self.index_name = path
        self.header = BundleHeader()
        self.verify_checksums = False  # nothing to verify: the formats store no checksums
        self._stack = stack
        self._tensors = {tensor.name: tensor for tensor in tensors}
        self._infos = {tensor.name: TensorInfo(tensor.name, tensor.dtype, tensor.shape, size=tensor.nbytes)
                       for tensor in tensors}

    def names(self) -> Collection[str]:
        return self._infos.keys()

    def has(self, name: str) -> bool:
        return name in self._infos

    def info(self, name: str) -> TensorInfo | None:
        return self._infos.get(name)

    def slice_info(self, key: bytes) -> TensorInfo | None:
        return None  # these formats have no partitioned tensors

    def peek(self, name: str) -> tuple[DType, tuple[int, ...]]:
        info = self._infos[name]
        return info.dtype, info.shape

    def peek_all(self) -> Listing:
        kinds = [(info.dtype, info.shape) for info in self._infos.values()]
        return Listing(list(self._infos), kinds, list(range(len(kinds))))

    def entries(self) -> list[tuple[bytes, TensorInfo]]:
        return sorted(((name.encode("utf-8", "surrogateescape"), info) for name, info in self._infos.items()),
                      key=lambda pair: pair[0])

    def stored_entries(self) -> Iterator[tuple[str, TensorInfo | CorruptionError | UnsupportedError]]:
        for name in sorted(self._infos):
            yield name, self._infos[name]

    def check_stored(self, info: TensorInfo) -> None:
        pass  # sizes and bounds were checked when the source's header was read

    def check_entry(self, info: TensorInfo) -> int:
        self.read_entry(info)
        return info.size

    def check_many(self, infos: Iterable[TensorInfo]) -> Iterator[tuple[TensorInfo, int | TfckptError]]:
        for info in infos:
            try:
                yield info, self.check_entry(info)
            except TfckptError as exc:
                yield info, exc

    def read_entry(self, info: TensorInfo) -> np.ndarray:
        return self._tensors[info.name].read()

    def quick_sizes(self, names: Sequence[str]) -> list[int]:
        return [-1] * len(names)  # every read goes through read_entry

    def read_quick(self, names: Sequence[str]) -> list[np.ndarray]:
        raise ValueError("read_quick: names quick_sizes did not accept")

    def read_many(self, infos: Iterable[TensorInfo], max_workers: int | None = None
                  ) -> Iterator[tuple[TensorInfo, np.ndarray]]:
        for info in infos:
            yield info, self.read_entry(info)

    def read_region(self, info: TensorInfo, piece: TensorSlice) -> np.ndarray:
        whole = self.read_entry(info)
        return whole if piece.covers(info.shape) else whole[piece.index(info.shape)].copy()

    def data_files(self) -> list[tuple[int, str, int | None]]:
        return []  # the values live in the file itself

    def debug_string(self) -> bytes:
        return "".join(f"{name} ({info.dtype.name}) [{','.join(str(d) for d in info.shape)}]\n"
                       for name, info in sorted(self._infos.items())).encode("utf-8", "surrogateescape")

    def close(self) -> None:
        self._stack.close()
