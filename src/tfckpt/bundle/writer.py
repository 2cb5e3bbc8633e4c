"""Writing a bundle: encode tensors into temporary data files, then hand them to the publisher.

Layout written (as TensorFlow's ``BundleWriter``)::

    P.data-0000k-of-0000N   tensors appended in call order, no padding (see payload)
    P.index                 header + entries sorted by key (see entry, table)

The writer only encodes: tensors stream into temporary data files (created on the first
tensor each receives) and :meth:`BundleWriter.finish` hands them, with the index, to
:func:`tfckpt.bundle.publish.publish`, which moves them into place so that the previous
checkpoint at ``P`` stays whole until the new one is. For URL targets each data file is
streamed to the storage as it is written (:class:`tfckpt.storage.Upload`: parts are sent
while later tensors are encoded, nothing is staged on local disk) and
:func:`tfckpt.bundle.publish.publish` (its object-store strategy) commits them, index last.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from .. import storage
from ..arguments import name_argument, path_argument
from ..coding import crc32c, crc32c_spans, mask, mask_many, masked_crc32c, put_spans
from ..dtypes import STRING, DType, DTypeLike, as_dtype
from ..errors import InvalidArgumentError, TfckptError
from ..settings import get_num_threads
from ..storage import Filesystem, temporary_name
from ..table.builder import TableBuilder
from ..values import to_numpy
from . import payload, validate
from .entry import BundleHeader, TensorInfo
from .fast_entries import EntryColumns
from .naming import data_filename
from .publish import discard_remote, make_parents, publish, repoint_remote
from .slices import SLICE_KEY_PREFIX, TensorSlice, decode_key, encode_slice_key, parse_shape_and_slice

if TYPE_CHECKING:
    from typing_extensions import Self


__all__ = [
    "ACCEPTED",
    "OVERLAP_CRC_BYTES",
    "WRITE_BUFFER_BYTES",
    "BundleWriter",
    "as_array",
    "check_mapping",
    "check_prefix",
    "prepare",
    "save_mapping",
    "write_index",
]

# Small writes are gathered up to this; a larger one goes straight to the file. Python's
# BufferedWriter copies any write that fits in its free space, so with TensorFlow's 8 MiB every
# tensor of up to 8 MiB was copied once more before the system call (+35% CPU for 512 MiB of
# 8 MiB tensors, benchmarks/writes.py); at 1 MiB only what add() would batch anyway is copied.
WRITE_BUFFER_BYTES = 1 << 20
OVERLAP_CRC_BYTES = 1 << 20  # below this, a thread hand-off costs more than the CRC it hides


def _as_bytes(value: Any, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview, np.bytes_)):
        return bytes(value)
    raise InvalidArgumentError(f"tensor {name!r}: an object array is saved as a string tensor and may hold "
                               f"only bytes or str, found {type(value).__name__} {value!r:.60}; give numbers a "
                               f"numeric dtype (e.g. .astype(np.float32))")


ACCEPTED = "a numpy array, a torch tensor, a JAX array, a number, bytes or str, or a (nested) list of them"
_INT32 = np.iinfo(np.int32)


def _is_python_data(value: Any) -> bool:
    """Python numbers and (nested) lists/tuples of them: what TensorFlow infers dtypes for."""
    if isinstance(value, (list, tuple)):
        return all(_is_python_data(item) for item in value)
    return isinstance(value, (bool, int, float, complex)) and not isinstance(value, np.generic)


def as_array(name: str, value: Any) -> np.ndarray:
    """``value`` as the array TensorFlow's ``tf.constant`` would make of it.

    Python ints become int32 (int64 when they do not fit), Python floats float32, as in
    TensorFlow; ``bytes``/``str`` (and lists of them) become object arrays that keep every byte
    (numpy's fixed-width strings would drop trailing NULs). Anything else is refused with a
    message naming the tensor and the value.
    """
    if value is None or isinstance(value, (dict, set, frozenset)) or callable(value):
        raise InvalidArgumentError(f"tensor {name!r}: {type(value).__name__} {value!r:.60} is not a tensor value; "
                                   f"pass {ACCEPTED}")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidArgumentError(f"tensor {name!r}: cannot make an array of {type(value).__name__} "
                                   f"{value!r:.60} ({exc}); pass {ACCEPTED}") from None
    if array.dtype.kind in "SU":
        array = np.array(value, dtype=object)  # keeps b"...\0" whole
    if array.dtype.kind == "O":
        text = (bytes, str, bytearray, memoryview, np.bytes_, np.str_)
        for item in array.flat:
            if not isinstance(item, text):
                if any(isinstance(other, text) for other in array.flat):  # numpy made text of [1, "a"]
                    found = " and ".join(sorted({type(other).__name__ for other in array.flat}))
                    raise InvalidArgumentError(f"tensor {name!r}: a mixed list of {found} values; a tensor holds "
                                               f"one dtype: pass only numbers or only str/bytes")
                hint = " (an integer too large for int64)" if isinstance(item, int) else ""
                raise InvalidArgumentError(f"tensor {name!r}: holds {type(item).__name__} {item!r:.60}{hint}; "
                                           f"pass {ACCEPTED} (object arrays may hold only bytes or str)")
        return array
    if _is_python_data(value):
        if array.dtype == np.int64 and (array.size == 0 or (_INT32.min <= array.min() and array.max() <= _INT32.max)):
            return array.astype(np.int32)
        if array.dtype == np.float64:
            return array.astype(np.float32)
    return array


def prepare(name: Any, value: Any, dtype: DTypeLike | None = None) -> tuple[str, np.ndarray, DType]:
    """Check one tensor before anything is written; return ``(name, array, dtype)``.

    ``value`` is anything ``numpy.asarray`` accepts, or a torch tensor or JAX array (taken as
    :func:`tfckpt.values.to_numpy` says). ``dtype`` sets the TF dtype (values are
    cast to its storage type, as ``numpy.astype`` would), e.g. ``"bfloat16"`` for a float32
    array, or ``"qint8"`` to store an int8 array as TensorFlow's quantized type.
    """
    if dtype is None and type(value) is np.ndarray and type(name) is str and name and name[0] != "\0":
        known = _STORED_AS_IS.get(value.dtype)
        if known is not None:  # a numeric array saved as it is: every check below would pass
            return name, value, known
    if not name_argument(name, "name"):
        raise InvalidArgumentError("tensor names must be non-empty strings, got ''")
    if name.startswith(SLICE_KEY_PREFIX.decode()):
        raise InvalidArgumentError(f"tensor name {name!r} may not start with NUL (reserved for slices)")
    value = to_numpy(value, f"tensor {name!r}")  # torch and JAX values: the one rule (values)
    array = value if isinstance(value, np.ndarray) else as_array(name, value)
    try:
        tf_dtype = as_dtype(array.dtype) if dtype is None else as_dtype(dtype)
    except TfckptError as exc:
        raise InvalidArgumentError(f"tensor {name!r}: {exc}") from None
    if tf_dtype.is_ref:
        raise InvalidArgumentError(f"tensor {name!r}: {tf_dtype.name} is a TF1 graph reference type, never stored "
                                   f"in checkpoints; save it as {tf_dtype.base_dtype.name}")
    if tf_dtype == STRING:
        if array.dtype.kind not in "OUS":
            raise InvalidArgumentError(f"tensor {name!r}: dtype string needs str/bytes values, got {array.dtype}")
        if array.dtype.kind == "O":
            for item in array.flat:
                _as_bytes(item, name)
        return name, array, tf_dtype
    np_dtype = tf_dtype.as_numpy_dtype
    if np_dtype is None:
        raise InvalidArgumentError(f"tensor {name!r}: values of dtype {tf_dtype.name} cannot be saved")
    if dtype is not None:
        try:  # the source must itself be numeric for a cast to mean anything
            source = as_dtype(array.dtype)
        except TfckptError:
            source = STRING
        if source == STRING:
            raise InvalidArgumentError(f"tensor {name!r}: cannot save {array.dtype} values as {tf_dtype.name}")
    # A differing dtype (explicit override, or big-endian input) is cast chunk by chunk while
    # writing, so no full second copy is made here.
    if dtype is None and array is value and len(_STORED_AS_IS) < 64:
        _STORED_AS_IS[array.dtype] = tf_dtype
    return name, array, tf_dtype


# numpy dtypes that prepare() has accepted as they are (no dtype given): the checks depend on
# the dtype alone, so a later array of one of them skips them.
_STORED_AS_IS: dict[np.dtype[Any], DType] = {}


class _Shard:
    """One data file being written, under a temporary name created on its first write."""

    def __init__(self, prefix: str, fs: Filesystem) -> None:
        self._prefix = prefix
        self._fs = fs
        self.temp: str | None = None
        self._file: BinaryIO | None = None
        self.offset = 0
        self.created_directories: list[str] = []

    @property
    def file(self) -> BinaryIO:
        if self._file is None:
            self.created_directories = make_parents(self._prefix, self._fs)
            self.temp = temporary_name(f"{self._prefix}.data")
            # Open across add() calls; closed by close_for_publish() or discard().
            self._file = self._fs.open_file(self.temp, "xb", buffering=WRITE_BUFFER_BYTES)
        return self._file

    def close_for_publish(self, sync: bool) -> str:
        """Flush (and fsync) the file, creating it if nothing was written; return its name."""
        out = self.file
        out.flush()
        if sync:
            self._fs.sync_file(out)
        out.close()
        assert self.temp is not None
        return self.temp

    def discard(self) -> None:
        if self._file is not None and not self._file.closed:
            # Closing flushes what is buffered; on a full disk that fails again (the descriptor
            # is closed all the same), and the file must still go.
            with contextlib.suppress(OSError):
                self._file.close()
        if self.temp is not None:
            self._fs.remove(self.temp)
        for directory in self.created_directories:  # deepest first; only if nothing else is there
            try:
                self._fs.rmdir(directory)
            except OSError:
                break


class _RemoteShard:
    """One data file streamed to a URL (the :class:`_Shard` interface for object storage).

    ``final`` is set when the file is probably the checkpoint's only one: it is then streamed
    straight to ``P.data-00000-of-00001``, sparing a server-side copy of all its bytes, after
    an old checkpoint using that name has been re-pointed. Otherwise it goes to a temporary
    name and moves at publication."""

    def __init__(self, prefix: str, fs: Filesystem, *, final: bool) -> None:
        self._prefix = prefix
        self._fs = fs
        self._final = final
        self.temp: str | None = None  # the URL being written
        self._upload: storage.Upload | None = None
        self.offset = 0

    @property
    def file(self) -> storage.Upload:
        if self._upload is None:
            if self._final:
                repoint_remote(self._prefix, 1, self._fs)
                self.temp = data_filename(self._prefix, 0, 1)
            else:
                self.temp = temporary_name(f"{self._prefix}.data")
            self._upload = self._fs.upload(self.temp)
        return self._upload

    def close_for_publish(self, sync: bool) -> str:
        """Complete the upload (creating an empty file if nothing was written); its URL."""
        self.file.commit()
        assert self.temp is not None
        return self.temp

    def discard(self) -> None:
        if self._upload is not None:
            self._upload.discard()
        if self.temp is not None:
            discard_remote([self.temp], self._fs)  # a committed upload of a save that failed later


class BundleWriter:
    """Writes one checkpoint, tensor by tensor, and publishes it atomically.

    Use it as a context manager: a clean exit finishes, an exception aborts.

    Parameters
    ----------
    prefix:
        The checkpoint prefix.
    sync:
        fsync data and index before publishing them (default).
    max_shard_bytes:
        Start a new data file (``PREFIX.data-0000k-of-N``) before a tensor that would make
        the current one larger than this; ``None`` (default) writes one data file.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> prefix = os.path.join(tempfile.mkdtemp(), "model.ckpt")
    >>> with BundleWriter(prefix) as writer:
    ...     _ = writer.add("w", np.ones((2, 3), np.float32))
    ...     _ = writer.add("step", np.int64(7))
    ...     _ = writer.add_slice("emb", (4, 2), "0,2:-", np.zeros((2, 2)))   # a partitioned tensor
    ...     _ = writer.add_slice("emb", (4, 2), "2,2:-", np.ones((2, 2)))
    """

    def __init__(self, prefix: str, *, sync: bool = True, max_shard_bytes: int | None = None) -> None:
        self.prefix = check_prefix(path_argument(prefix, "prefix"))
        self.sync = sync
        if max_shard_bytes is not None and max_shard_bytes <= 0:
            raise InvalidArgumentError(f"max_shard_bytes must be positive, got {max_shard_bytes}")
        self.max_shard_bytes = max_shard_bytes
        self._fs = storage.filesystem_for(self.prefix)
        # Nothing exists until the first tensor arrives (see _Shard.file).
        self._shards: list[_Shard | _RemoteShard] = []
        self._shards.append(self._new_shard())
        self._current = 0
        self._entries: dict[str, TensorInfo] = {}  # key (slice keys decoded) -> record
        self._runs: list[EntryColumns] = []  # records of small tensors written together (add_many)
        self._run_names: set[str] = set()
        self._partitioned: dict[str, TensorInfo] = {}  # full entries of partitioned tensors (no slices yet)
        self._slice_lists: dict[str, list[TensorSlice]] = {}  # their slices, in call order
        self._slice_sets: dict[str, set[TensorSlice]] = {}
        self._crc_executor: ThreadPoolExecutor | None = None
        self._overlap_crc = get_num_threads() > 1  # a CRC helper thread needs a second one to run on
        self._open = True

    def _new_shard(self) -> _Shard | _RemoteShard:
        if self._fs.atomic_rename:  # files written in place, renamed at publication
            return _Shard(self.prefix, self._fs)
        # A single-file layout is the likely outcome unless files are cut by size.
        return _RemoteShard(self.prefix, self._fs, final=not self._shards and self.max_shard_bytes is None)

    def _crc_pool(self) -> ThreadPoolExecutor:
        if self._crc_executor is None:
            self._crc_executor = ThreadPoolExecutor(1, thread_name_prefix="tfckpt-crc")
        return self._crc_executor

    @property
    def num_shards(self) -> int:
        """How many data files this writer has started so far."""
        return len(self._shards)

    def _check_open(self) -> None:
        if not self._open:
            raise InvalidArgumentError(f"writer for {self.prefix} is already finished or aborted")

    def _pick_shard(self, shard: int | None, size_hint: int) -> int:
        """The index of the data file the next tensor (of ``size_hint`` bytes) goes to."""
        if shard is not None:
            if not isinstance(shard, int) or shard < 0:
                raise InvalidArgumentError(f"shard must be a non-negative integer, got {shard!r}")
            while len(self._shards) <= shard:
                self._shards.append(self._new_shard())
            return shard
        if self.max_shard_bytes is not None:
            current = self._shards[self._current]
            if current.offset > 0 and current.offset + size_hint > self.max_shard_bytes:
                self._shards.append(self._new_shard())
                self._current = len(self._shards) - 1
        return self._current

    def _write(self, key: str, array: np.ndarray, tf_dtype: DType, shard: int | None) -> TensorInfo:
        if (array.dtype == tf_dtype.as_numpy_dtype and array.nbytes < OVERLAP_CRC_BYTES
                and array.flags.c_contiguous and tf_dtype is not STRING):
            # Small and already in storage form (most tensors of a large model, and the
            # per-tensor cost that matters for 10^4 of them): one checksum and one buffered
            # write, straight from the array.
            size = array.nbytes
            index = self._pick_shard(shard, size)
            sink = self._shards[index]
            offset = sink.offset
            try:
                raw_bytes = array.data.cast("B")
            except (TypeError, ValueError):  # zero-size arrays; dtypes without a buffer format
                raw_bytes = array.reshape(-1).view(np.uint8).data
            crc = masked_crc32c(raw_bytes)
            sink.file.write(raw_bytes)
        elif tf_dtype == STRING:
            bodies = [_as_bytes(item, key) for item in array.flat]
            parts, size, crc = payload.encode_strings(bodies)
            index = self._pick_shard(shard, size)
            sink = self._shards[index]
            offset = sink.offset
            for part in parts:
                sink.file.write(part)
        else:
            assert tf_dtype.as_numpy_dtype is not None
            index = self._pick_shard(shard, array.size * tf_dtype.itemsize)
            sink = self._shards[index]
            offset = sink.offset
            size, raw = 0, 0
            pending: Future[int] | None = None
            for chunk in payload.iter_chunks(array, tf_dtype.as_numpy_dtype):
                if chunk.nbytes >= OVERLAP_CRC_BYTES and self._overlap_crc:
                    # Checksum on a helper thread while this thread writes the same bytes: both
                    # release the GIL, so the CRC pass costs (almost) nothing.
                    pending = self._crc_pool().submit(_extend_crc, chunk, pending, raw)
                    raw = 0
                else:
                    if pending is not None:
                        raw, pending = pending.result(), None
                    raw = crc32c(chunk, raw)
                sink.file.write(chunk)
                size += chunk.nbytes
            if pending is not None:
                raw = pending.result()
            crc = mask(raw)
        sink.offset = offset + size
        info = self._entries[key] = TensorInfo.of_data(key, tf_dtype, array.shape, index, offset, size, crc)
        return info

    def add(self, name: str, value: Any, dtype: DTypeLike | None = None, *, shard: int | None = None) -> TensorInfo:
        """Append one tensor; return its index record. Raises before writing on bad input.

        ``shard`` puts it in that data file (0-based), creating files up to it.
        """
        self._check_open()
        return self.add_prepared(*prepare(name, value, dtype), shard=shard)

    def add_prepared(self, name: str, array: np.ndarray, tf_dtype: DType, *, shard: int | None = None) -> TensorInfo:
        """:meth:`add` for a tensor already checked by :func:`prepare` (no second check)."""
        name_argument(name, "name")  # public: the one check that costs nothing
        if not self._open:
            self._check_open()
        if self._taken(name):
            raise InvalidArgumentError(f"Adding duplicate key: {name}")
        return self._write(name, array, tf_dtype, shard)

    def _taken(self, name: str) -> bool:
        return name in self._entries or name in self._run_names or name in self._partitioned

    def add_many(self, prepared: Iterable[tuple[str, np.ndarray, DType]]) -> None:
        """:meth:`add_prepared` for each ``(name, array, dtype)`` (from :func:`prepare`), in
        order. Runs of small tensors already in storage form are written together: their
        bytes joined and written in one call, their records kept as columns (the per-tensor
        cost that matters for 10^4 tensors)."""
        if not self._open:
            self._check_open()
        run: list[tuple[str, np.ndarray, DType]] = []
        for item in prepared:
            name, array, tf_dtype = item
            if (self.max_shard_bytes is None and array.dtype == tf_dtype.as_numpy_dtype
                    and array.nbytes < OVERLAP_CRC_BYTES and array.flags.c_contiguous and tf_dtype is not STRING
                    and not self._taken(name)):
                run.append(item)
                continue
            self._write_run(run)
            run = []
            self.add_prepared(name, array, tf_dtype)
        self._write_run(run)

    def _write_run(self, run: list[tuple[str, np.ndarray, DType]]) -> None:
        """Append small, contiguous tensors in storage form to the current data file."""
        if not run:
            return
        names = [name for name, _, _ in run]
        if len(set(names)) != len(names):
            counts = collections.Counter(names)
            raise InvalidArgumentError(f"Adding duplicate key: {next(n for n in names if counts[n] > 1)}")
        arrays = [array for _, array, _ in run]
        try:  # C-contiguous arrays export their bytes (numpy's stubs do not say so)
            data = b"".join(arrays)  # type: ignore[arg-type]
        except (TypeError, ValueError, BufferError):  # a dtype without a buffer format
            data = b"".join([array.reshape(-1).view(np.uint8).data for array in arrays])
        sizes = np.fromiter((array.nbytes for array in arrays), dtype=np.int64, count=len(arrays))
        ends = np.cumsum(sizes)
        starts = ends - sizes
        crcs = mask_many(crc32c_spans(memoryview(data), starts, ends))
        sink = self._shards[self._current]
        offset = sink.offset
        sink.file.write(data)
        sink.offset = offset + len(data)
        self._runs.append(EntryColumns(names, [tf_dtype for _, _, tf_dtype in run], [array.shape for array in arrays],
                                       self._current, starts + offset, sizes, crcs))
        self._run_names.update(names)

    def add_slice(self, name: str, full_shape: Sequence[int] | None, piece: TensorSlice | str, value: Any,
                  dtype: DTypeLike | None = None, *, shard: int | None = None) -> TensorInfo:
        """Append one slice of a partitioned tensor, as TF's ``SaveV2`` with a slice spec.

        ``piece`` is a :class:`TensorSlice`, a slice spec (``"0,2:-"``) with ``full_shape``
        given, or TF's ``"4 2 0,2:-"`` form (full shape first) with ``full_shape=None``.
        ``value`` must have the slice's shape. A slice covering the whole tensor is stored as
        an ordinary tensor, as TensorFlow does. Returns the slice's data record.
        """
        self._check_open()
        if isinstance(piece, str):
            if full_shape is None:
                full_shape, piece = parse_shape_and_slice(piece)
            else:
                piece = TensorSlice.parse(piece)
        if full_shape is None:
            raise InvalidArgumentError(f"add_slice({name!r}): full_shape is required with a TensorSlice")
        shape = tuple(int(d) for d in full_shape)
        piece.check(shape, f"add_slice({name!r})", InvalidArgumentError)
        name, array, tf_dtype = prepare(name, value, dtype)
        if tuple(array.shape) != piece.shape(shape):
            raise InvalidArgumentError(f"add_slice({name!r}): value has shape {list(array.shape)}, slice {piece} "
                                       f"of {list(shape)} needs {list(piece.shape(shape))}")
        if piece.covers(shape):
            return self.add(name, array, tf_dtype, shard=shard)
        if name in self._entries or name in self._run_names:
            raise InvalidArgumentError(f"Adding duplicate key: {name}")
        full = self._partitioned.get(name)
        if full is not None:
            if full.dtype != tf_dtype or full.shape != shape:
                raise InvalidArgumentError(f"add_slice({name!r}): earlier slices were {full.dtype.name}"
                                           f"{list(full.shape)}, this one {tf_dtype.name}{list(shape)}")
            if piece in self._slice_sets[name]:
                raise InvalidArgumentError(f"add_slice({name!r}): slice {piece} was already added")
        key = decode_key(encode_slice_key(name, piece))
        info = self._write(key, array, tf_dtype, shard)
        self._slice_sets.setdefault(name, set()).add(piece)
        self._slice_lists.setdefault(name, []).append(piece)
        if full is None:
            self._partitioned[name] = TensorInfo(name, tf_dtype, shape)
        return info

    def finish(self) -> str:
        """Publish the checkpoint under its final names; return the prefix.

        Until the new index is in place, a checkpoint already at the prefix stays complete
        and readable; if publishing fails, it is left as it was and nothing new remains.
        """
        self._check_open()
        try:
            partitioned = self._partitioned_entries()
        except InvalidArgumentError:
            self.abort()
            raise
        self._open = False
        self._stop_crc_pool()
        entries = [*self._entries.values(), *partitioned]
        header = BundleHeader(num_shards=len(self._shards))
        runs = self._runs
        try:
            staged = [shard.close_for_publish(self.sync) for shard in self._shards]
        except BaseException:
            self._discard()
            raise
        try:
            publish(self.prefix, staged, lambda out: write_index(out, header, entries, runs), sync=self.sync,
                    fs=self._fs)
        except BaseException:
            # publish cleans up after its own failures; on object stores it also knows when
            # cleaning up would be wrong (an unclear commit), so only local leftovers go here.
            if self._fs.atomic_rename:
                self._discard()
            raise
        return self.prefix

    def _partitioned_entries(self) -> list[TensorInfo]:
        """The full entries of partitioned tensors, their slices checked for overlap once
        (O(n log n)) rather than slice against slice as they arrive."""
        out = []
        for name, full in self._partitioned.items():
            pieces = self._slice_lists[name]
            problem = validate.overlap_problem([p.bounds(full.shape) for p in pieces],
                                               tuple((0, d) for d in full.shape), full.shape)
            if problem is not None:
                raise InvalidArgumentError(f"partitioned tensor {name!r}: {problem}; nothing was written")
            out.append(dataclasses.replace(full, slices=tuple(pieces)))
        return out

    def close(self) -> None:
        """Finish (publish) the checkpoint if it is still open; a no-op afterwards.

        Outside a ``with`` block, call :meth:`close` (or :meth:`finish`) to publish, or
        :meth:`abort` to discard what was written.
        """
        if self._open:
            self.finish()

    def _discard(self) -> None:
        for shard in self._shards:
            shard.discard()

    def _stop_crc_pool(self) -> None:
        if self._crc_executor is not None:
            self._crc_executor.shutdown(wait=True)
            self._crc_executor = None

    def abort(self) -> None:
        """Discard everything written so far; the final names are left as they were."""
        self._stop_crc_pool()
        if self._open:
            self._open = False
            self._discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            self.abort()
        elif self._open:
            self.finish()

    def __del__(self) -> None:
        # A writer dropped without finish()/abort() must not leave temporary files behind.
        if getattr(self, "_open", False):
            warnings.warn(f"CheckpointWriter for {self.prefix} was neither finished nor aborted; its "
                          f"temporary files were discarded", ResourceWarning, stacklevel=2)
            self.abort()


def _extend_crc(chunk: memoryview, previous: Future[int] | None, start: int) -> int:
    # Runs on the single CRC thread, in submission order, so ``previous`` is already done.
    return crc32c(chunk, previous.result() if previous is not None else start)


def check_prefix(prefix: str) -> str:
    """Refuse prefixes that cannot name a checkpoint (``"out/"`` would write ``out/.index``)."""
    base = storage.basename(prefix)
    if not prefix or not base or base in (".", ".."):
        raise InvalidArgumentError(f"{prefix!r} is not a checkpoint prefix: it needs a file name part, "
                                   f"e.g. {storage.join(prefix or '.', 'model.ckpt')!r}")
    return prefix


def write_index(sink: BinaryIO, header: BundleHeader, entries: Iterable[TensorInfo],
                runs: Sequence[EntryColumns] = ()) -> int:
    """Write the index table: header under ``b""``, then the entries (records, and columns of
    records) in bytewise key order."""
    records = list(entries)
    names = [info.name for info in records]
    encoded = [header.encode(), *(info.encode() for info in records)]
    values = [np.frombuffer(b"".join(encoded), dtype=np.uint8)]
    lengths = [np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))]
    for run in runs:
        names += run.names
        run_values, run_lengths = run.encode()
        values.append(run_values)
        lengths.append(run_lengths)
    keys = [name.encode("utf-8", "surrogateescape") for name in names]
    order = sorted(range(len(keys)), key=keys.__getitem__)  # timsort: linear when names came sorted
    value_lengths = np.concatenate(lengths)
    value_starts = np.cumsum(value_lengths) - value_lengths
    rows = np.array([0, *(row + 1 for row in order)], dtype=np.int64)  # the header first
    sorted_lengths = value_lengths[rows]
    sorted_values = np.empty(int(sorted_lengths.sum()), dtype=np.uint8)
    put_spans(sorted_values, np.cumsum(sorted_lengths) - sorted_lengths, np.concatenate(values), value_starts[rows],
              sorted_lengths)
    table = TableBuilder(sink)
    table.add_packed([b"", *map(keys.__getitem__, order)], sorted_values, sorted_lengths)
    return table.finish()


def check_mapping(tensors: object) -> None:
    """Raise :class:`InvalidArgumentError` unless ``tensors`` is a mapping of names to values."""
    if not isinstance(tensors, Mapping):
        raise InvalidArgumentError(f"tensors must be a mapping {{name: value}}, got {type(tensors).__name__}")


def save_mapping(tensors: Mapping[str, Any], prefix: str, *, sync: bool = True) -> str:
    """Validate every tensor first, then write them all in the mapping's order."""
    check_mapping(tensors)
    prepared = [prepare(name, value) for name, value in tensors.items()]
    seen: set[str] = set()
    for name, _, _ in prepared:
        if name in seen:
            raise InvalidArgumentError(f"duplicate tensor name {name!r}")
        seen.add(name)
    with BundleWriter(prefix, sync=sync) as writer:
        writer.add_many(prepared)
    return writer.prefix
