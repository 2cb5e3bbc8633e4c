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
import re
import struct
from contextlib import ExitStack
from typing import Any

import numpy as np

from ..bundle.publish import publish_stream
from ..dtypes import BY_NAME, DType
from ..errors import CorruptionError
from ..filetypes import nesting_depth, parse_json
from ..storage import ByteSource, PathLike, filesystem_for
from . import SourceTensor, check_numpy_shape

__all__ = ["FROM_SAFETENSORS", "MAX_HEADER_BYTES", "MAX_JSON_DEPTH", "SAFETENSORS_DTYPES", "SafetensorsSink",
           "json_depth", "read_header", "source"]

SAFETENSORS_DTYPES = {  # TF dtype name -> safetensors dtype code
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64",
    "int32": "I32", "int16": "I16", "int8": "I8", "uint64": "U64", "uint32": "U32", "uint16": "U16",
    "uint8": "U8", "bool": "BOOL", "complex64": "C64", "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2",
}
FROM_SAFETENSORS = {code: name for name, code in SAFETENSORS_DTYPES.items()}
MAX_HEADER_BYTES = 100 << 20  # the same bound the reference implementation applies
HEADER_LENGTH = struct.Struct("<Q")


MAX_JSON_DEPTH = 8  # a valid header nests 3 deep (object, entry, shape); refused before parsing beyond this
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def json_depth(text: bytes) -> int:
    """How deep ``[``/``{`` nest in a JSON text, brackets inside strings not counted."""
    return nesting_depth(_JSON_STRING.sub(b'""', text), b"[{", b"]}")


def read_header(source: ByteSource) -> tuple[dict[str, Any], int]:
    """The parsed header of a safetensors file and the offset where its data starts."""
    where = source.name
    if source.size() < HEADER_LENGTH.size:
        raise CorruptionError(f"{where}: too short to be a safetensors file ({source.size()} bytes)")
    (length,) = HEADER_LENGTH.unpack(source.read_at(0, HEADER_LENGTH.size))
    if length > min(MAX_HEADER_BYTES, source.size() - HEADER_LENGTH.size):
        raise CorruptionError(f"{where}: header length {length} at offset 0 exceeds the file or the "
                              f"{MAX_HEADER_BYTES}-byte limit")
    text = source.read_at(HEADER_LENGTH.size, length)
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise CorruptionError(f"{where}: header at offset {HEADER_LENGTH.size} nests {depth} levels deep; a "
                              f"safetensors header nests 3 (at most {MAX_JSON_DEPTH} are parsed)")
    header = parse_json(text, f"{where}: header")
    if not isinstance(header, dict):
        raise CorruptionError(f"{where}: header is not a JSON object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CorruptionError(f"{where}: __metadata__ must map strings to strings, not {_shown(metadata)}")
    return header, HEADER_LENGTH.size + length


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _entry(where: str, entry: Any) -> tuple[DType, tuple[int, ...], int, int]:
    """A header entry's dtype, shape and data offsets, each checked as the safetensors library
    checks them: a known dtype code, non-negative integer dims, two ordered offsets."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise CorruptionError(f"{where}: a header entry has exactly dtype, shape and data_offsets, not "
                              f"{_shown(entry)}")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(code, str) or code not in FROM_SAFETENSORS:
        raise CorruptionError(f"{where}: dtype {_shown(code)} is none of {', '.join(FROM_SAFETENSORS)}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise CorruptionError(f"{where}: shape {_shown(shape)} is not a list of non-negative integers")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(v) for v in offsets)
            or offsets[0] > offsets[1]):
        raise CorruptionError(f"{where}: data_offsets {_shown(offsets)} is not [begin, end] with begin <= end")
    dtype = BY_NAME[FROM_SAFETENSORS[code]]
    check_numpy_shape(tuple(shape), dtype, where)
    return dtype, tuple(shape), offsets[0], offsets[1]


def source(path: PathLike, stack: ExitStack) -> list[SourceTensor]:
    """The tensors of a safetensors file; each is read (one ranged read) when asked for.

    The header is checked as strictly as the safetensors library checks it: the tensors'
    byte ranges, in offset order, tile the data section exactly (no gap, no overlap, nothing
    after), and each holds dtype x shape bytes."""
    where = os.fspath(path)
    data = filesystem_for(where).open_source(where)
    stack.callback(data.close)
    header, data_start = read_header(data)
    data_size = data.size() - data_start
    out = []
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"{data.name}: tensor {name!r}"
        dtype, shape, begin, end = _entry(where, entry)
        if end - begin != math.prod(shape) * dtype.itemsize:
            raise CorruptionError(f"{where}: data_offsets [{begin}, {end}] ({end - begin} bytes) cannot hold "
                                  f"{dtype.name}{list(shape)} ({math.prod(shape) * dtype.itemsize} bytes)")
        spans.append((begin, end, name))

        def read(dtype: DType = dtype, shape: tuple[int, ...] = shape, begin: int = begin) -> np.ndarray:
            assert dtype.as_numpy_dtype is not None
            value = np.empty(shape, dtype=dtype.as_numpy_dtype)
            if value.nbytes:
                data.readinto_at(data_start + begin, value.reshape(-1).view(np.uint8).data)
            return value

        out.append(SourceTensor(name, dtype, shape, read))
    reached = 0
    for begin, end, name in sorted(spans):
        if begin != reached:
            raise CorruptionError(f"{data.name}: tensor {name!r}: data_offsets [{begin}, {end}] "
                                  f"{'overlap' if begin < reached else 'leave a gap after'} the previous tensor's, "
                                  f"which end at {reached} (tensors must be contiguous)")
        reached = end
    if reached != data_size:
        raise CorruptionError(f"{data.name}: the tensors' data ends at {reached} but the data section "
                              f"(from offset {data_start}) holds {data_size} bytes")
    return out


class SafetensorsSink:
    """Writes the header for the planned tensors, then each tensor's bytes as it arrives."""

    def __init__(self, path: str, planned: list[tuple[str, DType, tuple[int, ...]]],
                 metadata: dict[str, str] | None = None) -> None:
        header: dict[str, Any] = {"__metadata__": {"format": "np", "converted_by": "tfckpt", **(metadata or {})}}
        offset = 0
        for name, dtype, shape in planned:
            size = math.prod(shape) * dtype.itemsize
            header[name] = {"dtype": SAFETENSORS_DTYPES[dtype.name], "shape": list(shape),
                            "data_offsets": [offset, offset + size]}
            offset += size
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)
        self._out = publish_stream(path)
        self._out.file.write(HEADER_LENGTH.pack(len(encoded)) + encoded)

    def add(self, name: str, value: np.ndarray, dtype: DType) -> None:
        assert dtype.as_numpy_dtype is not None
        self._out.file.write(np.ascontiguousarray(value, dtype=dtype.as_numpy_dtype).reshape(-1).view(np.uint8).data)

    def finish(self) -> None:
        self._out.publish()

    def abort(self) -> None:
        self._out.discard()
