"""The fast twins of :mod:`tfckpt.bundle.entry`'s per-record code: index entries decoded and
encoded with numpy for many rows at once, byte for byte what the record path does.

- :func:`peek_many` is :func:`tfckpt.bundle.entry.peek` of every entry (listing);
- :func:`decode_plain_many` is :meth:`tfckpt.bundle.entry.TensorInfo.decode` of every entry
  in the plain layout writers produce (bulk reads), as columns (:class:`PlainEntries`); rows
  in any other layout are left to the record decoder and its precise errors;
- :meth:`EntryColumns.encode` is :meth:`tfckpt.bundle.entry.TensorInfo.encode` of every row
  the writer keeps as columns.

The layout (``08 dtype 12 len shape | 18 shard_id | 20 offset | 28 size | 35 crc32c``) and
its rules (field order, field widths ``TAIL_FIELDS``, valid shapes through ``peek``) are
:mod:`tfckpt.bundle.entry`'s; ``tests/test_fast_twins.py`` checks each twin against its
reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..coding import encode_varints, put_rows, words_at
from ..dtypes import DType
from .entry import TAIL_FIELDS, encoded_head, peek

__all__ = ["EntryColumns", "PlainEntries", "decode_plain_many", "peek_many"]


@dataclass(frozen=True)
class EntryColumns:
    """Records of many ordinary tensors of one data file, as columns: what the writer keeps
    for a run of small tensors instead of one :class:`TensorInfo` each (``crcs`` masked, as
    stored)."""

    names: list[str]
    dtypes: list[DType]
    shapes: list[tuple[int, ...]]
    shard_id: int
    offsets: np.ndarray  # int64
    sizes: np.ndarray  # int64
    crcs: np.ndarray  # uint32

    def encode(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row's entry, the bytes :meth:`TensorInfo.encode` makes, back to back in one
        uint8 array; and their lengths. Heads come from the cache, the other fields are
        written with numpy for all rows at once."""
        n = len(self.names)
        pairs = list(zip(self.dtypes, self.shapes))
        kinds = {pair: number for number, pair in enumerate(dict.fromkeys(pairs))}
        kind = np.fromiter(map(kinds.__getitem__, pairs), dtype=np.int64, count=n)
        heads = [encoded_head(dtype, shape) for dtype, shape in kinds]
        head_rows = np.zeros((len(heads), max(map(len, heads), default=1)), dtype=np.uint8)
        for row, head in zip(head_rows, heads):
            row[:len(head)] = np.frombuffer(head, dtype=np.uint8)
        head_lengths = np.array([len(head) for head in heads], dtype=np.int64)[kind]
        # Fields 3-5 (varints) and 6 (fixed32), each left out when zero, as protobuf does.
        fields = []
        for tag, column in ((0x18, np.full(n, self.shard_id, dtype=np.int64)), (0x20, self.offsets), (0x28, self.sizes)):
            rows, lengths = encode_varints(column)
            fields.append((np.hstack([np.full((n, 1), tag, dtype=np.uint8), rows]), np.where(column != 0, lengths + 1, 0)))
        crc_bytes = self.crcs.astype("<u4").view(np.uint8).reshape(n, 4)
        fields.append((np.hstack([np.full((n, 1), 0x35, dtype=np.uint8), crc_bytes]), np.where(self.crcs != 0, 5, 0)))
        lengths = head_lengths + sum(field_lengths for _, field_lengths in fields)
        at = np.cumsum(lengths) - lengths
        out = np.empty(int(lengths.sum()), dtype=np.uint8)
        put_rows(out, at, head_rows[kind], head_lengths)
        at = at + head_lengths
        for rows, field_lengths in fields:
            put_rows(out, at, rows, field_lengths)
            at += field_lengths
        return out, lengths


def _heads(data: np.ndarray, starts: np.ndarray, ends: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, list[tuple[DType, tuple[int, ...]] | None], np.ndarray]:
    """Group entries by their plain head (``08 dtype 12 len shape``): ``(usual, which, known,
    head_length)``, where row ``i`` in the plain layout (``usual[i]``) has the dtype and shape
    ``known[which[i]]``. ``data`` is the buffer as uint8 with at least 16 bytes of padding."""
    first = words_at(data, starts, 8)
    head_length = 4 + ((first >> np.uint64(24)) & np.uint64(0xFF)).astype(np.int64)
    # Bytes 0-3 (little-endian in the word): 08, dtype < 0x80, 12, shape length < 0x80.
    usual = ((first & np.uint64(0x80FF80FF)) == np.uint64(0x00120008)) & (ends - starts >= head_length)
    # Each head as whole 8-byte words, zero past its end (a head holds its own length in
    # byte 3, so zero-padded heads of different lengths differ); a head ends inside its
    # entry, so every word read starts inside the buffer (the padding covers its tail).
    columns = []
    for word in range((int(head_length[usual].max(initial=8)) + 7) // 8):
        left = np.clip(head_length - 8 * word, 0, 8)
        inside = usual & (left > 0)
        value = first if word == 0 else words_at(data, np.where(inside, starts + 8 * word, 0), 8)
        columns.append(np.where(inside, value & _LOW_BYTES[left], np.uint64(0)))
    heads = np.stack(columns, axis=1).astype("<u8", copy=False)
    # Neighbours often share a head, so only the first row of each stretch of equal heads is
    # sorted, as opaque bytes (np.unique's axis=0 compares field by field, ~30x slower).
    changes = np.ones(len(heads), dtype=bool)
    changes[1:] = (heads[1:] != heads[:-1]).any(axis=1)
    firsts = np.ascontiguousarray(heads[changes])
    distinct, which = np.unique(firsts.view(np.dtype((np.void, firsts.shape[1] * 8))).reshape(-1),
                                return_inverse=True)
    known = [peek(row.tobytes()) for row in distinct]
    return usual, which.reshape(-1)[np.cumsum(changes) - 1], known, head_length


# _LOW_BYTES[k]: a mask of a word's first k bytes (little-endian), k = 0..8.
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def _padded(buffer: bytes) -> np.ndarray:
    return np.frombuffer(buffer + b"\0" * 16, dtype=np.uint8)  # reads just past a span stay in bounds


def peek_many(buffer: bytes, starts: np.ndarray, ends: np.ndarray
              ) -> tuple[list[int], list[tuple[DType, tuple[int, ...]] | None]]:
    """:func:`peek` of the entries ``buffer[starts[i]:ends[i]]``, grouped: ``(which, kinds)``,
    entry ``i``'s being ``kinds[which[i]]``. The heads are grouped with numpy and each
    distinct one decoded once (an index of 10^5 entries repeats a few)."""
    if not len(starts):
        return [], []
    usual, which, kinds, _ = _heads(_padded(buffer), starts, ends)
    found = which.tolist()
    for i in np.flatnonzero(~usual).tolist():
        found[i] = len(kinds)
        kinds.append(peek(buffer[starts[i]:ends[i]]))
    return found, kinds


@dataclass(frozen=True)
class PlainEntries:
    """Entries in the layout writers produce, decoded with numpy, one row per entry given:
    ``plain[i]`` says whether row ``i`` was decoded here (else it is the full decoder's: slices,
    unknown fields, odd varints); for those rows ``kinds[kind[i]]`` is its dtype and shape and
    the other columns its fields (``masked_crc32c`` as stored)."""

    plain: np.ndarray  # bool
    kinds: list[tuple[DType, tuple[int, ...]] | None]
    kind: np.ndarray
    shard_id: np.ndarray
    offset: np.ndarray
    size: np.ndarray
    masked_crc32c: np.ndarray  # uint32


def _varints(data: np.ndarray, pos: np.ndarray, tag: int, ends: np.ndarray, limit_bits: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The optional field ``tag`` (a varint) at ``pos`` of each row: ``(value, next pos, ok)``,
    value 0 where absent; ``ok`` is false where the varint is longer than 9 bytes or its value
    needs ``limit_bits`` bits or more (negative as a signed field: the full decoder's case)."""
    present = (pos < ends) & (data[pos] == tag)
    window = data[(pos + 1)[:, None] + np.arange(9)].astype(np.uint64)
    ended = window < 0x80
    length = np.argmax(ended, axis=1) + 1
    ok = ~present | ended.any(axis=1)
    shifts = np.arange(9, dtype=np.uint64) * np.uint64(7)
    used = np.arange(9) < length[:, None]
    value = np.where(used, (window & np.uint64(0x7F)) << shifts, np.uint64(0)).sum(axis=1, dtype=np.uint64)
    ok &= ~present | (value < np.uint64(1 << limit_bits))
    value = np.where(present, value, np.uint64(0)).astype(np.int64)
    return value, np.where(present, pos + 1 + length, pos), ok


def decode_plain_many(buffer: bytes, starts: np.ndarray, ends: np.ndarray) -> PlainEntries:
    """:meth:`TensorInfo.decode`'s fast path for many entries stored in one buffer
    (``buffer[starts[i]:ends[i]]``), vectorised: the same fields, in the same order, with the
    same rules (each optional, in number order, shard_id within int32, offset and size within
    int64, the checksum last)."""
    data = _padded(buffer)
    if not len(starts):
        empty = np.zeros(0, np.int64)
        return PlainEntries(np.zeros(0, bool), [], empty, empty, empty, empty, np.zeros(0, np.uint32))
    usual, which, kinds, pos = _heads(data, starts, ends)
    pos = np.where(usual, starts + pos, ends)
    shard_id, pos, ok_shard = _varints(data, pos, 0x18, ends, TAIL_FIELDS[0x18][1])
    offset, pos, ok_offset = _varints(data, pos, 0x20, ends, TAIL_FIELDS[0x20][1])
    size, pos, ok_size = _varints(data, pos, 0x28, ends, TAIL_FIELDS[0x28][1])
    has_crc = (pos + 5 == ends) & (data[np.minimum(pos, len(data) - 1)] == 0x35)
    crc_bytes = data[(pos + 1)[:, None] + np.arange(4)].astype(np.uint32)
    crc = np.where(has_crc, crc_bytes[:, 0] | crc_bytes[:, 1] << 8 | crc_bytes[:, 2] << 16 | crc_bytes[:, 3] << 24,
                   0).astype(np.uint32)
    pos = np.where(has_crc, ends, pos)
    known = np.array([k is not None for k in kinds], dtype=bool)
    plain = usual & known[which] & ok_shard & ok_offset & ok_size & (pos == ends)
    return PlainEntries(plain, kinds, which, shard_id, offset, size, crc)
