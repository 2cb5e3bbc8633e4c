"""Decoder for raw Snappy, the optional block compression of LevelDB tables.

TensorFlow never writes compressed bundle indexes but reads them, so tfckpt reads them too.
Layout (google/snappy ``format_description.txt``)::

    uncompressed_length: varint32
    element*: tag: uint8, low 2 bits select the kind
      00 literal: length-1 in tag >> 2 (< 60), else 1..4 little-endian bytes follow (60..63)
      01 copy:    length = 4 + ((tag >> 2) & 7), offset = (tag >> 5) << 8 | next byte
      10 copy:    length = 1 + (tag >> 2),      offset: fixed16
      11 copy:    length = 1 + (tag >> 2),      offset: fixed32
    A copy repeats ``length`` bytes starting ``offset`` bytes back (it may overlap itself).
"""

from __future__ import annotations

from .coding import MAX_VARINT32_BYTES, decode_varint
from .errors import CorruptionError

__all__ = ["MAX_EXPANSION", "decompress"]

# The best Snappy can do is a 3-byte tag per 64 output bytes; a larger claimed length is a lie,
# and rejecting it bounds the allocation by the bytes really present.
MAX_EXPANSION = 22


def decompress(data: bytes, where: str) -> bytes:
    """Decode raw Snappy ``data``; errors name ``where`` and the offset."""
    length, pos = decode_varint(data, 0, len(data), MAX_VARINT32_BYTES, f"{where}: snappy length")
    if length > MAX_EXPANSION * len(data):
        raise CorruptionError(f"{where}: corrupted compressed block contents (claims {length} "
                              f"bytes from {len(data)})")
    out = bytearray()
    n = len(data)
    while pos < n:
        tag_at = pos
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                if pos + extra > n:
                    break
                size = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            size += 1
            if pos + size > n:
                break
            out += data[pos:pos + size]
            pos += size
            continue
        if kind == 1:
            if pos + 1 > n:
                break
            size = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            if pos + width > n:
                break
            size = 1 + (tag >> 2)
            offset = int.from_bytes(data[pos:pos + width], "little")
            pos += width
        if offset == 0 or offset > len(out) or len(out) + size > length:
            raise CorruptionError(f"{where}: corrupted compressed block contents (copy of {size} "
                                  f"bytes from {offset} back at compressed offset {tag_at})")
        start = len(out) - offset
        if offset >= size:
            out += out[start:start + size]
        else:  # overlapping copy repeats the pattern
            for i in range(size):
                out.append(out[start + i])
        if len(out) > length:
            break
    else:
        if len(out) == length:
            return bytes(out)
    raise CorruptionError(f"{where}: corrupted compressed block contents (decoded {len(out)} of "
                          f"{length} bytes before the data ended)")
