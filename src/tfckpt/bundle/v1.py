"""Legacy V1 checkpoints (``Saver(write_version=V1)``, pre-2016 published models).

A V1 checkpoint is one table file ``PREFIX`` or several ``PREFIX-SSSSS-of-NNNNN``, each a
LevelDB-style table (:mod:`tfckpt.table`) of ``SavedTensorSlices`` records
(``protos/tfckpt/_proto/saved_tensor_slice.proto``)::

    key ""                          meta: per tensor {name, shape, dtype, slices stored here}
    key slice_key(name, slice)      data: {name, slice, TensorProto with the slice's values}

Every tensor is stored as slices (a whole tensor as one slice of full extents), keyed like
bundle slice entries. Values sit in TensorProto's typed repeated fields: ``float_val``,
``double_val``, ``int_val`` (int32 and the narrower ints, qint8/quint8/quint16/qint32),
``int64_val``, ``uint32_val``, ``uint64_val``, ``bool_val``, ``half_val`` (16-bit patterns),
``scomplex_val``/``dcomplex_val`` (real, imaginary pairs), ``string_val``. Table blocks carry
CRCs; there is no per-tensor checksum.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
from google.protobuf.message import DecodeError

from .. import storage
from .._proto import saved_tensor_slice_pb2
from ..dtypes import DType, from_enum
from ..errors import CorruptionError, NotFoundError, UnsupportedError
from ..table.reader import TableReader
from .entry import BundleHeader, TensorInfo, check_shape
from .naming import INDEX_SUFFIX, index_filename, prefix_of
from .slices import TensorSlice, decode_key, describe_key, encode_slice_key
from .store import RecordStore
from .validate import array_problem

__all__ = ["V1_SHARD_PATTERN", "V1Store", "is_v1", "sharded_pattern_files", "v1_files"]

V1_SHARD_PATTERN = "-?????-of-?????"
_SHARD_RE = re.compile(r"-\d{5}-of-\d{5}$")
_SHARDED_PREFIX_RE = re.compile(r"-\?{5}-of-\d{5}$")  # how TF1 records a sharded V1 save

# TensorProto field holding each dtype's values, and the numpy type they are parsed as.
_VALUE_FIELDS: dict[str, tuple[str, Any]] = {
    "float32": ("float_val", np.float32), "float64": ("double_val", np.float64),
    "int32": ("int_val", np.int32), "uint8": ("int_val", np.int32), "int16": ("int_val", np.int32),
    "int8": ("int_val", np.int32), "uint16": ("int_val", np.int32), "qint8": ("int_val", np.int32),
    "quint8": ("int_val", np.int32), "quint16": ("int_val", np.int32), "qint32": ("int_val", np.int32),
    "qint16": ("int_val", np.int32), "int64": ("int64_val", np.int64), "uint32": ("uint32_val", np.uint32),
    "uint64": ("uint64_val", np.uint64), "bool": ("bool_val", np.bool_),
    "float16": ("half_val", np.int32), "bfloat16": ("half_val", np.int32),
    "complex64": ("scomplex_val", np.float32), "complex128": ("dcomplex_val", np.float64),
}


def sharded_pattern_files(prefix: str, fs: storage.Filesystem | None = None) -> list[str] | None:
    """The paths matching TF1's sharded V1 prefix ``P-?????-of-NNNNN``, or ``None`` if ``prefix``
    is not one. This is the one pattern ever expanded: TensorFlow globs whatever it is given,
    but a prefix may come from a state file anyone can edit, and ``*`` or ``[ab]/[ab]/...``
    there could match any file, or cost time exponential in its length; ``P`` is literal."""
    match = _SHARDED_PREFIX_RE.search(prefix)
    if match is None:
        return None
    fs = fs or storage.filesystem_for(prefix)
    return sorted(fs.glob(storage.glob_escape(prefix[: match.start()]) + match.group(0)))


def v1_files(pattern: str, fs: storage.Filesystem | None = None) -> list[str]:
    """The table files of a V1 checkpoint (local or URL): ``pattern`` itself, the files matching
    TF1's sharded prefix ``P-?????-of-NNNNN`` (:func:`sharded_pattern_files`), or the shards
    ``pattern-NNNNN-of-NNNNN`` of a plain prefix. No other glob character is expanded."""
    fs = fs or storage.filesystem_for(pattern)
    if fs.isfile(pattern):
        return [pattern]
    candidates = sharded_pattern_files(pattern, fs)
    if candidates is None:
        candidates = fs.glob(storage.glob_escape(_SHARD_RE.sub("", pattern)) + V1_SHARD_PATTERN)
    # A V2 bundle's data file (`x.data-00000-of-00001` beside `x.index`) is never a V1 table,
    # whatever pattern found it (`x.data` + the shard pattern matches it).
    return sorted(path for path in candidates if fs.isfile(path) and not _v2_data_file(path, fs))


def _v2_data_file(path: str, fs: storage.Filesystem) -> bool:
    prefix = prefix_of(path)
    return prefix is not None and not path.endswith(INDEX_SUFFIX) and fs.exists(index_filename(prefix))


def is_v1(path: str, fs: storage.Filesystem | None = None) -> bool:
    return bool(v1_files(path, fs))


class V1Store(RecordStore):
    """A legacy V1 checkpoint as a :class:`~tfckpt.bundle.store.Store`: every tensor is a
    partitioned one (a whole tensor is one slice of full extents), its pieces' values in
    table records. Opening reads every file's metadata record.

    ``verify_checksums`` means what it means for a V2 bundle: tensor checksums, which V1
    records do not have; the table's block checksums are always checked (as a V2 index's).
    ``mmap`` is refused: values live inside protobuf records, which cannot be mapped."""

    def __init__(self, pattern: str, *, verify_checksums: bool = True, files: Sequence[str] | None = None,
                 mmap: bool | Literal["c"] = False) -> None:
        if mmap:
            raise UnsupportedError(f"{pattern}: mmap cannot map a V1 checkpoint (its values are stored "
                                   f"inside protobuf records); open it without mmap")
        files = v1_files(pattern) if files is None else list(files)  # given: found by the caller already
        if not files:
            raise NotFoundError(f"no V1 checkpoint matches {pattern!r}")
        self.prefix = pattern
        self.verify_checksums = verify_checksums
        self.index_name = files[0]
        self.header = BundleHeader(num_shards=len(files))
        self._tables: list[TableReader] = []
        self._sources: list[storage.ByteSource] = []
        self._entries: dict[str, TensorInfo] = {}
        self._slice_entries: dict[bytes, TensorInfo] = {}
        # Each tensor's slices, gathered over every file's metadata (a name may be listed any
        # number of times) and frozen into its TensorInfo once: linear in the records.
        pieces_of: dict[str, list[TensorSlice]] = {}
        fs = storage.filesystem_for(files[0])  # every file of one checkpoint is on one filesystem
        try:
            for number, path in enumerate(files):
                source = fs.open_source(path)
                self._sources.append(source)
                table = TableReader(source)
                self._tables.append(table)
                self._read_meta(number, table, pieces_of)
        except BaseException:
            self.close()
            raise
        for name, pieces in pieces_of.items():
            info = self._entries[name]
            self._entries[name] = TensorInfo(name, info.dtype, info.shape, slices=tuple(pieces))

    def _read_meta(self, number: int, table: TableReader, pieces_of: dict[str, list[TensorSlice]]) -> None:
        """Record the tensors ``table``'s metadata lists (dtype and shape in ``_entries``, their
        slices appended to ``pieces_of``) and each slice's data entry."""
        where = table.name
        value = table.get(b"")
        if value is None:
            raise CorruptionError(f"{where}: no metadata record (empty key) in this V1 checkpoint file")
        try:
            record = saved_tensor_slice_pb2.SavedTensorSlices.FromString(value)
        except DecodeError as exc:
            raise CorruptionError(f"{where}: metadata record is not a SavedTensorSlices: {exc}") from exc
        for meta in record.meta.tensor:
            dtype = from_enum(meta.type, f"{where}: tensor {meta.name!r}")
            shape = tuple(dim.size for dim in meta.shape.dim)
            check_shape(shape, f"{where}: tensor {meta.name!r}")
            pieces = tuple(TensorSlice.from_proto(s, shape, f"{where}: tensor {meta.name!r}") for s in meta.slice)
            previous = self._entries.get(meta.name)
            if previous is not None and (previous.dtype != dtype or previous.shape != shape):
                raise CorruptionError(f"{where}: tensor {meta.name!r} is {dtype.name}{list(shape)} here but "
                                      f"{previous.dtype.name}{list(previous.shape)} in another file")
            if previous is None:
                self._entries[meta.name] = TensorInfo(meta.name, dtype, shape)
                pieces_of[meta.name] = []
            pieces_of[meta.name] += pieces
            for piece in pieces:
                key = encode_slice_key(meta.name, piece)
                self._slice_entries[key] = TensorInfo(decode_key(key), dtype, piece.shape(shape), shard_id=number)

    # -- records ---------------------------------------------------------------------------

    def stored_entries(self) -> Iterator[tuple[str, TensorInfo | CorruptionError | UnsupportedError]]:
        for key, info in self.entries():
            yield decode_key(key), info

    # -- values ------------------------------------------------------------------------------

    def _record(self, info: TensorInfo) -> bytes:
        table = self._tables[info.shard_id]
        value = table.get(info.name.encode("utf-8", "surrogateescape"))
        if value is None:
            raise CorruptionError(f"{table.name}: slice {describe_key(info.name)!r}: listed in the metadata "
                                  f"but not stored")
        return value

    def check_stored(self, info: TensorInfo) -> None:
        # Values are protobuf fields of at least one byte each: a record shorter than its
        # element count cannot hold them, and is refused before anything is allocated.
        value = self._record(info)
        if len(value) < info.num_elements:
            raise CorruptionError(f"{self._tables[info.shard_id].name}: slice {describe_key(info.name)!r}: "
                                  f"{len(value)} bytes cannot hold {info.num_elements} values")

    def check_entry(self, info: TensorInfo) -> int:
        """Decode one stored slice completely (V1 has table block checksums, no per-tensor
        ones); return the bytes of its record. A shape numpy cannot hold (the rule readers
        apply, :func:`~tfckpt.bundle.validate.array_problem`) is checked as flat values, as
        V2 bundles stream such tensors' bytes: verifying builds no array it cannot make."""
        self.check_stored(info)
        shaped = array_problem(info.dtype, info.shape) is None
        _decode_values(self._parse(info).data.data, info.dtype, info.shape, self._where(info), shaped=shaped)
        return len(self._record(info))

    def _where(self, info: TensorInfo) -> str:
        return f"{self._tables[info.shard_id].name}: slice {describe_key(info.name)!r}"

    def _parse(self, info: TensorInfo) -> Any:
        try:
            return saved_tensor_slice_pb2.SavedTensorSlices.FromString(self._record(info))
        except DecodeError as exc:
            raise CorruptionError(f"{self._where(info)}: not a SavedTensorSlices record: {exc}") from exc

    def read_entry(self, info: TensorInfo) -> np.ndarray:
        return _decode_values(self._parse(info).data.data, info.dtype, info.shape, self._where(info))

    def debug_string(self) -> bytes:
        lines = []
        for name in sorted(self._entries):
            info = self._entries[name]
            count = len(info.slices)
            suffix = f", {count} slices" if count > 1 else ""
            lines.append(f"{name} (DT_{_DT_NAMES.get(info.dtype.name, info.dtype.name.upper())}) "
                         f"[{','.join(str(d) for d in info.shape)}]{suffix}\n")
        return "".join(lines).encode("utf-8", "surrogateescape")

    def close(self) -> None:
        for source in self._sources:
            source.close()
        self._sources = []


_DT_NAMES = {"float32": "FLOAT", "float64": "DOUBLE", "float16": "HALF"}


def _decode_values(proto: Any, dtype: DType, shape: tuple[int, ...], where: str, *, shaped: bool = True
                   ) -> np.ndarray:
    """The values of a TensorProto as ``dtype[shape]``; with ``shaped=False``, checked and
    decoded as a flat array of the same values (for shapes numpy cannot make)."""
    count = 1
    for dim in shape:
        count *= dim
    out_shape = shape if shaped else (count,)
    if dtype.name == "string":
        values = list(proto.string_val)
        if len(values) != count:
            raise CorruptionError(f"{where}: {len(values)} string values for shape {list(shape)}")
        out = np.empty(count, dtype=object)
        out[:] = values
        return out.reshape(out_shape)
    spec = _VALUE_FIELDS.get(dtype.name)
    if spec is None or dtype.as_numpy_dtype is None:
        raise UnsupportedError(f"{where}: V1 checkpoints cannot hold dtype {dtype.name}")
    field, parsed = spec
    container = getattr(proto, field)
    per_element = 2 if dtype.name.startswith("complex") else 1
    if len(container) != count * per_element:
        raise CorruptionError(f"{where}: {len(container)} values in {field} for {dtype.name}{list(shape)} "
                              f"(expected {count * per_element})")
    raw = np.fromiter(container, dtype=parsed, count=len(container))
    if field == "half_val":
        return raw.astype(np.uint16).view(dtype.as_numpy_dtype).reshape(out_shape)
    if per_element == 2:
        return raw.view(dtype.as_numpy_dtype).reshape(out_shape)
    return raw.astype(dtype.as_numpy_dtype).reshape(out_shape)
