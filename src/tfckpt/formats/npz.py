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
import os
import zipfile
from contextlib import ExitStack

import numpy as np

from ..dtypes import STRING, DType, as_dtype
from ..errors import CorruptionError
from ..storage import PathLike
from . import SourceTensor
from .files import StagedFile

__all__ = ["DTYPES_MEMBER", "NpzSink", "source"]

DTYPES_MEMBER = "__tfckpt_dtypes__"


def source(path: PathLike, stack: ExitStack) -> list[SourceTensor]:
    """The arrays of an ``.npz``: shapes and dtypes from each member's header, data on demand."""
    where = os.fspath(path)
    try:
        archive = stack.enter_context(np.load(where, allow_pickle=False))
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise CorruptionError(f"{where}: not a readable .npz archive: {exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile) or archive.zip is None:
        raise CorruptionError(f"{where}: a single .npy array, not an .npz archive")
    members = archive.zip
    dtypes: dict[str, str] = {}
    if DTYPES_MEMBER in archive.files:
        dtypes = json.loads(str(archive[DTYPES_MEMBER]))
    out = []
    for name in archive.files:
        if name == DTYPES_MEMBER:
            continue
        try:
            with members.open(name + ".npy") as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, raw_dtype = read_header(member)
        except (zipfile.BadZipFile, ValueError, KeyError, EOFError) as exc:
            raise CorruptionError(f"{where}: member {name!r} is not a readable .npy array: {exc}") from exc
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


class NpzSink:
    """One ``.npy`` member per tensor, streamed into the zip as it arrives."""

    def __init__(self, path: str) -> None:
        self._out = StagedFile(path)
        self._zip = zipfile.ZipFile(self._out.file, "w", allowZip64=True)
        self._dtypes: dict[str, str] = {}

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
        self._zip.close()
        self._out.publish()

    def abort(self) -> None:
        self._zip.close()
        self._out.discard()
