"""numpy's ``.npz`` (a zip of ``.npy`` members), written member by member.

Dtypes the ``.npy`` format cannot name (bfloat16, float8, int4, quantized types) are stored
as same-width unsigned integers and listed in a ``__tfckpt_dtypes__`` member so they come back
as what they were. String tensors become ``bytes_`` arrays (numpy strips trailing NUL bytes
from those).

Read with numpy alone (``np.load``), such a tensor is its raw bits, e.g. a bfloat16 tensor is
a ``uint16`` array; the ``__tfckpt_dtypes__`` member (JSON text) names the real dtypes, and
``ml_dtypes`` views the bits as them::

    archive = np.load("weights.npz")
    real = json.loads(str(archive["__tfckpt_dtypes__"]))   # {"w": "bfloat16"}
    w = archive["w"].view(getattr(ml_dtypes, real["w"]))  # uint16 -> bfloat16, no copy

``tfckpt convert weights.npz ...`` (reading an ``.npz`` as a source) does this itself.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
import zlib
from contextlib import ExitStack

import numpy as np

from .. import storage
from ..bundle.publish import publish_stream
from ..dtypes import STRING, DType, as_dtype
from ..errors import CorruptionError, TfckptError, UnsupportedError
from ..filetypes import parse_json
from ..storage import PathLike
from . import SourceTensor, check_numpy_shape
from .safetensors import json_depth

__all__ = [
    "DTYPES_MEMBER",
    "MAX_DEFLATE_RATIO",
    "RESERVED_MEMBERS",
    "STRUCTURE_MEMBER",
    "NpzSink",
    "read_text_member",
    "source",
]

DTYPES_MEMBER = "__tfckpt_dtypes__"
STRUCTURE_MEMBER = "__tfckpt_structure__"  # see tfckpt.formats.structure
RESERVED_MEMBERS = (DTYPES_MEMBER, STRUCTURE_MEMBER)  # tfckpt's metadata, never tensors


MAX_DEFLATE_RATIO = 1032  # the most deflate expands (zlib technical details): more is a zip bomb
_READ_ERRORS = (zipfile.BadZipFile, ValueError, KeyError, EOFError, OSError, zlib.error)


LOCAL_HEADER = struct.Struct("<4s22xHH")  # zip APPNOTE 4.3.7: signature ... name length, extra length


def _member_bytes(members: zipfile.ZipFile, member: str, where: str) -> int:
    """The uncompressed size the zip claims for ``member``, refused when its compressed bytes
    are not all inside the archive, or could not expand to it: the directory's sizes are only
    claims, and numpy allocates the whole array a member's header names before reading it, so
    no read may allocate more than the bytes present can hold."""
    info = members.getinfo(member)
    fp = members.fp
    assert fp is not None
    archive_size = fp.seek(0, os.SEEK_END)
    fp.seek(info.header_offset)
    local = fp.read(LOCAL_HEADER.size)
    if len(local) < LOCAL_HEADER.size or not local.startswith(b"PK\x03\x04"):
        raise CorruptionError(f"{where}: member {member!r} has no local header at offset {info.header_offset}")
    _, name_length, extra_length = LOCAL_HEADER.unpack(local)
    data_start = info.header_offset + LOCAL_HEADER.size + name_length + extra_length
    if data_start + info.compress_size > archive_size:
        raise CorruptionError(f"{where}: member {member!r} claims {info.compress_size} compressed bytes at "
                              f"offset {data_start}, past the end of the {archive_size}-byte archive")
    most = info.compress_size if info.compress_type == zipfile.ZIP_STORED else info.compress_size * MAX_DEFLATE_RATIO
    if info.file_size > most:
        raise CorruptionError(f"{where}: member {member!r} claims {info.file_size} bytes from "
                              f"{info.compress_size} compressed bytes")
    return info.file_size


def _text_member(archive: np.lib.npyio.NpzFile, member: str, where: str) -> str | None:
    """The one string a tfckpt metadata member holds, or None if the archive has no such member."""
    if member not in archive.files:
        return None
    assert archive.zip is not None
    what = f"{where}: member {member!r}"
    try:
        _member_bytes(archive.zip, member + ".npy", where)
        value = archive[member]
    except _READ_ERRORS as exc:
        raise CorruptionError(f"{what} is not a readable .npy array: {exc}") from exc
    if value.shape != () or value.dtype.kind != "U":
        raise CorruptionError(f"{what} should hold one string (JSON), not {value.dtype}{list(value.shape)}")
    return str(value)


def read_text_member(path: PathLike, member: str) -> str | None:
    """The string held by tfckpt's metadata ``member`` of the ``.npz`` at ``path`` (None if absent)."""
    where = os.fspath(path)
    with ExitStack() as stack:
        archive = _open_archive(where, stack)
        return _text_member(archive, member, where)


def _open_archive(where: str, stack: ExitStack) -> np.lib.npyio.NpzFile:
    """The ``.npz`` at ``where`` (local or a URL: a seekable file of the filesystem, read in
    ranges), closed with ``stack``."""
    file = stack.enter_context(storage.filesystem_for(where).open_file(where, "rb"))
    try:
        archive = stack.enter_context(np.load(file, allow_pickle=False))
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise CorruptionError(f"{where}: not a readable .npz archive: {exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile) or archive.zip is None:
        raise CorruptionError(f"{where}: a single .npy array, not an .npz archive")
    return archive


def _dtype_names(archive: np.lib.npyio.NpzFile, where: str) -> dict[str, str]:
    """The ``__tfckpt_dtypes__`` member: a JSON object naming the TensorFlow dtype of members
    stored as same-width integers."""
    found = _text_member(archive, DTYPES_MEMBER, where)
    if found is None:
        return {}
    what = f"{where}: member {DTYPES_MEMBER!r}"
    text = found.encode("utf-8", "surrogatepass")
    if json_depth(text) > 1:
        raise CorruptionError(f"{what} should hold a flat JSON object, not one nested {json_depth(text)} deep")
    names = parse_json(text, what)
    if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
        raise CorruptionError(f"{what} should map member names to dtype names, not {type(names).__name__}")
    return names


def _dtype_of(name: str, raw_dtype: np.dtype, dtype_names: dict[str, str], where: str) -> DType:
    """The TensorFlow dtype of a member: the one ``__tfckpt_dtypes__`` names, which must have
    the stored width, else the one of its numpy dtype."""
    what = f"{where}: member {name!r}"
    if raw_dtype.hasobject:
        raise CorruptionError(f"{what} holds Python objects (pickles), which tfckpt does not load")
    tf_name = dtype_names.get(name)
    if tf_name is None:
        try:
            return STRING if raw_dtype.kind in "SU" else as_dtype(raw_dtype)
        except TfckptError as exc:
            raise UnsupportedError(f"{what}: {exc}") from None
    try:
        dtype = as_dtype(tf_name)
    except TfckptError as exc:
        raise CorruptionError(f"{what}: {DTYPES_MEMBER} names {tf_name!r}: {exc}") from None
    if dtype == STRING:
        fits = raw_dtype.kind in "SU"
    else:  # the same-width unsigned integers tfckpt writes, or the type itself
        fits = raw_dtype == dtype.as_numpy_dtype or (raw_dtype.kind == "u" and raw_dtype.itemsize == dtype.itemsize)
    if not fits:
        raise CorruptionError(f"{what} is stored as {raw_dtype} but {DTYPES_MEMBER} says {tf_name}")
    return dtype


def source(path: PathLike, stack: ExitStack) -> list[SourceTensor]:
    """The arrays of an ``.npz``: shapes and dtypes from each member's header (checked against
    the member's size, and that against its compressed size), data on demand."""
    where = os.fspath(path)
    archive = _open_archive(where, stack)
    members = archive.zip
    assert members is not None  # checked by _open_archive
    dtype_names = _dtype_names(archive, where)
    out = []
    for name in archive.files:
        if name in RESERVED_MEMBERS:
            continue
        try:
            size = _member_bytes(members, name + ".npy", where)
            with members.open(name + ".npy") as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, raw_dtype = read_header(member)
                header_bytes = member.tell()
        except _READ_ERRORS as exc:
            raise CorruptionError(f"{where}: member {name!r} is not a readable .npy array: {exc}") from exc
        dtype = _dtype_of(name, raw_dtype, dtype_names, where)
        check_numpy_shape(shape, dtype, f"{where}: member {name!r}")
        if size - header_bytes != math.prod(shape) * raw_dtype.itemsize:
            raise CorruptionError(f"{where}: member {name!r} claims {raw_dtype}{list(shape)} "
                                  f"({math.prod(shape) * raw_dtype.itemsize} bytes) but holds "
                                  f"{size - header_bytes} bytes after its {header_bytes}-byte header")

        def read(name: str = name, dtype: DType = dtype) -> np.ndarray:
            try:
                value: np.ndarray = np.asarray(archive[name])
            except _READ_ERRORS as exc:
                raise CorruptionError(f"{where}: member {name!r}: {exc}") from exc
            if not value.dtype.isnative:  # np.savez keeps '>f4': the view below needs native bytes
                value = value.astype(value.dtype.newbyteorder("="))
            if dtype == STRING:
                flat = np.empty(value.size, dtype=object)
                flat[:] = [bytes(v) if value.dtype.kind == "S" else str(v).encode() for v in value.flat]
                return flat.reshape(value.shape)
            if dtype.as_numpy_dtype is not None and value.dtype != dtype.as_numpy_dtype:
                return np.asarray(value.view(dtype.as_numpy_dtype))
            return value

        out.append(SourceTensor(name, dtype, tuple(shape), read))
    return out


class NpzSink:
    """One ``.npy`` member per tensor, streamed into the zip as it arrives."""

    def __init__(self, path: str, structure: str | None = None) -> None:
        self._out = publish_stream(path)
        self._zip = zipfile.ZipFile(self._out.file, "w", allowZip64=True)
        self._dtypes: dict[str, str] = {}
        self._structure = structure  # the JSON text of STRUCTURE_MEMBER, if any

    def add(self, name: str, value: np.ndarray, dtype: DType) -> None:
        if dtype == STRING:
            value = np.array([bytes(v) for v in value.flat], dtype=np.bytes_).reshape(value.shape)
            self._dtypes[name] = "string"
        else:
            assert dtype.as_numpy_dtype is not None
            value = np.asarray(value, dtype=dtype.as_numpy_dtype)
            if value.dtype.type.__module__.startswith("ml_dtypes") or dtype.is_quantized:
                value = value.view(f"u{value.dtype.itemsize}")  # numpy's .npy format cannot name these types
                self._dtypes[name] = dtype.name
        with self._zip.open(name + ".npy", "w", force_zip64=True) as member:
            # asarray, not ascontiguousarray: the latter turns 0-d arrays into 1-d ones.
            np.lib.format.write_array(member, np.asarray(value, order="C"), allow_pickle=False)

    def finish(self) -> None:
        if self._dtypes:
            with self._zip.open(DTYPES_MEMBER + ".npy", "w") as member:
                np.lib.format.write_array(member, np.array(json.dumps(self._dtypes)), allow_pickle=False)
        if self._structure is not None:
            with self._zip.open(STRUCTURE_MEMBER + ".npy", "w") as member:
                np.lib.format.write_array(member, np.array(self._structure), allow_pickle=False)
        self._zip.close()
        self._out.publish()

    def abort(self) -> None:
        self._zip.close()
        self._out.discard()
