"""The safetensors format (huggingface/safetensors), read and written by tfckpt itself::

    header_size: fixed64 (little-endian)
    header: JSON {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
                  "__metadata__": {str: str}}, space-padded to a multiple of 8 bytes
    data: the tensors' row-major little-endian bytes, back to back, offsets relative to here

Not through the ``safetensors`` package, whose numpy API needs every tensor in memory to write
a file and cannot return float8 arrays; the tests check both directions against it.
"""

from __future__ import annotations

import json
import math
import os
import struct
from contextlib import ExitStack
from typing import Any

import numpy as np

from ..dtypes import BY_NAME, DType
from ..errors import CorruptionError
from ..storage import ByteSource, PathLike, open_source
from . import SourceTensor
from .files import StagedFile

__all__ = ["FROM_SAFETENSORS", "MAX_HEADER_BYTES", "SAFETENSORS_DTYPES", "SafetensorsSink", "read_header",
           "source"]

SAFETENSORS_DTYPES = {  # TF dtype name -> safetensors dtype code
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64",
    "int32": "I32", "int16": "I16", "int8": "I8", "uint64": "U64", "uint32": "U32", "uint16": "U16",
    "uint8": "U8", "bool": "BOOL", "complex64": "C64", "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2",
}
FROM_SAFETENSORS = {code: name for name, code in SAFETENSORS_DTYPES.items()}
MAX_HEADER_BYTES = 100 << 20  # the same bound the reference implementation applies
HEADER_LENGTH = struct.Struct("<Q")


def read_header(source: ByteSource) -> tuple[dict[str, Any], int]:
    """The parsed header of a safetensors file and the offset where its data starts."""
    where = source.name
    if source.size() < HEADER_LENGTH.size:
        raise CorruptionError(f"{where}: too short to be a safetensors file ({source.size()} bytes)")
    (length,) = HEADER_LENGTH.unpack(source.read_at(0, HEADER_LENGTH.size))
    if length > min(MAX_HEADER_BYTES, source.size() - HEADER_LENGTH.size):
        raise CorruptionError(f"{where}: header length {length} at offset 0 exceeds the file or the "
                              f"{MAX_HEADER_BYTES}-byte limit")
    try:
        header = json.loads(source.read_at(HEADER_LENGTH.size, length))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptionError(f"{where}: header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise CorruptionError(f"{where}: header is not a JSON object")
    return header, HEADER_LENGTH.size + length


def source(path: PathLike, stack: ExitStack) -> list[SourceTensor]:
    """The tensors of a safetensors file; each is read (one ranged read) when asked for."""
    data = open_source(os.fspath(path))
    stack.callback(data.close)
    header, data_start = read_header(data)
    data_size = data.size() - data_start
    out = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"{data.name}: tensor {name!r}"
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
            value = np.empty(shape, dtype=dtype.as_numpy_dtype)
            if value.nbytes:
                data.readinto_at(data_start + begin, value.reshape(-1).view(np.uint8).data)
            return value

        out.append(SourceTensor(name, dtype, shape, read))
    return out


class SafetensorsSink:
    """Writes the header for the planned tensors, then each tensor's bytes as it arrives."""

    def __init__(self, path: str, planned: list[tuple[str, DType, tuple[int, ...]]]) -> None:
        header: dict[str, Any] = {"__metadata__": {"format": "np", "converted_by": "tfckpt"}}
        offset = 0
        for name, dtype, shape in planned:
            size = math.prod(shape) * dtype.itemsize
            header[name] = {"dtype": SAFETENSORS_DTYPES[dtype.name], "shape": list(shape),
                            "data_offsets": [offset, offset + size]}
            offset += size
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)
        self._out = StagedFile(path)
        self._out.file.write(HEADER_LENGTH.pack(len(encoded)) + encoded)

    def add(self, name: str, value: np.ndarray, dtype: DType) -> None:
        assert dtype.as_numpy_dtype is not None
        self._out.file.write(np.ascontiguousarray(value, dtype=dtype.as_numpy_dtype).reshape(-1).view(np.uint8).data)

    def finish(self) -> None:
        self._out.publish()

    def abort(self) -> None:
        self._out.discard()
