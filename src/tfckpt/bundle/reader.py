"""Reading a checkpoint: a lazy, read-only mapping from tensor names to numpy arrays.

:class:`CheckpointReader` works over a :class:`~tfckpt.bundle.store.Store` (a V2 bundle, or a
legacy V1 checkpoint) and adds what a checkpoint means beyond stored entries: partitioned
tensors assembled from their slices (checked to tile the region read before anything is
allocated), partial reads, TensorFlow's reader methods and return conventions, and the TF2
object graph.
"""

from __future__ import annotations

import bisect
import difflib
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..arguments import name_argument, path_argument
from ..dtypes import DType
from ..errors import (
    CorruptionError,
    InvalidArgumentError,
    MissingKeyError,
    NotFoundError,
    TfckptError,
    UnsupportedError,
)
from ..storage import filesystem_for
from . import objects, validate
from .entry import BundleHeader, TensorInfo
from .graph import OBJECT_GRAPH_KEY, ObjectGraph, display_path
from .slices import TensorSlice, describe_key, encode_slice_key
from .store import BundleStore, SourceOpener, Store

if TYPE_CHECKING:
    from typing_extensions import Self


__all__ = ["READ_BATCH_BYTES", "SUGGESTION_CANDIDATES", "CheckpointReader", "SliceView"]

READ_BATCH_BYTES = 64 << 20  # bytes planned (and held) together by read_arrays
SUGGESTION_CANDIDATES = 8  # names compared per list and per way of finding them ("did you mean")
_COMPARED_CHARS = 256  # of each name, so that hostile 1 MiB names cost no quadratic difflib time


class _Candidates:
    """Names to suggest from, sorted and by last ``/`` component (built once per reader)."""

    def __init__(self, names: dict[str, str]) -> None:
        self.keys = names  # name people may type -> the key it stands for
        self.ordered = sorted(names)
        self.by_last: dict[str, list[str]] = {}
        for text in self.ordered:
            self.by_last.setdefault(text.rsplit("/", 1)[-1], []).append(text)

    def closest(self, name: str) -> list[str]:
        at = bisect.bisect_left(self.ordered, name)
        pool = self.ordered[max(0, at - SUGGESTION_CANDIDATES):at + SUGGESTION_CANDIDATES]
        pool += self.by_last.get(name.rsplit("/", 1)[-1], [])[:SUGGESTION_CANDIDATES]
        shown = {text[:_COMPARED_CHARS]: text for text in pool}
        close = difflib.get_close_matches(name[:_COMPARED_CHARS], list(shown), n=3, cutoff=0.6)
        return list(dict.fromkeys(self.keys[shown[text]] for text in close))



class CheckpointReader(Mapping[str, np.ndarray]):
    """A read-only mapping from tensor names to numpy arrays, read lazily.

    Parameters
    ----------
    prefix:
        The checkpoint prefix (``PREFIX.index`` must exist).
    verify_checksums:
        Check each tensor's CRC32C as it is read (default). ``False`` skips it for speed.
    opener:
        How to open ``PREFIX.index`` and the data files; by default the opener of the
        filesystem ``prefix`` is on (local files, or fsspec's for a URL), chosen once.
    mmap:
        Return aligned little-endian fixed-size tensors of local files as read-only views of
        the memory-mapped data file (zero copy; the checksum, if verified, is computed on the
        mapped bytes). Other tensors are read as usual. ``"c"`` (numpy's ``mmap_mode="c"``):
        writable copy-on-write views instead; a write stays in this process (every read of this
        reader shares it, so a verified read of that tensor then raises ChecksumError) and
        never reaches the file.

    Examples
    --------
    >>> import tfckpt
    >>> reader = tfckpt.load_checkpoint("examples/keras_mlp")
    >>> counter = reader.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE")  # a numpy scalar, as in TF
    >>> type(counter).__name__, int(counter), len(reader) > 10
    ('int64', 1, True)
    >>> reader.read_array("save_counter/.ATTRIBUTES/VARIABLE_VALUE").shape
    ()
    """

    def __init__(self, prefix: str | Store, *, verify_checksums: bool = True,
                 opener: SourceOpener | None = None, mmap: bool | Literal["c"] = False) -> None:
        # A store is an object with the Store methods; None, numbers and bytes are wrong paths.
        if prefix is None or isinstance(prefix, (str, os.PathLike, bytes, bytearray, int, float)):
            path = path_argument(prefix, "prefix")
            self._store: Store = BundleStore(path, verify_checksums=verify_checksums, mmap=mmap,
                                             opener=opener or filesystem_for(path).open_source)
        else:
            self._store = prefix
        self.prefix = self._store.prefix
        self._object_graph: ObjectGraph | None = None
        self._object_tensors: dict[str, objects.ObjectTensor] | None = None
        self._keys_by_path: dict[str, list[str]] | None = None
        self._candidates: _Candidates | None = None

    @property
    def header(self) -> BundleHeader:
        """The bundle header (shard count, byte order, versions)."""
        return self._store.header

    @property
    def store(self) -> Store:
        """The :class:`~tfckpt.bundle.store.Store` this reader reads: every index entry, the
        checks of stored bytes and the data files, for the tools that check or rewrite a
        checkpoint (``verify``, ``merge``) rather than read its tensors."""
        return self._store

    # -- Mapping --------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        return self.get_tensor(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._store.names()))

    def __len__(self) -> int:
        return len(self._store.names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._store.has(name)

    # -- metadata ----------------------------------------------------------------------------

    def tensor_info(self, name: str) -> TensorInfo:
        """The index record of ``name`` (dtype, shape, shard, offset, size, checksum)."""
        info = self._store.info(name_argument(name, "name"))
        if info is None:
            raise self._missing(name)
        return info

    def _missing(self, name: str) -> NotFoundError:
        """The error for a missing key: cheap to raise (callers use ``KeyError`` as a membership
        test); its "did you mean" is worked out only if the message is shown."""
        return MissingKeyError(f"Key {name} not found in checkpoint {self.prefix}", lambda: self._suggest(name))

    def _suggest(self, name: str) -> str:
        """``; did you mean ...?`` with the keys (or object paths) closest to ``name``, among
        a bounded set of candidates: each sorted list's neighbours of ``name`` and the names
        ending in the same component, so a suggestion costs O(log n) once the lists exist."""
        if not isinstance(name, str):
            return ""
        if self._candidates is None:
            try:
                paths = self._object_paths()
            except TfckptError:
                paths = {}
            self._candidates = _Candidates({**{key: key for key in self._store.names()},
                                            **{path: key for key, path in paths.items()}})
        close = self._candidates.closest(name)
        return f"; did you mean {' or '.join(repr(k) for k in close)}?" if close else ""

    def key_for(self, name: str) -> str:
        """``name`` if it is a key, else the one key whose TF2 object path is ``name`` (e.g.
        ``save_counter`` for ``save_counter/.ATTRIBUTES/VARIABLE_VALUE``); raises
        :class:`NotFoundError`, with suggestions, when there is none or it is ambiguous."""
        if self._store.has(name_argument(name, "name")):
            return name
        if self._keys_by_path is None:
            by_path: dict[str, list[str]] = {}
            for key, path in self._object_paths().items():
                by_path.setdefault(path, []).append(key)
            self._keys_by_path = by_path
        matches = [key for key in self._keys_by_path.get(name, []) if self._store.has(key)]
        values = [key for key in matches if key.endswith("/.ATTRIBUTES/VARIABLE_VALUE")]
        if len(matches) == 1 or len(values) == 1:
            return matches[0] if len(matches) == 1 else values[0]
        if len(matches) > 1:
            raise NotFoundError(f"{name!r} is the object path of several keys in {self.prefix}: {sorted(matches)}")
        raise self._missing(name)

    def infos(self) -> list[TensorInfo]:
        """The record of every tensor (partitioned ones once, as their full entry), by name."""
        return [info for _, info in self._store.entries() if not info.name.startswith("\x00")]

    # -- data --------------------------------------------------------------------------------

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
        info = self.tensor_info(name)
        self._check_array(info, info.shape)
        if info.slices:
            return self._read_partitioned(info, TensorSlice.full(len(info.shape)))
        return self._store.read_entry(info)

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
        self._check_array(info, piece.shape(info.shape))
        if info.slices:
            return self._read_partitioned(info, piece)
        return self._store.read_region(info, piece)

    def read_arrays(self, names: Iterable[str], *, max_workers: int | None = None,
                    batch_bytes: int = READ_BATCH_BYTES) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, read_array(name))`` for each name in turn, read in bulk.

        Consecutive names are taken in batches of about ``batch_bytes`` stored bytes; each
        batch (partitioned tensors' slices included) is one read plan: entries sorted by
        file and offset, neighbours fetched together in one read (one ranged request on
        remote storage, several in flight at once), small tensors returned as views of the
        fetched buffer, each one checksum-verified. Memory beyond the values handed out stays
        within about one batch. ``max_workers`` caps concurrent reads (``1``: serial).

        Examples
        --------
        >>> import tfckpt
        >>> reader = tfckpt.load_checkpoint("examples/keras_mlp")
        >>> values = dict(reader.read_arrays(reader))
        >>> len(values) == len(reader), values["save_counter/.ATTRIBUTES/VARIABLE_VALUE"].shape
        (True, ())
        """
        names = list(names)
        for wrong in (name for name in names if not isinstance(name, str)):
            name_argument(wrong, "names")  # raises: every name is checked before any is read
        batch: list[tuple[str, TensorInfo | None, list[tuple[TensorSlice, TensorInfo]] | None]] = []
        size = 0
        quick = self._store.quick
        for name, quick_size in zip(names, quick.quick_sizes(names) if quick is not None else [-1] * len(names)):
            if quick_size >= 0:  # small and plain: read in bulk, no record needed
                batch.append((name, None, None))
                size += quick_size
                if size >= batch_bytes:
                    yield from self._read_batch(batch, max_workers)
                    batch, size = [], 0
                continue
            info = self.tensor_info(name)
            self._check_array(info, info.shape)
            if info.slices:
                parts = [(common, part) for _, common, part in self._partition_parts(info, TensorSlice.full(len(info.shape)))]
                batch.append((name, info, parts))
                size += sum(part.size for _, part in parts)
            else:
                batch.append((name, info, None))
                size += info.size
            if size >= batch_bytes:
                yield from self._read_batch(batch, max_workers)
                batch, size = [], 0
        yield from self._read_batch(batch, max_workers)

    def _read_batch(self, batch: list[tuple[str, TensorInfo | None, list[tuple[TensorSlice, TensorInfo]] | None]],
                    max_workers: int | None) -> Iterator[tuple[str, np.ndarray]]:
        quick_names = [name for name, info, _ in batch if info is None]
        reads = self._store.quick
        quick = iter(reads.read_quick(quick_names)) if quick_names and reads is not None else iter(())
        stored = [part for _, info, parts in batch if info is not None
                  for part in ([info] if parts is None else [p for _, p in parts])]
        values = {id(info): value for info, value in self._store.read_many(stored, max_workers)}
        for name, info, parts in batch:
            if info is None:
                yield name, next(quick)
                continue
            if parts is None:
                yield name, values[id(info)]
                continue
            np_dtype = info.dtype.as_numpy_dtype
            out = np.empty(info.shape, dtype=np_dtype)
            full = TensorSlice.full(len(info.shape))
            for common, part in parts:
                out[common.relative_to(full, info.shape)] = values[id(part)]
            yield name, out

    def _check_array(self, info: TensorInfo, shape: tuple[int, ...]) -> None:
        """Raise :class:`UnsupportedError` unless numpy can hold ``shape`` (all of ``info``'s
        tensor or the part read): checked before any read, the one rule every allocation of
        a value obeys (bulk reads screen the same rule per dtype and shape)."""
        problem = validate.array_problem(info.dtype, shape)
        if problem is not None:
            if not info.slices:
                self._store.check_stored(info)  # a damaged entry is reported as such first
            raise UnsupportedError(f"{self.prefix}: key {describe_key(info.name)!r}: cannot read "
                                   f"{info.dtype.name}{list(shape)}: {problem}")

    def _partition_parts(self, info: TensorInfo, wanted: TensorSlice) -> list[tuple[TensorSlice, TensorSlice, TensorInfo]]:
        """``(stored slice, its intersection with wanted, the slice's data record)`` for each
        stored slice that part ``wanted`` of a partitioned tensor needs.

        Everything is checked before anything is allocated: the stored slices must tile the
        requested region, and each one's entry, size and bytes must exist; so a hostile index
        cannot make a read allocate more than the bytes present.
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
            part = self._store.slice_info(encode_slice_key(info.name, piece))
            problem = validate.slice_entry_problem(info, piece, part)
            if problem is not None:
                raise CorruptionError(f"{where}: {problem}")
            assert part is not None
            self._store.check_stored(part)
            parts.append((piece, common, part))
        return parts

    def _read_partitioned(self, info: TensorInfo, wanted: TensorSlice) -> np.ndarray:
        """Part ``wanted`` of a partitioned tensor, from the stored slices it intersects."""
        parts = self._partition_parts(info, wanted)
        shape = info.shape
        out = np.empty(wanted.shape(shape), dtype=info.dtype.as_numpy_dtype)
        for piece, common, part in parts:
            inside = TensorSlice.from_bounds(tuple((s.start, s.stop) for s in common.relative_to(piece, shape)))
            out[common.relative_to(wanted, shape)] = self._store.read_region(part, inside)
        return out

    # -- TensorFlow CheckpointReader methods -------------------------------------------------

    def has_tensor(self, name: str) -> bool:
        """Whether ``name`` is a key of this checkpoint (TF's ``CheckpointReader.has_tensor``;
        a partitioned tensor's full name counts, its slice keys do not)."""
        return self._store.has(name_argument(name, "name"))

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        """Every key and its shape as a list of ints, from the index alone (no tensor data
        read), as TF's ``CheckpointReader.get_variable_to_shape_map`` returns them."""
        listing = self._store.peek_all()
        shapes = [list(shape) for _, shape in listing.kinds]
        # A list of its own for each name, as TF returns: callers may change theirs.
        return dict(zip(listing.names, map(list.copy, map(shapes.__getitem__, listing.which))))

    def get_variable_to_dtype_map(self) -> dict[str, DType]:
        """Every key and its :class:`~tfckpt.DType` (``.name`` such as ``"float32"``,
        ``.as_numpy_dtype``), from the index alone, like TF's ``get_variable_to_dtype_map``."""
        listing = self._store.peek_all()
        dtypes = [dtype for dtype, _ in listing.kinds]
        return dict(zip(listing.names, map(dtypes.__getitem__, listing.which)))

    def debug_string(self) -> bytes:
        """TF's ``CheckpointReader.debug_string()``, byte for byte."""
        return self._store.debug_string()

    # -- TF2 object-based checkpoints ---------------------------------------------------

    @property
    def object_graph(self) -> ObjectGraph | None:
        """The decoded ``_CHECKPOINTABLE_OBJECT_GRAPH``, or ``None`` for name-based checkpoints."""
        if not self._store.has(OBJECT_GRAPH_KEY):
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
        if self._object_tensors is None:
            graph = self.object_graph
            self._object_tensors = {} if graph is None else objects.object_tensors(graph, self._store.names())
        return dict(self._object_tensors)

    def object_paths(self) -> dict[str, str]:
        """``{checkpoint key: object path}``, e.g. ``{"net/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE":
        "net/dense/kernel"}``; local names appear unescaped. An object reachable along several
        routes has one path: its first breadth-first route (the one TensorFlow names its keys
        by), preferring routes that avoid optimizers (Keras 3 lists model weights under its
        optimizer too)."""
        return dict(self._object_paths())

    def _object_paths(self) -> dict[str, str]:
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
            return objects.nested(graph, lambda keys: dict(self.read_arrays(keys)), optimizer=optimizer,
                                  slots=slots, save_counter=save_counter)
        tree: dict[str, Any] = {}
        places: list[tuple[dict[str, Any], str, str]] = []  # (parent, leaf name, key): read in bulk below
        for name in self:
            parts = name.split("/")
            node = tree
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    break
                node = child
            else:
                node[parts[-1]] = None
                places.append((node, parts[-1], name))
        values = dict(self.read_arrays(name for _, _, name in places))
        for parent, leaf, name in places:
            parent[leaf] = values[name]
        return tree

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the checkpoint's files (also done by ``with``); the reader is unusable after."""
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tfckpt.CheckpointReader {os.fspath(self.prefix)!r}: {len(self)} tensors>"


class SliceView:
    """Lazy access to part of one tensor; see :meth:`CheckpointReader.get_slice`.

    Indexing accepts integers, slices (any step) and ``...``; the bounding box of the
    selection is read, then steps and integer indices are applied in memory.

    Examples
    --------
    >>> import tfckpt
    >>> view = tfckpt.load_checkpoint("examples/keras_mlp").get_slice("optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE")
    >>> view.shape, view[1:3, 0].shape
    ((4, 3), (2,))
    """

    def __init__(self, reader: CheckpointReader, info: TensorInfo) -> None:
        self._reader = reader
        self.info = info

    @property
    def shape(self) -> tuple[int, ...]:
        """The full tensor's shape (read from the index)."""
        return self.info.shape

    @property
    def dtype(self) -> DType:
        """The tensor's :class:`~tfckpt.DType`."""
        return self.info.dtype

    def __len__(self) -> int:
        if not self.info.shape:
            raise TypeError("len() of a scalar tensor")
        return self.info.shape[0]

    def read(self, piece: TensorSlice | str) -> np.ndarray:
        """The part ``piece`` (a :class:`~tfckpt.TensorSlice` or its text, ``"0,4:-"``) of the
        tensor, as :meth:`CheckpointReader.read_slice`."""
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
    # Found by identity: `in` and `index` compare with ==, which a numpy array (a boolean mask)
    # answers elementwise, raising numpy's "truth value ... is ambiguous" instead of ours below.
    ellipses = [at for at, item in enumerate(items) if item is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ellipses:
        at = ellipses[0]
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
