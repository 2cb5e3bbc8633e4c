"""Converting between TF checkpoints, safetensors and ``.npz``, one tensor at a time.

Formats are chosen by path: ``*.safetensors``, ``*.npz``, anything else is a TF checkpoint
(prefix, file or directory; written as a checkpoint prefix).

safetensors layout (huggingface/safetensors)::

    header_size: fixed64 (little-endian)
    header: JSON {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
                  "__metadata__": {str: str}}, space-padded to a multiple of 8 bytes
    data: the tensors' row-major little-endian bytes, back to back, offsets relative to here

tfckpt reads and writes this layout itself rather than through the ``safetensors`` package,
whose numpy API needs every tensor in memory to write a file and cannot return float8
arrays; the tests check both directions against the real package.

``.npz`` files are written member by member; dtypes numpy's format cannot name (bfloat16,
float8, int4, ...) are stored as same-width unsigned integers and listed in a
``__tfckpt_dtypes__`` member so they come back as what they were. String tensors become
``bytes_`` arrays (numpy strips trailing NUL bytes from those).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import math
import os
import re
import struct
import zipfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .api import load_checkpoint
from .bundle.graph import ATTRIBUTES_MARKER, OBJECT_GRAPH_KEY, VARIABLE_VALUE
from .bundle.writer import BundleWriter
from .dtypes import BY_NAME, STRING, DType, as_dtype
from .errors import CorruptionError, InvalidArgumentError, TfckptError
from .storage import ByteSource, PathLike, open_source

__all__ = [
    "ATTRIBUTE_SUFFIX",
    "FORMATS",
    "FROM_SAFETENSORS",
    "MAX_SAFETENSORS_HEADER",
    "NPZ_DTYPES_MEMBER",
    "SAFETENSORS_DTYPES",
    "ConvertReport",
    "Progress",
    "SourceTensor",
    "convert",
    "detect_format",
    "read_safetensors_header",
]

SAFETENSORS_DTYPES = {  # TF dtype name -> safetensors dtype code
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64",
    "int32": "I32", "int16": "I16", "int8": "I8", "uint64": "U64", "uint32": "U32", "uint16": "U16",
    "uint8": "U8", "bool": "BOOL", "complex64": "C64", "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2",
}
FROM_SAFETENSORS = {code: name for name, code in SAFETENSORS_DTYPES.items()}
MAX_SAFETENSORS_HEADER = 100 << 20  # the same bound the reference implementation applies
NPZ_DTYPES_MEMBER = "__tfckpt_dtypes__"
ATTRIBUTE_SUFFIX = f"/{ATTRIBUTES_MARKER}/{VARIABLE_VALUE}"

Progress = Callable[[int, int, int, int], None]  # tensors done, tensors total, bytes done, bytes total


FORMATS = ("checkpoint", "safetensors", "npz")


def detect_format(path: PathLike, *, writing: bool = False) -> str:
    """``safetensors`` or ``npz`` by extension, otherwise ``checkpoint``. A destination whose
    name has another extension (``out.txt``) is refused rather than guessed: it would become
    ``out.txt.index``."""
    name = os.fspath(path).lower()
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith(".npz"):
        return "npz"
    stem, dot, extension = os.path.basename(name.rstrip("/")).rpartition(".")
    if writing and dot and stem and not extension.startswith("ckpt") and not extension.isdigit():
        raise InvalidArgumentError(
            f"cannot tell which format to write from the name {os.fspath(path)!r}: use a name ending in "
            f".safetensors or .npz, a checkpoint prefix (e.g. out/model.ckpt), or say it with to= (--to)")
    return "checkpoint"


@dataclass
class SourceTensor:
    """A tensor of the source, described before its value is read."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    read: Callable[[], np.ndarray]
    optimizer_state: bool = False
    object_path: str | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * max(self.dtype.itemsize, 1)


@dataclass
class ConvertReport:
    source: str
    destination: str
    written: list[tuple[str, str]] = field(default_factory=list)  # (source name, destination name)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source name, reason)
    warnings: list[str] = field(default_factory=list)  # e.g. a pattern that matched no name


# ---- sources -------------------------------------------------------------------------------

def _checkpoint_source(path: PathLike, stack: ExitStack) -> list[SourceTensor]:
    reader = stack.enter_context(load_checkpoint(path))
    try:
        objects = reader.object_tensors()
    except TfckptError:
        objects = {}
    out = []
    for info in reader.infos():
        described = objects.get(info.name)
        out.append(SourceTensor(
            info.name, info.dtype, info.shape, functools.partial(reader.read_array, info.name),
            optimizer_state=bool(described and described.optimizer_state),
            object_path="/".join(described.path) if described and described.attribute == VARIABLE_VALUE else None))
    return out


def read_safetensors_header(source: ByteSource) -> tuple[dict[str, Any], int]:
    """The parsed header of a safetensors file and the offset where its data starts."""
    where = source.name
    if source.size() < 8:
        raise CorruptionError(f"{where}: too short to be a safetensors file ({source.size()} bytes)")
    (length,) = struct.unpack("<Q", source.read_at(0, 8))
    if length > min(MAX_SAFETENSORS_HEADER, source.size() - 8):
        raise CorruptionError(f"{where}: header length {length} at offset 0 exceeds the file or the "
                              f"{MAX_SAFETENSORS_HEADER}-byte limit")
    try:
        header = json.loads(source.read_at(8, length))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptionError(f"{where}: header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise CorruptionError(f"{where}: header is not a JSON object")
    return header, 8 + length


def _safetensors_source(path: PathLike, stack: ExitStack) -> list[SourceTensor]:
    source = open_source(os.fspath(path))
    stack.callback(source.close)
    header, data_start = read_safetensors_header(source)
    data_size = source.size() - data_start
    out = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"{source.name}: tensor {name!r}"
        try:
            dtype = BY_NAME[FROM_SAFETENSORS[entry["dtype"]]]
            shape = tuple(int(d) for d in entry["shape"])
            begin, end = (int(v) for v in entry["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptionError(f"{where}: bad header entry {entry!r} ({exc})") from None
        if any(d < 0 for d in shape) or not 0 <= begin <= end <= data_size:
            raise CorruptionError(f"{where}: offsets [{begin}, {end}] outside the {data_size}-byte data section")
        if end - begin != math.prod(shape) * dtype.itemsize:
            raise CorruptionError(f"{where}: {end - begin} bytes cannot hold {dtype.name}{list(shape)}")

        def read(dtype: DType = dtype, shape: tuple[int, ...] = shape, begin: int = begin) -> np.ndarray:
            assert dtype.as_numpy_dtype is not None
            out = np.empty(shape, dtype=dtype.as_numpy_dtype)
            if out.nbytes:
                source.readinto_at(data_start + begin, out.reshape(-1).view(np.uint8).data)
            return out

        out.append(SourceTensor(name, dtype, shape, read))
    return out


def _npz_source(path: PathLike, stack: ExitStack) -> list[SourceTensor]:
    try:
        archive = stack.enter_context(np.load(os.fspath(path), allow_pickle=False))
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise CorruptionError(f"{os.fspath(path)}: not a readable .npz archive: {exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile) or archive.zip is None:
        raise CorruptionError(f"{os.fspath(path)}: a single .npy array, not an .npz archive")
    members = archive.zip
    dtypes: dict[str, str] = {}
    if NPZ_DTYPES_MEMBER in archive.files:
        dtypes = json.loads(str(archive[NPZ_DTYPES_MEMBER]))
    out = []
    for name in archive.files:
        if name == NPZ_DTYPES_MEMBER:
            continue
        # Shapes and dtypes come from each member's .npy header; the data is read on demand.
        try:
            with members.open(name + ".npy") as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, raw_dtype = read_header(member)
        except (zipfile.BadZipFile, ValueError, KeyError, EOFError) as exc:
            raise CorruptionError(f"{os.fspath(path)}: member {name!r} is not a readable .npy array: {exc}") from exc
        tf_name = dtypes.get(name)
        dtype = as_dtype(tf_name) if tf_name else (STRING if raw_dtype.kind in "SU" else as_dtype(raw_dtype))

        def read(name: str = name, dtype: DType = dtype) -> np.ndarray:
            value: np.ndarray = np.asarray(archive[name])
            if dtype == STRING:
                flat = np.empty(value.size, dtype=object)
                flat[:] = [bytes(v) if value.dtype.kind == "S" else str(v).encode() for v in value.flat]
                return flat.reshape(value.shape)
            if dtype.as_numpy_dtype is not None and value.dtype != dtype.as_numpy_dtype:
                return np.asarray(value.view(dtype.as_numpy_dtype))
            return value

        out.append(SourceTensor(name, dtype, tuple(shape), read))
    return out


# ---- destinations --------------------------------------------------------------------------

class _SafetensorsWriter:
    def __init__(self, path: str, plan: list[tuple[str, DType, tuple[int, ...]]]) -> None:
        self.path = path
        header: dict[str, Any] = {"__metadata__": {"format": "np", "converted_by": "tfckpt"}}
        offset = 0
        for name, dtype, shape in plan:
            size = math.prod(shape) * dtype.itemsize
            header[name] = {"dtype": SAFETENSORS_DTYPES[dtype.name], "shape": list(shape),
                            "data_offsets": [offset, offset + size]}
            offset += size
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)
        self.temp = f"{path}.tmp{os.getpid()}"
        self.file = open(self.temp, "wb")  # noqa: SIM115 - closed in finish()/abort()
        self.file.write(struct.pack("<Q", len(encoded)) + encoded)

    def add(self, name: str, value: np.ndarray, dtype: DType) -> None:
        assert dtype.as_numpy_dtype is not None
        self.file.write(np.ascontiguousarray(value, dtype=dtype.as_numpy_dtype).reshape(-1).view(np.uint8).data)

    def finish(self) -> None:
        self.file.close()
        os.replace(self.temp, self.path)

    def abort(self) -> None:
        self.file.close()
        os.remove(self.temp)


class _NpzWriter:
    def __init__(self, path: str) -> None:
        self.path = path
        self.temp = f"{path}.tmp{os.getpid()}"
        self.zip = zipfile.ZipFile(self.temp, "w", allowZip64=True)
        self.dtypes: dict[str, str] = {}

    def add(self, name: str, value: np.ndarray, dtype: DType) -> None:
        if dtype == STRING:
            value = np.array([bytes(v) for v in value.flat], dtype=np.bytes_).reshape(value.shape)
            self.dtypes[name] = "string"
        else:
            assert dtype.as_numpy_dtype is not None
            value = np.asarray(value, dtype=dtype.as_numpy_dtype)
            if value.dtype.type.__module__.startswith("ml_dtypes") or dtype.is_quantized:
                value = value.view(f"u{value.dtype.itemsize}")  # numpy's .npy format cannot name these types
                self.dtypes[name] = dtype.name
        with self.zip.open(name + ".npy", "w", force_zip64=True) as member:
            # asarray, not ascontiguousarray: the latter turns 0-d arrays into 1-d ones.
            np.lib.format.write_array(member, np.asarray(value, order="C"), allow_pickle=False)

    def finish(self) -> None:
        if self.dtypes:
            with self.zip.open(NPZ_DTYPES_MEMBER + ".npy", "w") as member:
                np.lib.format.write_array(member, np.array(json.dumps(self.dtypes)), allow_pickle=False)
        self.zip.close()
        os.replace(self.temp, self.path)

    def abort(self) -> None:
        self.zip.close()
        os.remove(self.temp)


class _CheckpointDestination:
    def __init__(self, prefix: str) -> None:
        self.writer = BundleWriter(prefix)

    def add(self, name: str, value: np.ndarray, dtype: DType) -> None:
        self.writer.add(name, value, dtype)

    def finish(self) -> None:
        self.writer.finish()

    def abort(self) -> None:
        self.writer.abort()


# ---- the conversion ------------------------------------------------------------------------

def _map_name(tensor: SourceTensor, object_paths: bool, strip_attributes: bool,
              rename: Sequence[tuple[re.Pattern[str], str]], used: set[str]) -> str:
    name = tensor.object_path if object_paths and tensor.object_path else tensor.name
    if strip_attributes and name.endswith(ATTRIBUTE_SUFFIX):
        name = name[: -len(ATTRIBUTE_SUFFIX)]
    for pattern, replacement in rename:
        name, count = pattern.subn(replacement, name)
        if count:
            used.add(pattern.pattern)
    return name


def convert(source: PathLike, destination: PathLike, *, object_paths: bool = False,
            strip_attributes: bool = False, rename: Sequence[tuple[str, str]] = (),
            include: Sequence[str] = (), exclude: Sequence[str] = (), drop_optimizer: bool = False,
            drop_save_counter: bool = False, drop_object_graph: bool | None = None,
            cast: dict[str, str] | None = None, progress: Progress | None = None,
            to: str | None = None) -> ConvertReport:
    """Copy tensors from ``source`` to ``destination``, converting format, names and dtypes.

    Parameters
    ----------
    object_paths:
        Name TF2 tensors by object path (``model/dense/kernel``) instead of by key.
    strip_attributes:
        Remove the ``/.ATTRIBUTES/VARIABLE_VALUE`` suffix of TF2 keys.
    rename:
        ``(regex, replacement)`` pairs applied in order to every name (``re.sub``).
    include, exclude:
        Glob patterns on the source names (a TF2 tensor's key or its object path);
        ``include`` keeps only matches.
    drop_optimizer, drop_save_counter:
        Leave out optimizer state and slots, or the TF2 ``save_counter``.
    drop_object_graph:
        Leave out ``_CHECKPOINTABLE_OBJECT_GRAPH``. Default: when writing safetensors/npz, or
        when names change (its keys would no longer match).
    cast:
        ``{source dtype name: destination dtype name}``, e.g. ``{"float32": "bfloat16"}``.
    progress:
        Called after each tensor with (tensors done, total, bytes done, total).
    to:
        The destination's format (one of ``FORMATS``) when its name does not say it.

    Returns a report of what was written under which name, what was skipped and why, and
    warnings (a rename, include or exclude pattern that matched no name).
    Tensors are read and written one at a time, so memory stays bounded by the largest one.

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> src = tfckpt.save({"net/w/.ATTRIBUTES/VARIABLE_VALUE": np.ones(2, np.float32)}, os.path.join(d, "ck"))
    >>> report = convert(src, os.path.join(d, "w.safetensors"), strip_attributes=True)
    >>> report.written
    [('net/w/.ATTRIBUTES/VARIABLE_VALUE', 'net/w')]
    """
    source, destination = os.fspath(source), os.fspath(destination)
    rules = [(re.compile(pattern), replacement) for pattern, replacement in rename]
    casts = {as_dtype(a).name: as_dtype(b) for a, b in (cast or {}).items()}
    if to is not None and to not in FORMATS:
        raise InvalidArgumentError(f"unknown format {to!r}; choose from {', '.join(FORMATS)}")
    fmt = to or detect_format(destination, writing=True)
    report = ConvertReport(source, destination)
    used: set[str] = set()  # the patterns that matched at least one name
    with ExitStack() as stack:
        opener = {"safetensors": _safetensors_source, "npz": _npz_source}.get(detect_format(source),
                                                                             _checkpoint_source)
        tensors = opener(source, stack)
        renamed = object_paths or strip_attributes or bool(rules)
        if drop_object_graph is None:
            drop_object_graph = fmt != "checkpoint" or renamed
        plan: list[tuple[SourceTensor, str, DType]] = []
        taken: dict[str, str] = {}
        for tensor in tensors:
            reason = None
            seen_as = [tensor.name] if tensor.object_path is None else [tensor.name, tensor.object_path]
            included = {p for p in include if any(fnmatch.fnmatchcase(n, p) for n in seen_as)}
            excluded = {p for p in exclude if any(fnmatch.fnmatchcase(n, p) for n in seen_as)}
            used |= included | excluded
            if include and not included:
                reason = "not included"
            elif excluded:
                reason = "excluded"
            elif drop_optimizer and tensor.optimizer_state:
                reason = "optimizer state"
            elif drop_save_counter and tensor.name.split("/")[0] == "save_counter":
                reason = "save_counter"
            elif drop_object_graph and tensor.name == OBJECT_GRAPH_KEY:
                reason = "object graph (TF-only metadata)"
            if reason:
                report.skipped.append((tensor.name, reason))
                continue
            target = casts.get(tensor.dtype.name, tensor.dtype)
            if fmt == "safetensors" and target.name not in SAFETENSORS_DTYPES:
                report.skipped.append((tensor.name, f"safetensors cannot store {target.name}"))
                continue
            if target.as_numpy_dtype is None:
                report.skipped.append((tensor.name, f"values of dtype {target.name} cannot be converted"))
                continue
            name = _map_name(tensor, object_paths, strip_attributes, rules, used)
            if name in taken:
                raise InvalidArgumentError(f"{tensor.name!r} and {taken[name]!r} would both be written as {name!r}")
            taken[name] = tensor.name
            plan.append((tensor, name, target))
        for kind, patterns in (("rename", [p for p, _ in rename]), ("include", include), ("exclude", exclude)):
            for pattern in patterns:
                if pattern not in used:
                    hint = "" if object_paths or kind != "rename" else \
                        "; renames apply to checkpoint keys unless object_paths (--object-paths) is set"
                    report.warnings.append(f"{kind} pattern {pattern!r} matched no tensor{hint}")
        if fmt == "safetensors":
            sink: Any = _SafetensorsWriter(destination, [(n, d, t.shape) for t, n, d in plan])
        elif fmt == "npz":
            sink = _NpzWriter(destination)
        else:
            sink = _CheckpointDestination(destination)
        total_bytes = sum(t.nbytes for t, _, _ in plan)
        done_bytes = 0
        try:
            for count, (tensor, name, target) in enumerate(plan, 1):
                value = tensor.read()
                if target != tensor.dtype:
                    assert target.as_numpy_dtype is not None
                    value = value.astype(target.as_numpy_dtype)
                sink.add(name, value, target)
                report.written.append((tensor.name, name))
                done_bytes += tensor.nbytes
                if progress is not None:
                    progress(count, len(plan), done_bytes, total_bytes)
        except BaseException:
            sink.abort()
            raise
        sink.finish()
    return report

