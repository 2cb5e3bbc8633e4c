"""Partitioned tensors: slice descriptions and the keys their pieces are stored under.

A slice has one extent per dimension, ``(start, length)``, with ``length == FULL`` (-1)
meaning the whole dimension. Text form (``TensorSlice::DebugString``): extents joined by
``:``, each ``-`` (full) or ``start,length``, e.g. ``"0,3:-"``.

A piece of a partitioned tensor ``name`` lives under the key (OrderedCode, byte exact)::

    0x00 | string(name) | num_increasing(rank) | (signed_increasing(start)
                                                  | signed_increasing(length)) * rank

    num_increasing(v):    1 length byte n, then v as n big-endian bytes (0 -> "00")
    string(s):            s with 00 -> 00 ff and ff -> ff 00, then the terminator 00 01
    signed_increasing(v): x = v if v >= 0 else ~v; n = smallest of 1..10 with x < 2**(7n-1);
                          the last n bytes of v as a 10-byte big-endian two's complement,
                          with a length marker XORed into the leading bits (see _SIGNED_HEADER)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import CorruptionError, InvalidArgumentError

__all__ = [
    "FULL",
    "SLICE_KEY_PREFIX",
    "TensorSlice",
    "decode_key",
    "decode_key_texts",
    "decode_slice_key",
    "describe_key",
    "encode_slice_key",
    "parse_shape_and_slice",
]

FULL = -1
SLICE_KEY_PREFIX = b"\x00"
_STRING_ESCAPES = {0x00: b"\x00\xff", 0xFF: b"\xff\x00"}
_STRING_TERMINATOR = b"\x00\x01"
# Leading bits XORed into a signed_increasing encoding of n bytes (ordered_code.cc kLengthToHeaderBits).
_SIGNED_HEADER = {1: b"\x80", 2: b"\xc0", 3: b"\xe0", 4: b"\xf0", 5: b"\xf8", 6: b"\xfc",
                  7: b"\xfe", 8: b"\xff", 9: b"\xff\x80", 10: b"\xff\xc0"}


@dataclass(frozen=True)
class TensorSlice:
    """One piece of a partitioned tensor: ``(start, length)`` per dimension.

    Examples
    --------
    >>> piece = TensorSlice.parse("0,3:-")
    >>> piece.extents, piece.shape((5, 2)), str(piece)
    (((0, 3), (0, -1)), (3, 2), '0,3:-')
    """

    extents: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, spec: str) -> TensorSlice:
        """Parse TF's text form, e.g. ``"0,3:-"``."""
        extents = []
        for item in spec.split(":"):
            if not item:
                continue
            if item == "-":
                extents.append((0, FULL))
                continue
            parts = item.split(",")
            try:
                start, length = (int(p) for p in parts)
            except ValueError:
                raise InvalidArgumentError(f"bad slice spec {spec!r}: {item!r} is not 'start,length' or '-'") from None
            if start < 0 or length <= 0:
                raise InvalidArgumentError(f"bad slice spec {spec!r}: start must be >= 0 and length > 0")
            extents.append((start, length))
        return cls(tuple(extents))

    def __str__(self) -> str:
        return ":".join("-" if length == FULL else f"{start},{length}" for start, length in self.extents)

    def shape(self, full_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(dim if length == FULL else length for (_, length), dim in zip(self.extents, full_shape))

    def index(self, full_shape: tuple[int, ...]) -> tuple[slice, ...]:
        """numpy index selecting this slice within the full tensor."""
        return tuple(slice(0, dim) if length == FULL else slice(start, start + length)
                     for (start, length), dim in zip(self.extents, full_shape))

    def covers(self, full_shape: tuple[int, ...]) -> bool:
        return self.shape(full_shape) == full_shape

    def bounds(self, full_shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """``(start, stop)`` per dimension, ``FULL`` extents resolved against the shape."""
        return tuple((0, dim) if length == FULL else (start, start + length)
                     for (start, length), dim in zip(self.extents, full_shape))

    @classmethod
    def from_bounds(cls, bounds: tuple[tuple[int, int], ...]) -> TensorSlice:
        return cls(tuple((start, stop - start) for start, stop in bounds))

    @classmethod
    def full(cls, rank: int) -> TensorSlice:
        return cls(((0, FULL),) * rank)

    def intersect(self, other: TensorSlice, full_shape: tuple[int, ...]) -> TensorSlice | None:
        """The common part of two slices of one tensor, or ``None`` if they do not meet."""
        out = []
        for (a0, a1), (b0, b1) in zip(self.bounds(full_shape), other.bounds(full_shape)):
            lo, hi = max(a0, b0), min(a1, b1)
            if lo >= hi:
                return None
            out.append((lo, hi))
        return TensorSlice.from_bounds(tuple(out))

    def relative_to(self, outer: TensorSlice, full_shape: tuple[int, ...]) -> tuple[slice, ...]:
        """numpy index of this slice inside the array holding ``outer`` (which contains it)."""
        return tuple(slice(lo - outer_lo, hi - outer_lo) for (lo, hi), (outer_lo, _)
                     in zip(self.bounds(full_shape), outer.bounds(full_shape)))

    def to_proto(self, proto: Any) -> None:
        for start, length in self.extents:
            extent = proto.extent.add()
            if length != FULL:
                extent.start = start
                extent.length = length

    @classmethod
    def from_proto(cls, proto: Any, full_shape: tuple[int, ...], where: str) -> TensorSlice:
        extents = []
        for extent in proto.extent:
            length = extent.length if extent.WhichOneof("has_length") else FULL
            extents.append((extent.start, length))
        piece = cls(tuple(extents))
        piece.check(full_shape, where)
        return piece

    def check(self, full_shape: tuple[int, ...], where: str,
              error: type[Exception] = CorruptionError) -> None:
        if len(self.extents) != len(full_shape):
            raise error(f"{where}: slice {self} has rank {len(self.extents)}, the tensor "
                        f"has shape {list(full_shape)}")
        for (start, length), dim in zip(self.extents, full_shape):
            if length == FULL:
                continue
            if start < 0 or length < 0 or start + length > dim:
                raise error(f"{where}: slice {self} does not fit shape {list(full_shape)}")


def parse_shape_and_slice(spec: str) -> tuple[tuple[int, ...], TensorSlice]:
    """Parse ``SaveV2``'s ``shape_and_slices`` form, e.g. ``"5 2 0,3:0,2"`` (full shape, slice)."""
    parts = spec.split()
    if len(parts) < 2:
        raise InvalidArgumentError(f"bad shape-and-slice spec {spec!r}: expected 'dim ... slice'")
    try:
        shape = tuple(int(p) for p in parts[:-1])
    except ValueError:
        raise InvalidArgumentError(f"bad shape-and-slice spec {spec!r}: dimensions must be integers") from None
    piece = TensorSlice.parse(parts[-1])
    if len(piece.extents) != len(shape) or any(d < 0 for d in shape):
        raise InvalidArgumentError(f"bad shape-and-slice spec {spec!r}: slice rank does not match the shape")
    piece.check(shape, f"shape-and-slice spec {spec!r}", InvalidArgumentError)
    return shape, piece


def _num_increasing(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(body)]) + body


def _signed_increasing(value: int) -> bytes:
    x = value if value >= 0 else ~value
    n = next(n for n in range(1, 11) if x < 1 << (7 * n - 1))
    raw = bytearray((value & ((1 << 80) - 1)).to_bytes(10, "big")[10 - n:])
    for i, bits in enumerate(_SIGNED_HEADER[n]):
        raw[i] ^= bits
    return bytes(raw)


def encode_slice_key(name: str, piece: TensorSlice) -> bytes:
    """The index key of a slice's data (TF ``EncodeTensorNameSlice``)."""
    escaped = b"".join(_STRING_ESCAPES.get(b, bytes([b])) for b in name.encode("utf-8", "surrogateescape"))
    out = [SLICE_KEY_PREFIX, escaped, _STRING_TERMINATOR, _num_increasing(len(piece.extents))]
    for start, length in piece.extents:
        out.append(_signed_increasing(start))
        out.append(_signed_increasing(length))
    return b"".join(out)


def decode_key(key: bytes) -> str:
    """An index key as a ``str``: keys are UTF-8 in practice, and any other bytes survive the
    round trip through ``surrogateescape``."""
    return key.decode("utf-8", "surrogateescape")


def decode_key_texts(texts: list[str]) -> list[str]:
    """:func:`decode_key` of each key given as latin-1 text (one code point per byte, see
    :class:`~tfckpt.table.Entries`): ASCII keys are their own names; others are re-encoded
    and decoded as one string when no key holds a newline (an index can hold 10^5 keys)."""
    if "".join(texts).isascii():
        return texts
    joined = "\n".join(texts)
    if joined.count("\n") != len(texts) - 1:
        return [decode_key(text.encode("latin-1")) for text in texts]
    # A newline is ASCII, never part of a UTF-8 sequence, so splitting after decoding (invalid
    # bytes escaped one by one) gives each key's own decoding.
    return joined.encode("latin-1").decode("utf-8", "surrogateescape").split("\n")


def _unescape_name(key: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    while pos + 1 < len(key):
        pair = key[pos:pos + 2]
        if pair == _STRING_TERMINATOR:
            return bytes(out), pos + 2
        if pair in (b"\x00\xff", b"\xff\x00"):
            out.append(pair[0])
            pos += 2
        elif key[pos] in _STRING_ESCAPES:
            raise ValueError("bad escape")
        else:
            out.append(key[pos])
            pos += 1
    raise ValueError("no terminator")


def _decode_signed(key: bytes, pos: int) -> tuple[int, int]:
    negative = not key[pos] & 0x80
    head = bytes(b ^ 0xFF for b in key[pos:pos + 2]) if negative else key[pos:pos + 2]
    length = 0
    for byte in head:  # the length is the number of leading one bits (at most 10)
        ones = 8 - (byte ^ 0xFF).bit_length()
        length += ones
        if ones < 8:
            break
    if not 1 <= length <= 10 or pos + length > len(key):
        raise ValueError("bad signed number")
    body = bytearray(b ^ 0xFF for b in key[pos:pos + length]) if negative else bytearray(key[pos:pos + length])
    for i, bits in enumerate(_SIGNED_HEADER[length]):
        body[i] ^= bits
    value = int.from_bytes(body, "big")
    return (~value if negative else value), pos + length


def decode_slice_key(key: bytes) -> tuple[str, TensorSlice]:
    """Invert :func:`encode_slice_key`; raises ``ValueError`` for bytes it cannot have made."""
    if key[:1] != SLICE_KEY_PREFIX:
        raise ValueError("not a slice key")
    name, pos = _unescape_name(key, 1)
    if pos >= len(key) or key[pos] > 8:
        raise ValueError("bad rank")
    rank = int.from_bytes(key[pos + 1:pos + 1 + key[pos]], "big")
    pos += 1 + key[pos]
    extents = []
    for _ in range(rank):
        start, pos = _decode_signed(key, pos)
        length, pos = _decode_signed(key, pos)
        extents.append((start, length))
    if pos != len(key):
        raise ValueError("trailing bytes")
    return name.decode("utf-8", "surrogateescape"), TensorSlice(tuple(extents))


def describe_key(key: str) -> str:
    """A key as people read it: slice keys as ``name[0,10:-]``, other keys unchanged.

    Examples
    --------
    >>> raw = encode_slice_key("emb", TensorSlice.parse("0,10:-")).decode("utf-8", "surrogateescape")
    >>> describe_key(raw), describe_key("dense/kernel")
    ('emb[0,10:-]', 'dense/kernel')
    """
    if not key.startswith("\x00"):
        return key
    try:
        name, piece = decode_slice_key(key.encode("utf-8", "surrogateescape"))
    except (ValueError, IndexError):
        return key
    return f"{name}[{piece}]"
