"""Reading a bundle: the index at open, each tensor's bytes only when asked for.

Opening parses the whole ``.index`` (O(index), never touching data files). Data files are
opened on first use and read with positional reads, so one reader serves many threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dtypes import DataType, DType
from ..errors import CorruptionError, NotFoundError, UnsupportedError
from ..io import ByteSource, FileSource
from ..table import TableReader
from . import objects, payload
from .entry import BIG, BundleHeader, TensorInfo
from .graph import OBJECT_GRAPH_KEY, ObjectGraph, display_path
from .naming import data_filename, index_filename
from .slices import SLICE_KEY_PREFIX, TensorSlice, encode_slice_key

if TYPE_CHECKING:
    from typing_extensions import Self

SourceOpener = Callable[[str], ByteSource]


def decode_key(key: bytes) -> str:
    # Keys are UTF-8 in practice; other bytes survive a round trip through surrogateescape.
    return key.decode("utf-8", "surrogateescape")


class BundleReader(Mapping[str, np.ndarray]):
    """A read-only mapping from tensor names to numpy arrays, read lazily.

    Parameters
    ----------
    prefix:
        The checkpoint prefix (``PREFIX.index`` must exist).
    verify_checksums:
        Check each tensor's CRC32C as it is read (default). ``False`` skips it for speed.
    opener:
        How to open ``PREFIX.index`` and the data files; local files by default.
    """

    def __init__(self, prefix: str, *, verify_checksums: bool = True,
                 opener: SourceOpener = FileSource) -> None:
        self.prefix = prefix
        self.verify_checksums = verify_checksums
        self._opener = opener
        self._shards: dict[int, ByteSource] = {}
        self._lock = threading.Lock()
        self._object_graph: ObjectGraph | None = None
        index_name = index_filename(prefix)
        try:
            index_source = opener(index_name)
        except FileNotFoundError:
            raise NotFoundError(f"no checkpoint at {prefix!r}: {index_name} does not exist") from None
        try:
            self.header, self._entries, self._slice_entries = self._read_index(TableReader(index_source))
        finally:
            index_source.close()

    def _read_index(self, table: TableReader) -> tuple[BundleHeader, dict[str, TensorInfo], dict[bytes, TensorInfo]]:
        where = table.name
        items = iter(table)
        first = next(items, None)
        if first is None or first[0] != b"":
            raise CorruptionError(f"{where}: missing bundle header (the first key must be the empty "
                                  f"key, found {None if first is None else first[0]!r})")
        header = BundleHeader.decode(first[1], where)
        entries: dict[str, TensorInfo] = {}
        slice_entries: dict[bytes, TensorInfo] = {}
        for key, value in items:
            name = decode_key(key)
            info = TensorInfo.decode(name, value, where)
            if not info.slices and info.shard_id >= max(header.num_shards, 1):
                raise CorruptionError(f"{where}: key {name!r} is in shard {info.shard_id} but the "
                                      f"header says there are {header.num_shards} shards")
            if key.startswith(SLICE_KEY_PREFIX):
                slice_entries[key] = info
            else:
                entries[name] = info
        return header, entries, slice_entries

    # -- Mapping --------------------------------------------------------------------------

    def __getitem__(self, name: str) -> np.ndarray:
        return self.get_tensor(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    # -- metadata ----------------------------------------------------------------------------

    def tensor_info(self, name: str) -> TensorInfo:
        """The index record of ``name`` (dtype, shape, shard, offset, size, checksum)."""
        try:
            return self._entries[name]
        except KeyError:
            raise NotFoundError(f"Key {name} not found in checkpoint {self.prefix}") from None

    def infos(self) -> list[TensorInfo]:
        return [self._entries[name] for name in sorted(self._entries)]

    # -- data --------------------------------------------------------------------------------

    def _shard(self, shard_id: int) -> ByteSource:
        source = self._shards.get(shard_id)
        if source is not None:
            return source
        with self._lock:
            if shard_id not in self._shards:
                path = data_filename(self.prefix, shard_id, self.header.num_shards)
                try:
                    self._shards[shard_id] = self._opener(path)
                except FileNotFoundError:
                    raise NotFoundError(f"data file {path} of checkpoint {self.prefix} does not exist") from None
            return self._shards[shard_id]

    def _read_entry(self, info: TensorInfo, shape: tuple[int, ...]) -> np.ndarray:
        source = self._shard(info.shard_id)
        where = f"{source.name}: key {info.name!r}"
        big = self.header.endianness == BIG
        if info.dtype.is_fixed_size:
            expected = info.num_elements * info.dtype.itemsize
            if info.size != expected:
                raise CorruptionError(f"{where}: invalid size in bundle entry: stored size {info.size}; "
                                      f"expected {expected} for {info.dtype.name}{list(shape)}")
            return payload.read_fixed(source, info.offset, shape, info.dtype, big,
                                      self.verify_checksums, info.crc32c, where)
        if info.dtype.name == "string":
            flat = payload.read_strings(source, info.offset, info.size, info.num_elements, big,
                                        self.verify_checksums, info.crc32c, where)
            return flat.reshape(shape)
        raise UnsupportedError(f"{where}: tensors of dtype {info.dtype.name} cannot be read by "
                               f"tfckpt (shape {list(shape)} listed; values are opaque)")

    def get_tensor(self, name: str) -> np.ndarray:
        """The value of tensor ``name`` as a new numpy array (strings as ``bytes`` objects).

        Raises :class:`NotFoundError` (a ``KeyError``) if there is no such tensor,
        :class:`ChecksumError` if its bytes fail the CRC32C check.
        """
        info = self.tensor_info(name)
        if info.slices:
            return self._assemble(info)
        return self._read_entry(info, info.shape)

    def _assemble(self, info: TensorInfo) -> np.ndarray:
        """Build a partitioned tensor from its slices, checking they tile it exactly."""
        np_dtype = info.dtype.as_numpy_dtype
        if np_dtype is None:
            raise UnsupportedError(f"{self.prefix}: key {info.name!r}: cannot assemble dtype {info.dtype.name}")
        out = np.empty(info.shape, dtype=np_dtype)
        covered = np.zeros(info.shape, dtype=np.bool_) if info.num_elements else None
        for piece in info.slices:
            key = encode_slice_key(info.name, piece)
            part = self._slice_entries.get(key)
            if part is None:
                raise CorruptionError(f"{self.prefix}: key {info.name!r}: slice {piece} is listed but "
                                      f"its data entry is missing")
            if part.dtype != info.dtype or part.shape != piece.shape(info.shape):
                raise CorruptionError(f"{self.prefix}: key {info.name!r}: slice {piece} is stored as "
                                      f"{part.dtype.name}{list(part.shape)}, expected "
                                      f"{info.dtype.name}{list(piece.shape(info.shape))}")
            region = piece.index(info.shape)
            if covered is not None:
                if covered[region].any():
                    raise CorruptionError(f"{self.prefix}: key {info.name!r}: slice {piece} overlaps another slice")
                covered[region] = True
            out[region] = self._read_entry(part, part.shape)
        if covered is not None and not covered.all():
            missing = np.argwhere(~covered)[0].tolist()
            raise CorruptionError(f"{self.prefix}: key {info.name!r}: slices do not cover the tensor "
                                  f"(element {missing} is in no slice)")
        return out

    # -- TensorFlow CheckpointReader methods -------------------------------------------------

    def has_tensor(self, name: str) -> bool:
        return name in self._entries

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        return {name: list(info.shape) for name, info in self._entries.items()}

    def get_variable_to_dtype_map(self) -> dict[str, DType]:
        return {name: info.dtype for name, info in self._entries.items()}

    def debug_string(self) -> bytes:
        """TF's ``CheckpointReader.debug_string()``: ``key (DT_NAME) [d0,d1]`` per stored entry.

        Like TensorFlow, this lists raw index keys in byte order, including the keys of slice
        pieces, and leaves out the data-less full entries of partitioned tensors.
        """
        stored = [(name.encode("utf-8", "surrogateescape"), info) for name, info in self._entries.items()
                  if not info.slices]
        stored += list(self._slice_entries.items())
        lines = [b"%s (%s) [%s]\n" % (key, DataType(info.dtype.as_datatype_enum).name.encode(),
                                      ",".join(str(d) for d in info.shape).encode())
                 for key, info in sorted(stored, key=lambda pair: pair[0])]
        return b"".join(lines)

    # -- TF2 object-based checkpoints ---------------------------------------------------

    @property
    def object_graph(self) -> ObjectGraph | None:
        """The decoded ``_CHECKPOINTABLE_OBJECT_GRAPH``, or ``None`` for name-based checkpoints."""
        if OBJECT_GRAPH_KEY not in self._entries:
            return None
        if self._object_graph is None:
            value = self.get_tensor(OBJECT_GRAPH_KEY)
            if value.shape != () or not isinstance(value.item(), bytes):
                raise CorruptionError(f"{self.prefix}: {OBJECT_GRAPH_KEY} must be a scalar string, "
                                      f"found shape {list(value.shape)}")
            self._object_graph = ObjectGraph.decode(value.item(), f"{self.prefix}: {OBJECT_GRAPH_KEY}")
        return self._object_graph

    def object_tensors(self) -> dict[str, objects.ObjectTensor]:
        """Each key the object graph names: its object path, attribute and TF1 ``full_name``."""
        graph = self.object_graph
        return {} if graph is None else objects.object_tensors(graph, self._entries)

    def object_paths(self) -> dict[str, str]:
        """``{checkpoint key: object path}``, e.g. ``{"net/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE":
        "net/dense/kernel"}``; local names appear unescaped."""
        return {key: display_path(info.path) for key, info in self.object_tensors().items()}

    def slot_variables(self) -> list[objects.SlotVariable]:
        """Optimizer slots recorded in the graph, each with the variable it belongs to."""
        graph = self.object_graph
        return [] if graph is None else objects.slot_variables(graph)

    def nested(self, *, optimizer: bool = True, slots: bool = True, save_counter: bool = True) -> dict[str, Any]:
        """The checkpoint as nested dicts and lists of arrays, following the object graph.

        ``optimizer=False`` leaves out optimizer state (and its slots), ``slots=False`` the
        slot variables only, ``save_counter=False`` the checkpoint's counter. A name-based
        (TF1) checkpoint is nested by splitting its keys on ``/``.

        Examples
        --------
        >>> import tfckpt, numpy as np, tempfile, os
        >>> ckpt = tfckpt.Checkpoint(net={"dense": {"kernel": np.ones((2, 2)), "bias": np.zeros(2)}})
        >>> path = ckpt.save(os.path.join(tempfile.mkdtemp(), "ckpt"))
        >>> tree = tfckpt.load_checkpoint(path).nested(save_counter=False)
        >>> sorted(tree["net"]["dense"])
        ['bias', 'kernel']
        """
        graph = self.object_graph
        if graph is not None:
            return objects.nested(graph, self.get_tensor, optimizer=optimizer, slots=slots,
                                  save_counter=save_counter)
        tree: dict[str, Any] = {}
        for name in self:
            parts = name.split("/")
            node = tree
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    break
                node = child
            else:
                node[parts[-1]] = self.get_tensor(name)
        return tree

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            for source in self._shards.values():
                source.close()
            self._shards.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tfckpt.CheckpointReader {os.fspath(self.prefix)!r}: {len(self)} tensors>"


__all__ = ["BundleReader", "TensorInfo", "TensorSlice"]
