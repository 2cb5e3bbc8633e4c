"""Reading a bundle: the index at open, each tensor's bytes only when asked for.

Opening parses the whole ``.index`` (O(index), never touching data files). Data files are
opened on first use and read with positional reads, so one reader serves many threads.
"""

from __future__ import annotations

import difflib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dtypes import BY_ENUM, DataType, DType
from ..errors import (
    CheckpointReplacedError,
    CorruptionError,
    InvalidArgumentError,
    NotFoundError,
    TfckptError,
    UnsupportedError,
)
from ..storage import ByteSource, FileIdentity, FileSource, path_identity
from ..table import TableReader
from . import objects, payload, validate
from .entry import BIG, BundleHeader, TensorInfo, peek_dtype_shape
from .graph import OBJECT_GRAPH_KEY, ObjectGraph, display_path
from .naming import data_filename, index_filename
from .slices import SLICE_KEY_PREFIX, TensorSlice, describe_key, encode_slice_key

if TYPE_CHECKING:
    from typing_extensions import Self


__all__ = ["BundleReader", "SliceView", "SourceOpener", "decode_key"]

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
    mmap:
        Return aligned little-endian fixed-size tensors of local files as read-only views of
        the memory-mapped data file (zero copy; the checksum, if verified, is computed on the
        mapped bytes). Other tensors are read as usual.
    """

    def __init__(self, prefix: str, *, verify_checksums: bool = True,
                 opener: SourceOpener = FileSource, mmap: bool = False) -> None:
        self.prefix = prefix
        self.verify_checksums = verify_checksums
        self.mmap = mmap
        self._opener = opener
        self._shards: dict[int, ByteSource] = {}
        self._lock = threading.Lock()
        self._object_graph: ObjectGraph | None = None
        index_name = index_filename(prefix)
        try:
            index_source = opener(index_name)
        except FileNotFoundError:
            raise NotFoundError(f"no checkpoint at {prefix!r}: {index_name} does not exist") from None
        # Entries are kept as raw bytes and decoded when first needed (or all at once, in one
        # protobuf parse, by the listing methods): opening stays cheap for huge indexes.
        self._raw: dict[str, bytes] = {}
        self._slice_raw: dict[bytes, bytes] = {}
        self._entries: dict[str, TensorInfo] = {}
        self._slice_entries: dict[bytes, TensorInfo] = {}
        self._index_name = index_name
        # Local files: the index's identity, so that a data file opened later can be checked
        # against the index that was parsed (see tfckpt.bundle.publish for why that suffices).
        identity = getattr(index_source, "identity", None)
        self._index_identity: FileIdentity | None = identity() if identity is not None else None
        try:
            self.header = self._read_index(TableReader(index_source))
        finally:
            index_source.close()

    def _read_index(self, table: TableReader) -> BundleHeader:
        where = table.name
        items = iter(table)
        first = next(items, None)
        if first is None or first[0] != b"":
            raise CorruptionError(f"{where}: missing bundle header (the first key must be the empty "
                                  f"key, found {None if first is None else first[0]!r})")
        header = BundleHeader.decode(first[1], where)
        raw, slice_raw = self._raw, self._slice_raw
        for key, value in items:
            if key[:1] == SLICE_KEY_PREFIX:
                slice_raw[key] = value
            else:
                raw[key.decode("utf-8", "surrogateescape")] = value
        return header

    def _decoded(self, name: str, info: TensorInfo) -> TensorInfo:
        if not info.slices and info.shard_id >= max(self.header.num_shards, 1):
            raise CorruptionError(f"{self._index_name}: key {describe_key(name)!r} is in shard {info.shard_id} but the "
                                  f"header says there are {self.header.num_shards} shards")
        return info

    def _decode_all(self) -> None:
        """Decode every entry not decoded yet, with one protobuf parse."""
        missing = [(name, value) for name, value in self._raw.items() if name not in self._entries]
        if missing:
            for info in TensorInfo.decode_many(missing, self._index_name):
                self._entries[info.name] = self._decoded(info.name, info)
        missing_slices = [(decode_key(key), value) for key, value in self._slice_raw.items()
                          if key not in self._slice_entries]
        if missing_slices:
            for info in TensorInfo.decode_many(missing_slices, self._index_name):
                self._slice_entries[info.name.encode("utf-8", "surrogateescape")] = self._decoded(info.name, info)

    def _slice_info(self, key: bytes) -> TensorInfo | None:
        info = self._slice_entries.get(key)
        if info is None and key in self._slice_raw:
            name = decode_key(key)
            info = self._decoded(name, TensorInfo.decode(name, self._slice_raw[key], self._index_name))
            self._slice_entries[key] = info
        return info

    # -- Mapping --------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        return self.get_tensor(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._raw))

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    # -- metadata ----------------------------------------------------------------------------

    def tensor_info(self, name: str) -> TensorInfo:
        """The index record of ``name`` (dtype, shape, shard, offset, size, checksum)."""
        info = self._entries.get(name)
        if info is None:
            value = self._raw.get(name)
            if value is None:
                raise NotFoundError(f"Key {name} not found in checkpoint {self.prefix}{self._suggest(name)}")
            info = self._entries[name] = self._decoded(name, TensorInfo.decode(name, value, self._index_name))
        return info

    def _suggest(self, name: str) -> str:
        """``; did you mean ...?`` with the keys (or object paths) closest to ``name``."""
        if not isinstance(name, str):
            return ""
        try:
            paths = self.object_paths()
        except TfckptError:
            paths = {}
        candidates = {**{key: key for key in self._raw}, **{path: key for key, path in paths.items()}}
        close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
        keys = list(dict.fromkeys(candidates[c] for c in close))
        return f"; did you mean {' or '.join(repr(k) for k in keys)}?" if keys else ""

    def key_for(self, name: str) -> str:
        """``name`` if it is a key, else the one key whose TF2 object path is ``name`` (e.g.
        ``save_counter`` for ``save_counter/.ATTRIBUTES/VARIABLE_VALUE``); raises
        :class:`NotFoundError`, with suggestions, when there is none or it is ambiguous."""
        if name in self._raw:
            return name
        matches = [key for key, path in self.object_paths().items() if path == name and key in self._raw]
        values = [key for key in matches if key.endswith("/.ATTRIBUTES/VARIABLE_VALUE")]
        if len(matches) == 1 or len(values) == 1:
            return matches[0] if len(matches) == 1 else values[0]
        if len(matches) > 1:
            raise NotFoundError(f"{name!r} is the object path of several keys in {self.prefix}: {sorted(matches)}")
        raise NotFoundError(f"Key {name} not found in checkpoint {self.prefix}{self._suggest(name)}")

    def raw_entries(self) -> list[tuple[bytes, TensorInfo]]:
        """Every index entry but the header, slice pieces included, in key order."""
        self._decode_all()
        stored = [(name.encode("utf-8", "surrogateescape"), info) for name, info in self._entries.items()]
        stored += list(self._slice_entries.items())
        return sorted(stored, key=lambda pair: pair[0])

    def infos(self) -> list[TensorInfo]:
        self._decode_all()
        return [self._entries[name] for name in sorted(self._entries)]

    # -- checking (what tfckpt.verify builds on) -------------------------------------------

    def stored_entries(self) -> Iterator[tuple[str, TensorInfo | CorruptionError | UnsupportedError]]:
        """Every index entry but the header, slice pieces included, in key order, each decoded
        on its own: a damaged entry comes back as the error it raises, the others as records."""
        keys = sorted([*((n.encode("utf-8", "surrogateescape"), n, False) for n in self._raw),
                       *((k, decode_key(k), True) for k in self._slice_raw)])
        for _, name, is_slice in keys:
            try:
                if is_slice:
                    info = self._slice_info(name.encode("utf-8", "surrogateescape"))
                    assert info is not None
                else:
                    info = self.tensor_info(name)
            except (CorruptionError, UnsupportedError) as exc:
                yield name, exc
                continue
            yield name, info

    def check_entry(self, info: TensorInfo) -> int:
        """Check one stored entry completely (size rule, bytes present, checksum, layout),
        reading it in bounded chunks; return the bytes checked. Raises the first problem."""
        self._check_stored(info)
        source = self._shard(info.shard_id)
        where = f"{source.name}: key {describe_key(info.name)!r}"
        if info.dtype.is_fixed_size:
            payload.check_crc(source, info.offset, info.size, info.masked_crc32c, where)
        elif info.dtype.name == "string":
            payload.read_strings(source, info.offset, info.size, info.num_elements,
                                 self.header.endianness == BIG, True, info.masked_crc32c, where)
        return info.size

    def data_files(self) -> list[tuple[int, str, int | None]]:
        """``(shard, path, size or None if the file is missing)`` of each data file the header
        names."""
        out: list[tuple[int, str, int | None]] = []
        for shard in range(self.header.num_shards):
            path = data_filename(self.prefix, shard, self.header.num_shards)
            try:
                out.append((shard, path, self._shard(shard).size()))
            except NotFoundError:
                out.append((shard, path, None))
        return out

    # -- data --------------------------------------------------------------------------------

    def _shard(self, shard_id: int) -> ByteSource:
        source = self._shards.get(shard_id)
        if source is not None:
            return source
        with self._lock:
            if shard_id not in self._shards:
                path = data_filename(self.prefix, shard_id, self.header.num_shards)
                try:
                    opened = self._opener(path)
                except FileNotFoundError:
                    self._check_not_replaced()
                    raise NotFoundError(f"data file {path} of checkpoint {self.prefix} does not exist") from None
                try:
                    self._check_not_replaced()
                except CheckpointReplacedError:
                    opened.close()
                    raise
                self._shards[shard_id] = opened
            return self._shards[shard_id]

    def _check_not_replaced(self) -> None:
        """Raise if ``PREFIX.index`` is no longer the file this reader parsed: a data file
        opened now may then belong to a newer save."""
        if self._index_identity is not None and path_identity(self._index_name) != self._index_identity:
            raise CheckpointReplacedError(f"checkpoint {self.prefix} was replaced by a newer save while this "
                                          f"reader was open; open it again")

    def _read_entry(self, info: TensorInfo, shape: tuple[int, ...]) -> np.ndarray:
        source = self._shard(info.shard_id)
        where = f"{source.name}: key {describe_key(info.name)!r}"
        big = self.header.endianness == BIG
        if info.dtype.is_fixed_size or info.dtype.name == "string":
            self._check_stored(info)
        if info.dtype.is_fixed_size:
            return payload.read_fixed(source, info.offset, shape, info.dtype, big,
                                      self.verify_checksums, info.masked_crc32c, where, use_mmap=self.mmap)
        if info.dtype.name == "string":
            flat = payload.read_strings(source, info.offset, info.size, info.num_elements, big,
                                        self.verify_checksums, info.masked_crc32c, where)
            return flat.reshape(shape)
        raise UnsupportedError(f"{where}: tensors of dtype {info.dtype.name} cannot be read by "
                               f"tfckpt (shape {list(shape)} listed; values are opaque)")

    def get_tensor(self, name: str) -> Any:
        """The value of tensor ``name``, as TensorFlow's ``CheckpointReader.get_tensor`` returns
        it: a new numpy array, a numpy scalar for a scalar tensor (``np.float32(1.5)``), and
        ``bytes`` for a scalar string; string arrays hold ``bytes`` objects.

        Raises :class:`NotFoundError` (a ``KeyError``) if there is no such tensor,
        :class:`ChecksumError` if its bytes fail the CRC32C check. :meth:`read_array` always
        returns an array.
        """
        value = self.read_array(name)
        return value[()] if value.ndim == 0 else value

    def read_array(self, name: str) -> np.ndarray:
        """The value of tensor ``name`` as a numpy array, 0-d for scalars (see :meth:`get_tensor`)."""
        if not isinstance(name, str):
            raise TypeError(f"tensor names are strings, not {type(name).__name__} ({name!r})")
        info = self.tensor_info(name)
        if info.slices:
            return self._read_partitioned(info, TensorSlice.full(len(info.shape)))
        return self._read_entry(info, info.shape)

    def get_slice(self, name: str) -> SliceView:
        """A lazy view of tensor ``name``: index it like a numpy array to read only that part.

        Examples
        --------
        >>> import tfckpt, numpy as np, tempfile, os
        >>> prefix = tfckpt.save({"emb": np.arange(12).reshape(6, 2)}, os.path.join(tempfile.mkdtemp(), "m"))
        >>> view = tfckpt.load_checkpoint(prefix).get_slice("emb")
        >>> view[2:4].tolist(), view.shape
        ([[4, 5], [6, 7]], (6, 2))
        >>> view.read("0,1:-").tolist()
        [[0, 1]]
        """
        return SliceView(self, self.tensor_info(name))

    def read_slice(self, name: str, piece: TensorSlice | str) -> np.ndarray:
        """The part ``piece`` of tensor ``name`` (a :class:`TensorSlice` or TF's ``"0,100:-"``).

        Only the bytes of that part are read. A part smaller than the whole stored tensor (or
        stored slice) is not checksum-verified: the CRC covers whole entries only.
        """
        info = self.tensor_info(name)
        if isinstance(piece, str):
            piece = TensorSlice.parse(piece)
        piece.check(info.shape, f"{self.prefix}: key {describe_key(name)!r}", InvalidArgumentError)
        if info.slices:
            return self._read_partitioned(info, piece)
        return self._read_region(info, info.shape, piece)

    def _read_region(self, info: TensorInfo, shape: tuple[int, ...], piece: TensorSlice) -> np.ndarray:
        """Part ``piece`` of one stored (unpartitioned) entry whose shape is ``shape``."""
        if piece.covers(shape):
            return self._read_entry(info, shape)
        bounds = piece.bounds(shape)
        if not info.dtype.is_fixed_size:  # variable-size layouts must be parsed whole
            whole = self._read_entry(info, shape)
            return whole[tuple(slice(lo, hi) for lo, hi in bounds)].copy()
        self._check_stored(info)
        source = self._shard(info.shard_id)
        where = f"{source.name}: key {describe_key(info.name)!r}"
        return payload.read_fixed_region(source, info.offset, shape, info.dtype, bounds,
                                         self.header.endianness == BIG, where)

    def _read_partitioned(self, info: TensorInfo, wanted: TensorSlice) -> np.ndarray:
        """Part ``wanted`` of a partitioned tensor, from the stored slices it intersects.

        Everything is checked before the result is allocated: the stored slices must tile the
        requested region, and each one's entry, size and bytes must exist; so a hostile index
        cannot make this allocate more than the bytes present.
        """
        np_dtype = info.dtype.as_numpy_dtype
        where = f"{self.prefix}: key {describe_key(info.name)!r}"
        if np_dtype is None:
            raise UnsupportedError(f"{where}: cannot assemble dtype {info.dtype.name}")
        shape = info.shape
        hits = [(piece, common) for piece in info.slices
                if (common := piece.intersect(wanted, shape)) is not None]
        problem = validate.tiling_problem([common.bounds(shape) for _, common in hits], wanted.bounds(shape), shape)
        if problem is not None:
            raise CorruptionError(f"{where}: {problem} (shape {list(shape)})")
        parts = []
        for piece, common in hits:
            part = self._slice_info(encode_slice_key(info.name, piece))
            if part is None:
                raise CorruptionError(f"{where}: slice {piece} is listed but its data entry is missing")
            if part.dtype != info.dtype or part.shape != piece.shape(shape):
                raise CorruptionError(f"{where}: slice {piece} is stored as {part.dtype.name}"
                                      f"{list(part.shape)}, expected {info.dtype.name}{list(piece.shape(shape))}")
            self._check_stored(part)
            parts.append((piece, common, part))
        out = np.empty(wanted.shape(shape), dtype=np_dtype)
        for piece, common, part in parts:
            inside = TensorSlice.from_bounds(tuple((s.start, s.stop) for s in common.relative_to(piece, shape)))
            out[common.relative_to(wanted, shape)] = self._read_region(part, part.shape, inside)
        return out

    def _check_stored(self, info: TensorInfo) -> None:
        """Raise unless the entry's size fits its dtype and shape and its bytes exist."""
        problem = validate.size_problem(info)
        if problem is None:
            problem = validate.bytes_problem(info, self._shard(info.shard_id).size())
        if problem is not None:
            raise CorruptionError(f"{self._index_name}: key {describe_key(info.name)!r}: {problem}")

    # -- TensorFlow CheckpointReader methods -------------------------------------------------

    def has_tensor(self, name: str) -> bool:
        return name in self._raw

    def _peek(self, name: str) -> tuple[DType, tuple[int, ...]]:
        """dtype and shape of ``name``, without building its record when the bytes are plain."""
        info = self._entries.get(name)
        if info is None:
            peeked = peek_dtype_shape(self._raw[name])
            if peeked is not None and peeked[0] in BY_ENUM:
                return BY_ENUM[peeked[0]], peeked[1]
            info = self.tensor_info(name)
        return info.dtype, info.shape

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        return {name: list(self._peek(name)[1]) for name in self._raw}

    def get_variable_to_dtype_map(self) -> dict[str, DType]:
        return {name: self._peek(name)[0] for name in self._raw}

    def debug_string(self) -> bytes:
        """TF's ``CheckpointReader.debug_string()``: ``key (DT_NAME) [d0,d1]`` per stored entry.

        Like TensorFlow, this lists raw index keys in byte order, including the keys of slice
        pieces, and leaves out the data-less full entries of partitioned tensors.
        """
        lines = [b"%s (%s) [%s]\n" % (key, DataType(info.dtype.as_datatype_enum).name.encode(),
                                      ",".join(str(d) for d in info.shape).encode())
                 for key, info in self.raw_entries() if not info.slices]
        return b"".join(lines)

    # -- TF2 object-based checkpoints ---------------------------------------------------

    @property
    def object_graph(self) -> ObjectGraph | None:
        """The decoded ``_CHECKPOINTABLE_OBJECT_GRAPH``, or ``None`` for name-based checkpoints."""
        if OBJECT_GRAPH_KEY not in self._raw:
            return None
        if self._object_graph is None:
            value = self.read_array(OBJECT_GRAPH_KEY)
            if value.shape != () or not isinstance(value.item(), bytes):
                raise CorruptionError(f"{self.prefix}: {OBJECT_GRAPH_KEY} must be a scalar string, "
                                      f"found shape {list(value.shape)}")
            self._object_graph = ObjectGraph.decode(value.item(), f"{self.prefix}: {OBJECT_GRAPH_KEY}")
        return self._object_graph

    def object_tensors(self) -> dict[str, objects.ObjectTensor]:
        """Each key the object graph names: its object path, attribute and TF1 ``full_name``."""
        graph = self.object_graph
        return {} if graph is None else objects.object_tensors(graph, self._raw)

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
            return objects.nested(graph, self.read_array, optimizer=optimizer, slots=slots,
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
                node[parts[-1]] = self.read_array(name)
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


class SliceView:
    """Lazy access to part of one tensor; see :meth:`BundleReader.get_slice`.

    Indexing accepts integers, slices (any step) and ``...``; the bounding box of the
    selection is read, then steps and integer indices are applied in memory.
    """

    def __init__(self, reader: BundleReader, info: TensorInfo) -> None:
        self._reader = reader
        self.info = info

    @property
    def shape(self) -> tuple[int, ...]:
        return self.info.shape

    @property
    def dtype(self) -> DType:
        return self.info.dtype

    def __len__(self) -> int:
        if not self.info.shape:
            raise TypeError("len() of a scalar tensor")
        return self.info.shape[0]

    def read(self, piece: TensorSlice | str) -> np.ndarray:
        return self._reader.read_slice(self.info.name, piece)

    def __getitem__(self, key: Any) -> np.ndarray:
        bounds, post = _index_to_bounds(key, self.info.shape)
        region = self._reader.read_slice(self.info.name, TensorSlice.from_bounds(bounds))
        return np.asarray(region[post])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self._reader.read_array(self.info.name)
        return value if dtype is None else value.astype(dtype)

    def __repr__(self) -> str:
        return f"<tfckpt.SliceView {self.info.name!r} shape={list(self.shape)} dtype={self.dtype.name}>"


def _index_to_bounds(key: Any, shape: tuple[int, ...]) -> tuple[tuple[tuple[int, int], ...], tuple[Any, ...]]:
    """Turn a basic numpy index into a bounding box plus the index to apply inside it."""
    items = list(key) if isinstance(key, tuple) else [key]
    if sum(item is Ellipsis for item in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (len(shape) - len(items) + 1)
    if len(items) > len(shape):
        raise IndexError(f"too many indices: tensor is {len(shape)}-dimensional, {len(items)} were indexed")
    items += [slice(None)] * (len(shape) - len(items))
    bounds: list[tuple[int, int]] = []
    post: list[Any] = []
    for item, dim in zip(items, shape):
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            index = int(item) + dim if int(item) < 0 else int(item)
            if not 0 <= index < dim:
                raise IndexError(f"index {int(item)} is out of bounds for axis with size {dim}")
            bounds.append((index, index + 1))
            post.append(0)
        elif isinstance(item, slice):
            indices = range(*item.indices(dim))
            if len(indices) == 0:
                bounds.append((0, 0))
                post.append(slice(None))
            else:
                lo, hi = min(indices[0], indices[-1]), max(indices[0], indices[-1]) + 1
                bounds.append((lo, hi))
                post.append(slice(None, None, indices.step) if indices.step > 0
                            else slice(hi - 1 - lo, None, indices.step))
        else:
            raise UnsupportedError(f"get_slice() supports integers, slices and '...', not {type(item).__name__}; "
                                   f"read the tensor with get_tensor() for fancy indexing")
    return tuple(bounds), tuple(post)
