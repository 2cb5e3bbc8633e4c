"""Low-level encodings shared by the table and bundle layers.

Byte layouts (all little-endian, as in LevelDB ``util/coding.h``)::

    varint:   unsigned LEB128, 7 bits per byte, low group first, high bit = "more follows";
              at most 5 bytes for a varint32, 10 for a varint64
    fixed32:  4-byte little-endian unsigned ("<I")
    fixed64:  8-byte little-endian unsigned ("<Q")

Checksums are CRC-32C (Castagnoli). Stored checksums are *masked* (LevelDB ``crc32c::Mask``)
so that a CRC computed over data that itself contains CRCs does not degenerate::

    mask(c)   = rotate_right(c, 15) + MASK_DELTA   (mod 2**32)
"""

from __future__ import annotations

import struct

import crc32c as _crc32c
import numpy as np

from .errors import CorruptionError

__all__ = [
    "FIXED32",
    "FIXED64",
    "MASK_DELTA",
    "MAX_VARINT32_BYTES",
    "MAX_VARINT64_BYTES",
    "BytesLike",
    "crc32c",
    "crc32c_spans",
    "decode_varint",
    "encode_varint",
    "encode_varints",
    "mask",
    "mask_many",
    "masked_crc32c",
    "put_rows",
    "put_spans",
    "unmask",
    "unmask_many",
    "varint_lengths",
    "words_at",
]

BytesLike = bytes | bytearray | memoryview

MASK_DELTA = 0xA282EAD8  # leveldb util/crc32c.h kMaskDelta
MAX_VARINT32_BYTES = 5
MAX_VARINT64_BYTES = 10
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF
_SPAN_CHUNK_BYTES = 1 << 20

FIXED32 = struct.Struct("<I")
FIXED64 = struct.Struct("<Q")


def crc32c(data: BytesLike, crc: int = 0) -> int:
    """CRC-32C of ``data``, continuing from a previous (unmasked) ``crc``.

    Examples
    --------
    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    return int(_crc32c.crc32c(data, crc))


def masked_crc32c(data: BytesLike) -> int:
    """``mask(crc32c(data))`` in one call: the checksum as a bundle entry stores it (the
    writer computes one per tensor, so the saved call matters for many small tensors).

    Examples
    --------
    >>> masked_crc32c(b"123456789") == mask(crc32c(b"123456789"))
    True
    """
    return mask(_crc32c.crc32c(data))


def mask(crc: int) -> int:
    """Mask a CRC for storage (LevelDB ``crc32c::Mask``)."""
    crc &= _U32
    return ((((crc >> 15) | (crc << 17)) & _U32) + MASK_DELTA) & _U32


def unmask(masked: int) -> int:
    """Invert :func:`mask`."""
    rot = (masked - MASK_DELTA) & _U32
    return ((rot >> 17) | (rot << 15)) & _U32


def unmask_many(masked: np.ndarray) -> np.ndarray:
    """:func:`unmask` of each element (a uint32 array)."""
    rot = masked.astype(np.uint32) - np.uint32(MASK_DELTA)
    return (rot >> np.uint32(17)) | (rot << np.uint32(15))


def mask_many(crcs: np.ndarray) -> np.ndarray:
    """:func:`mask` of each element (a uint32 array)."""
    crc = crcs.astype(np.uint32)
    return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(MASK_DELTA)


def crc32c_spans(data: memoryview, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The CRC32C of each ``data[starts[i]:ends[i]]``, as a uint32 array (one C call per span
    and no Python integer arithmetic: thousands of small tensors are checked at a time)."""
    spans = zip(starts.tolist(), ends.tolist())
    return np.fromiter((_crc32c.crc32c(data[a:e]) for a, e in spans), dtype=np.uint32, count=len(starts))


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer below 2**64 as a varint."""
    if 0 <= value < 0x80:  # one and two bytes cover most lengths and offsets in an index
        return bytes((value,))
    if 0 <= value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if 0 <= value < 0x200000:  # offsets in a data file of up to 2 MiB
        return bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, value >> 14))
    if not 0 <= value <= _U64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint_lengths(values: np.ndarray) -> np.ndarray:
    """The length in bytes of each value's varint (an array of integers in ``[0, 2**63)``)."""
    values = np.asarray(values, dtype=np.int64)
    out = np.ones(len(values), dtype=np.int64)
    for bits in range(7, 63, 7):
        more = values >> bits != 0
        if not more.any():
            break
        out += more
    return out


def encode_varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The varints of many values at once: a uint8 matrix whose row ``i`` starts with the
    varint of ``values[i]`` (zero-padded), and the varints' lengths.

    Examples
    --------
    >>> rows, lengths = encode_varints(np.array([1, 300]))
    >>> [bytes(row[:n]) for row, n in zip(rows, lengths)] == [encode_varint(1), encode_varint(300)]
    True
    """
    values = np.asarray(values, dtype=np.int64)
    lengths = varint_lengths(values)
    width = int(lengths.max()) if len(values) else 1
    columns = np.arange(width)
    groups = (values[:, None] >> (7 * columns)) & 0x7F
    more = columns < (lengths - 1)[:, None]  # the high bit: another byte follows
    return (groups | (more << 7)).astype(np.uint8), lengths


def put_rows(out: np.ndarray, at: np.ndarray, rows: np.ndarray, lengths: np.ndarray) -> None:
    """Write the first ``lengths[i]`` bytes of ``rows[i]`` (a uint8 matrix) to ``out`` at
    ``at[i]``, for every row at once (fields of many records, each a few bytes)."""
    used = np.arange(rows.shape[1]) < lengths[:, None]
    out[(at[:, None] + np.arange(rows.shape[1]))[used]] = rows[used]


def put_spans(out: np.ndarray, at: np.ndarray, data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> None:
    """Copy each ``data[starts[i]:starts[i] + lengths[i]]`` to ``out[at[i]:]``: many short
    spans with one index array over the bytes of up to 1 MiB of them at a time, a longer
    span with one slice assignment."""
    ends = np.cumsum(lengths)
    first, n = 0, len(lengths)
    while first < n:
        done = int(ends[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(ends, done + _SPAN_CHUNK_BYTES, side="right")))
        if last == first + 1:
            a, b, size = int(at[first]), int(starts[first]), int(lengths[first])
            out[a:a + size] = data[b:b + size]
        else:
            count = lengths[first:last]
            step = np.arange(int(ends[last - 1]) - done) - np.repeat(ends[first:last] - done - count, count)
            out[np.repeat(at[first:last], count) + step] = data[np.repeat(starts[first:last], count) + step]
        first = last


def words_at(data: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """The little-endian ``width``-byte unsigned word starting at each byte offset ``at[i]``
    of ``data`` (a uint8 array; every word must lie inside it): one gather of whole words
    where a field would take one gather per byte."""
    words = np.ndarray((len(data) - width + 1,), dtype=f"<u{width}", buffer=data, strides=(1,))
    found: np.ndarray = words[at]
    return found


def decode_varint(buf: BytesLike, pos: int, limit: int, max_bytes: int = MAX_VARINT64_BYTES,
                  what: str = "varint") -> tuple[int, int]:
    """Decode a varint from ``buf[pos:limit]``; return ``(value, next_pos)``.

    Raises :class:`CorruptionError` (naming ``what`` and the offset) if the varint runs past
    ``limit`` or is longer than ``max_bytes``.
    """
    view = memoryview(buf)
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= limit:
            raise CorruptionError(f"{what} at offset {start} runs past the end ({limit})")
        if pos - start >= max_bytes:
            raise CorruptionError(f"{what} at offset {start} is longer than {max_bytes} bytes")
        byte = view[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if result >> (32 if max_bytes == MAX_VARINT32_BYTES else 64):
                raise CorruptionError(f"{what} at offset {start} overflows")
            return result, pos
        shift += 7
