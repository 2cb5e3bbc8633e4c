"""Writing a bundle: stream tensors into a temporary data file, publish atomically.

Protocol (as TensorFlow's ``BundleWriter``, plus a safe overwrite)::

    P.data-00000-of-00001.tempstate<random>   tensors appended in call order, no padding
    P.index.tempstate<random>                 header + entries sorted by key (tfckpt.table)

``finish()`` flushes (and by default fsyncs) the data file, removes an existing ``P.index`` so
a reader never pairs an old index with new data, renames the data file into place, then
writes and renames the index. Any failure or ``abort()`` deletes the temporaries; nothing at
the final names is touched until the data is complete.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from ..coding import crc32c, mask
from ..dtypes import STRING, DType, DTypeLike, as_dtype
from ..errors import InvalidArgumentError, TfckptError
from ..table import TableBuilder
from . import payload
from .entry import BundleHeader, TensorInfo
from .naming import data_filename, index_filename
from .slices import SLICE_KEY_PREFIX

if TYPE_CHECKING:
    from typing_extensions import Self

WRITE_BUFFER_BYTES = 8 << 20  # as TensorFlow's BundleWriter


def _temp_name(path: str) -> str:
    return f"{path}.tempstate{secrets.randbits(64)}"


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    except OSError:
        return  # not every platform can open a directory
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _as_bytes(value: Any, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview, np.bytes_)):
        return bytes(value)
    raise InvalidArgumentError(f"tensor {name!r}: a string tensor may hold only bytes or str, "
                               f"found {type(value).__name__}")


def prepare(name: Any, value: Any, dtype: DTypeLike | None = None) -> tuple[str, np.ndarray, DType]:
    """Check one tensor before anything is written; return ``(name, array, dtype)``.

    ``value`` is anything ``numpy.asarray`` accepts. ``dtype`` sets the TF dtype (values are
    cast to its storage type, as ``numpy.astype`` would), e.g. ``"bfloat16"`` for a float32
    array, or ``"qint8"`` to store an int8 array as TensorFlow's quantized type.
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"tensor names must be non-empty strings, got {name!r}")
    if name.startswith(SLICE_KEY_PREFIX.decode()):
        raise InvalidArgumentError(f"tensor name {name!r} may not start with NUL (reserved for slices)")
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    try:
        tf_dtype = as_dtype(array.dtype) if dtype is None else as_dtype(dtype)
    except TfckptError as exc:
        raise InvalidArgumentError(f"tensor {name!r}: {exc}") from None
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
    return name, array, tf_dtype


class BundleWriter:
    """Writes one checkpoint, tensor by tensor, and publishes it atomically.

    Use it as a context manager: a clean exit finishes, an exception aborts.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> prefix = os.path.join(tempfile.mkdtemp(), "model.ckpt")
    >>> with BundleWriter(prefix) as writer:
    ...     _ = writer.add("w", np.ones((2, 3), np.float32))
    ...     _ = writer.add("step", np.int64(7))
    """

    def __init__(self, prefix: str, *, sync: bool = True) -> None:
        self.prefix = os.fspath(prefix)
        self.sync = sync
        directory = os.path.dirname(self.prefix)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._data_path = data_filename(self.prefix, 0, 1)
        self._data_temp = _temp_name(self._data_path)
        # Open across add() calls; closed by finish() or abort().
        self._data: BinaryIO | None = open(self._data_temp, "xb", buffering=WRITE_BUFFER_BYTES)  # noqa: SIM115
        self._offset = 0
        self._entries: dict[str, TensorInfo] = {}
        self._done = False

    def add(self, name: str, value: Any, dtype: DTypeLike | None = None) -> TensorInfo:
        """Append one tensor; return its index record. Raises before writing on bad input."""
        if self._data is None:
            raise InvalidArgumentError(f"writer for {self.prefix} is already finished or aborted")
        name, array, tf_dtype = prepare(name, value, dtype)
        if name in self._entries:
            raise InvalidArgumentError(f"Adding duplicate key: {name}")
        offset = self._offset
        if tf_dtype == STRING:
            bodies = [_as_bytes(item, name) for item in array.flat]
            parts, size, crc = payload.encode_strings(bodies)
            for part in parts:
                self._data.write(part)
        else:
            assert tf_dtype.as_numpy_dtype is not None
            size, raw = 0, 0
            for chunk in payload.iter_chunks(array, tf_dtype.as_numpy_dtype):
                self._data.write(chunk)
                raw = crc32c(chunk, raw)
                size += chunk.nbytes
            crc = mask(raw)
        self._offset += size
        info = TensorInfo(name, tf_dtype, tuple(int(d) for d in array.shape), 0, offset, size, crc)
        self._entries[name] = info
        return info

    def finish(self) -> str:
        """Publish the checkpoint under its final names; return the prefix."""
        if self._data is None:
            raise InvalidArgumentError(f"writer for {self.prefix} is already finished or aborted")
        try:
            self._data.flush()
            if self.sync:
                os.fsync(self._data.fileno())
            self._data.close()
            self._data = None
            index_path = index_filename(self.prefix)
            if os.path.exists(index_path):
                os.remove(index_path)  # never let the old index describe the new data
            os.replace(self._data_temp, self._data_path)
            index_temp = _temp_name(index_path)
            try:
                with open(index_temp, "xb") as sink:
                    write_index(sink, BundleHeader(num_shards=1), self._entries.values())
                    if self.sync:
                        sink.flush()
                        os.fsync(sink.fileno())
                os.replace(index_temp, index_path)
            except BaseException:
                _remove_quietly(index_temp)
                raise
            if self.sync:
                _fsync_dir(index_path)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.prefix

    def abort(self) -> None:
        """Discard everything written so far; the final names are left as they were."""
        if self._data is not None:
            self._data.close()
            self._data = None
        _remove_quietly(self._data_temp)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            self.abort()
        elif self._data is not None:
            self.finish()


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def write_index(sink: BinaryIO, header: BundleHeader, entries: Iterable[TensorInfo]) -> int:
    """Write the index table: header under ``b""``, then entries in bytewise key order."""
    keyed = sorted(((info.name.encode("utf-8", "surrogateescape"), info) for info in entries),
                   key=lambda pair: pair[0])
    table = TableBuilder(sink)
    table.add(b"", header.encode())
    for key, info in keyed:
        table.add(key, info.encode())
    return table.finish()


def save_mapping(tensors: Mapping[str, Any], prefix: str, *, sync: bool = True) -> str:
    """Validate every tensor first, then write them all in the mapping's order."""
    prepared = [prepare(name, value) for name, value in tensors.items()]
    seen: set[str] = set()
    for name, _, _ in prepared:
        if name in seen:
            raise InvalidArgumentError(f"duplicate tensor name {name!r}")
        seen.add(name)
    with BundleWriter(prefix, sync=sync) as writer:
        for name, array, dtype in prepared:
            writer.add(name, array, dtype)
    return writer.prefix
