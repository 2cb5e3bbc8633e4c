"""LevelDB-style immutable table (SSTable), the container of a bundle's ``.index`` file.

File layout (TF ``table_format.txt``: LevelDB's format without filter blocks)::

    [data block][trailer] ... [metaindex block][trailer] [index block][trailer] [footer]

Block contents (data, metaindex and index blocks alike)::

    entry*:   shared: varint32 | non_shared: varint32 | value_length: varint32
              | key[shared:] (non_shared bytes) | value (value_length bytes)
    restarts: restart_offset: fixed32 * num_restarts | num_restarts: fixed32

Restart entries store their whole key (shared == 0); the others share a prefix with the
previous key. Keys are strictly increasing in unsigned bytewise order.

Block trailer, 5 bytes after each block's contents::

    type: uint8 (0 = none, 1 = raw Snappy) | crc: fixed32 = mask(crc32c(contents + type))

BlockHandle: ``offset: varint64 | size: varint64`` (size excludes the trailer).
Footer, the last 48 bytes: ``metaindex handle | index handle | zeros to 40 bytes | magic: fixed64``.

The index block maps a separator key (>= every key of a data block, < every key of the next)
to that block's handle. TensorFlow writes 256 KiB data blocks, restart interval 16 (1 for the
index block) and never compresses; the builder below reproduces its bytes exactly.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from . import snappy
from .coding import (
    FIXED32,
    FIXED64,
    MAX_VARINT32_BYTES,
    BytesLike,
    crc32c,
    decode_varint,
    encode_varint,
    mask,
    unmask,
    words_at,
)
from .errors import ChecksumError, CorruptionError, UnsupportedError
from .storage import ByteSource
from .table_layout import layout_data_blocks

__all__ = [
    "BLOCK_CACHE_SIZE",
    "BLOCK_SIZE",
    "BLOCK_TRAILER_SIZE",
    "DATA_RESTART_INTERVAL",
    "FOOTER_LENGTH",
    "INDEX_RESTART_INTERVAL",
    "MAX_BLOCK_HANDLE_LENGTH",
    "MAX_KEY_BYTES_PER_BLOCK_BYTE",
    "NO_COMPRESSION",
    "SNAPPY_COMPRESSION",
    "TABLE_MAGIC",
    "BlockBuilder",
    "BlockHandle",
    "Entries",
    "Footer",
    "TableBuilder",
    "TableReader",
    "find_short_successor",
    "find_shortest_separator",
    "first_value",
    "parse_block",
    "replace_first_value",
]

TABLE_MAGIC = 0xDB4775248B80FB57  # leveldb table/format.h kTableMagicNumber
MAX_BLOCK_HANDLE_LENGTH = 20  # two varint64s
FOOTER_LENGTH = 2 * MAX_BLOCK_HANDLE_LENGTH + FIXED64.size  # 48
BLOCK_TRAILER_SIZE = 1 + FIXED32.size  # type byte + masked crc
BLOCK_SIZE = 256 * 1024  # tensorflow table_options.h: block_size for bundle indexes
DATA_RESTART_INTERVAL = 16  # leveldb options.h block_restart_interval
INDEX_RESTART_INTERVAL = 1  # TableBuilder forces 1 for the index block
BLOCK_CACHE_SIZE = 8  # data blocks kept by TableReader.get (V1 checkpoints read many keys per block)
# Entries between two restarts that the vectorised scan follows (writers use 16); a longer run
# is left to the entry-by-entry parser, which is linear whatever the restarts say.
MAX_SCANNED_RUN = 64
# Prefix compression lets a few bytes stand for a whole previous key: a block whose keys each
# share all of the previous one would materialise far more than the file holds. A key is at
# most the bytes of its restart run, so TensorFlow's layout (a restart every 16 entries) yields
# keys of at most 16x a block's bytes; a block whose keys would take more than this factor is
# refused before they are built. (TF's own reader walks one key at a time, but its
# CheckpointReader keeps every name in a map, so it would materialise them all too.)
MAX_KEY_BYTES_PER_BLOCK_BYTE = 32
NO_COMPRESSION = 0
SNAPPY_COMPRESSION = 1


@dataclass(frozen=True)
class BlockHandle:
    """Where a block lives: ``offset`` of its contents and their ``size`` (no trailer)."""

    offset: int
    size: int

    def encode(self) -> bytes:
        return encode_varint(self.offset) + encode_varint(self.size)

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0, where: str = "block handle") -> tuple[BlockHandle, int]:
        offset, pos = decode_varint(buf, pos, len(buf), what=f"{where} offset")
        size, pos = decode_varint(buf, pos, len(buf), what=f"{where} size")
        return cls(offset, size), pos


@dataclass(frozen=True)
class Footer:
    """The fixed-size tail of a table naming its metaindex and index blocks."""

    metaindex: BlockHandle
    index: BlockHandle

    def encode(self) -> bytes:
        handles = self.metaindex.encode() + self.index.encode()
        return handles.ljust(2 * MAX_BLOCK_HANDLE_LENGTH, b"\0") + FIXED64.pack(TABLE_MAGIC)

    @classmethod
    def decode(cls, buf: bytes, where: str) -> Footer:
        if len(buf) != FOOTER_LENGTH:
            raise CorruptionError(f"{where}: footer must be {FOOTER_LENGTH} bytes, got {len(buf)}")
        (magic,) = FIXED64.unpack_from(buf, FOOTER_LENGTH - FIXED64.size)
        if magic != TABLE_MAGIC:
            raise CorruptionError(
                f"{where}: not a TensorFlow checkpoint index (bad magic number {magic:#018x}, expected "
                f"{TABLE_MAGIC:#018x})")
        handles = buf[: 2 * MAX_BLOCK_HANDLE_LENGTH]
        metaindex, pos = BlockHandle.decode(handles, 0, f"{where}: footer metaindex handle")
        index, _ = BlockHandle.decode(handles, pos, f"{where}: footer index handle")
        return cls(metaindex, index)


def _shared_prefix_length(a: bytes, b: bytes) -> int:
    # The first differing byte is where the XOR of the two prefixes, read big-endian, has its
    # highest set bit: a few C-level operations instead of a Python loop over bytes.
    n = min(len(a), len(b))
    diff = int.from_bytes(a[:n], "big") ^ int.from_bytes(b[:n], "big")
    return n - (diff.bit_length() + 7) // 8


def find_shortest_separator(start: bytes, limit: bytes) -> bytes:
    """A short key ``k`` with ``start <= k < limit`` (leveldb BytewiseComparator)."""
    i = _shared_prefix_length(start, limit)
    if i >= min(len(start), len(limit)):
        return start  # one is a prefix of the other
    byte = start[i]
    if byte < 0xFF and byte + 1 < limit[i]:
        return start[:i] + bytes([byte + 1])
    return start


def find_short_successor(key: bytes) -> bytes:
    """A short key ``>= key`` (leveldb BytewiseComparator)."""
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key


class BlockBuilder:
    """Accumulates sorted entries into one block's contents."""

    def __init__(self, restart_interval: int) -> None:
        self._interval = restart_interval
        self._buf = bytearray()
        self._restarts = [0]
        self._counter = 0
        self._last_key = b""

    @property
    def empty(self) -> bool:
        return not self._buf

    def size_estimate(self) -> int:
        return len(self._buf) + FIXED32.size * len(self._restarts) + FIXED32.size

    def add(self, key: bytes, value: bytes) -> None:
        self.add_run([(key, value)], 0, None, None)

    def add_run(self, items: Sequence[tuple[bytes, bytes]], start: int, block_size: int | None,
                previous: bytes | None) -> int:
        """Add ``items[start:]`` in order until the block reaches ``block_size`` or the next
        item is huge (``len(key) + len(value) >= 2 * block_size``, which gets a block of its
        own); return the index of the first item not added. Keys must increase strictly,
        starting after ``previous`` (the table's last key so far)."""
        buf, restarts, interval = self._buf, self._restarts, self._interval
        counter, last = self._counter, self._last_key
        i, n = start, len(items)
        try:
            while i < n:
                key, value = items[i]
                if previous is not None and key <= previous:
                    raise ValueError(f"table keys must be strictly increasing: {key!r} after {previous!r}")
                if block_size is not None and buf and len(key) + len(value) >= 2 * block_size:
                    break
                if counter < interval:
                    # The shared prefix: where the XOR of the two keys' common-length parts,
                    # read big-endian, has its highest bit (C-level work, not a byte loop).
                    m = min(len(last), len(key))
                    diff = int.from_bytes(last[:m], "big") ^ int.from_bytes(key[:m], "big")
                    shared = m - (diff.bit_length() + 7) // 8
                else:
                    restarts.append(len(buf))
                    counter = shared = 0
                unshared = len(key) - shared
                if shared < 0x80 and unshared < 0x80 and len(value) < 0x80:  # one byte each: usual
                    buf += bytes((shared, unshared, len(value)))
                else:
                    buf += encode_varint(shared) + encode_varint(unshared) + encode_varint(len(value))
                buf += key[shared:]
                buf += value
                last = previous = key
                counter += 1
                i += 1
                if block_size is not None and len(buf) + 4 * len(restarts) + 4 >= block_size:
                    break
        finally:
            self._counter, self._last_key = counter, last
        return i

    def finish(self) -> bytes:
        tail = b"".join(FIXED32.pack(r) for r in self._restarts) + FIXED32.pack(len(self._restarts))
        return bytes(self._buf) + tail

    @classmethod
    def resume(cls, restart_interval: int, body: BytesLike, restarts: list[int], count: int,
               last_key: bytes) -> BlockBuilder:
        """A builder holding ``count`` entries already laid out (``body``, with these restart
        points), as if they had been added one by one."""
        block = cls(restart_interval)
        block._buf = bytearray(body)
        block._restarts = restarts
        block._counter = (count - 1) % restart_interval + 1
        block._last_key = last_key
        return block


class TableBuilder:
    """Writes a table to ``sink`` exactly as TensorFlow's ``TableBuilder`` would.

    Keys must be added in strictly increasing bytewise order.
    """

    def __init__(self, sink: BinaryIO, block_size: int = BLOCK_SIZE) -> None:
        self._sink = sink
        self._block_size = block_size
        self._offset = 0
        self._data = BlockBuilder(DATA_RESTART_INTERVAL)
        self._index = BlockBuilder(INDEX_RESTART_INTERVAL)
        self._pending: BlockHandle | None = None
        self._last_key: bytes | None = None

    def add(self, key: bytes, value: bytes) -> None:
        self.add_many([(key, value)])

    def add_many(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """:meth:`add` each ``(key, value)`` in turn (one call for a whole index is fastest)."""
        i = 0
        while i < len(items):
            if self._pending is not None:
                assert self._last_key is not None
                key = items[i][0]
                if key <= self._last_key:
                    raise ValueError(f"table keys must be strictly increasing: {key!r} after {self._last_key!r}")
                self._index.add(find_shortest_separator(self._last_key, key), self._pending.encode())
                self._pending = None
            done = self._data.add_run(items, i, self._block_size, self._last_key)
            if done > i:
                self._last_key = items[done - 1][0]
            if done == i or self._data.size_estimate() >= self._block_size:
                self._flush()  # full, or the next item is huge and gets a block of its own
            i = done

    def add_packed(self, keys: Sequence[bytes], values: np.ndarray, value_lengths: np.ndarray) -> None:
        """:meth:`add_many` for values held back to back in one uint8 array: a fresh table's
        data blocks are laid out with numpy (:mod:`tfckpt.table_layout`, the same bytes),
        anything else goes entry by entry."""
        fresh = self._offset == 0 and self._data.empty and self._pending is None
        layout = layout_data_blocks(keys, values, value_lengths, self._block_size, DATA_RESTART_INTERVAL) \
            if fresh else None
        if layout is None:
            ends = np.cumsum(value_lengths).tolist()
            data = values.tobytes()
            self.add_many([(key, data[end - size:end]) for key, end, size in zip(keys, ends, value_lengths.tolist())])
            return
        closed = len(layout.starts) - 1 if layout.complete else len(layout.starts) - 2
        for block in range(len(layout.starts) - 1):
            first, end = layout.starts[block], layout.starts[block + 1]
            if self._pending is not None:
                assert self._last_key is not None
                self._index.add(find_shortest_separator(self._last_key, keys[first]), self._pending.encode())
                self._pending = None
            if block < closed:
                self._pending = self._write_block(layout.contents(block))
            else:  # the last block stays open for later entries, as add_many leaves it
                self._data = BlockBuilder.resume(DATA_RESTART_INTERVAL, layout.body(block), layout.restarts(block),
                                                 end - first, keys[end - 1])
            self._last_key = keys[end - 1]

    def _flush(self) -> None:
        if self._data.empty:
            return
        self._pending = self._write_block(self._data.finish())
        self._data = BlockBuilder(DATA_RESTART_INTERVAL)

    def _write_block(self, contents: bytes) -> BlockHandle:
        handle = BlockHandle(self._offset, len(contents))
        kind = bytes([NO_COMPRESSION])
        trailer = kind + FIXED32.pack(mask(crc32c(kind, crc32c(contents))))
        self._sink.write(contents)
        self._sink.write(trailer)
        self._offset += len(contents) + len(trailer)
        return handle

    def finish(self) -> int:
        """Write the remaining blocks and the footer; return the table's size in bytes."""
        self._flush()
        metaindex = self._write_block(BlockBuilder(DATA_RESTART_INTERVAL).finish())
        if self._pending is not None:
            assert self._last_key is not None
            self._index.add(find_short_successor(self._last_key), self._pending.encode())
            self._pending = None
        index = self._write_block(self._index.finish())
        footer = Footer(metaindex, index).encode()
        self._sink.write(footer)
        self._offset += len(footer)
        return self._offset


def _varint32(buf: bytes, pos: int, limit: int, where: str) -> tuple[int, int]:
    if pos < limit and buf[pos] < 0x80:  # fast path: almost every length fits in one byte
        return buf[pos], pos + 1
    return decode_varint(buf, pos, limit, MAX_VARINT32_BYTES, where)


def parse_block(contents: bytes, where: str) -> list[tuple[bytes, bytes]]:
    """All ``(key, value)`` entries of a block's contents, in stored order."""
    return list(_block_entries(contents, where))


def _block_entries(contents: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    """:func:`parse_block`, one entry at a time (a caller keeping only some form of each key
    does not hold the block's keys twice). The keys may take at most
    :data:`MAX_KEY_BYTES_PER_BLOCK_BYTE` times the block's bytes in all."""
    n = len(contents)
    if n < FIXED32.size:
        raise CorruptionError(f"{where}: bad block contents ({n} bytes, too short for a restart count)")
    (num_restarts,) = FIXED32.unpack_from(contents, n - FIXED32.size)
    if num_restarts > (n - FIXED32.size) // FIXED32.size:
        raise CorruptionError(f"{where}: bad block contents ({num_restarts} restarts in {n} bytes)")
    if num_restarts == 0:
        return
    limit = n - FIXED32.size * (num_restarts + 1)
    key = b""
    pos = 0
    key_budget = MAX_KEY_BYTES_PER_BLOCK_BYTE * n
    while pos < limit:
        start = pos
        # Fast path: all three lengths fit in one byte each (almost every index entry).
        if pos + 3 <= limit and (contents[pos] | contents[pos + 1] | contents[pos + 2]) < 0x80:
            shared, non_shared, value_length = contents[pos], contents[pos + 1], contents[pos + 2]
            pos += 3
        else:
            at = f"{where}: entry at block offset {pos}"
            shared, pos = _varint32(contents, pos, limit, at)
            non_shared, pos = _varint32(contents, pos, limit, at)
            value_length, pos = _varint32(contents, pos, limit, at)
        key_end = pos + non_shared
        value_end = key_end + value_length
        if shared > len(key) or value_end > limit:
            raise CorruptionError(f"{where}: entry at block offset {start}: bad entry in block (shared {shared} "
                                  f"of a {len(key)}-byte previous key, entry ends at {value_end} past {limit})")
        key_budget -= shared + non_shared
        if key_budget < 0:
            raise CorruptionError(f"{where}: entry at block offset {start}: the block's keys would take more "
                                  f"than {MAX_KEY_BYTES_PER_BLOCK_BYTE} times its {n} bytes (each sharing "
                                  f"{shared} bytes of the previous key): a prefix-compression bomb")
        key = key[:shared] + contents[pos:key_end]
        yield key, contents[key_end:value_end]
        pos = value_end


def _first_value_span(table: bytes) -> tuple[int, int, BlockHandle] | None:
    """Where the value of a table's first entry lies, ``(offset, length, first block)``, if the
    first block is uncompressed and starts with the empty key (a bundle's header); else None."""
    where = "table"
    if len(table) < FOOTER_LENGTH:
        return None
    footer = Footer.decode(table[-FOOTER_LENGTH:], where)
    index = parse_block(table[footer.index.offset:footer.index.offset + footer.index.size], where)
    if not index:
        return None
    first, _ = BlockHandle.decode(index[0][1], 0, where)
    if first.offset + first.size + BLOCK_TRAILER_SIZE > len(table) \
            or table[first.offset + first.size] != NO_COMPRESSION or first.size < 3:
        return None
    start = first.offset
    if table[start] != 0 or table[start + 1] != 0:  # shared = 0, non_shared = 0: the empty key
        return None
    length, pos = decode_varint(table, start + 2, start + first.size, MAX_VARINT32_BYTES, "value length")
    if pos + length > start + first.size:
        return None
    # A damaged block is neither read nor re-checksummed (that would hide the damage).
    end = start + first.size
    (stored,) = FIXED32.unpack_from(table, end + 1)
    if unmask(stored) != crc32c(table[end:end + 1], crc32c(memoryview(table)[start:end])):
        return None
    return pos, length, first


def first_value(table: bytes) -> bytes | None:
    """The value stored under the empty key as a table's first entry (a bundle's header),
    found without parsing the rest of its block (a block holds up to 256 KiB of entries; its
    checksum is verified); ``None`` when the table does not start that way in an intact,
    uncompressed block."""
    try:
        span = _first_value_span(table)
    except CorruptionError:
        return None
    return None if span is None else table[span[0]:span[0] + span[1]]


def replace_first_value(table: bytes, value: bytes) -> bytes | None:
    """``table`` (a whole table file) with the value of its first entry replaced by ``value``
    of the same length, the first block's checksum recomputed; ``None`` when that cannot be
    done in place (another length, a compressed, unusual or damaged first block). Everything else is
    copied byte for byte, so this costs a copy, not a parse."""
    span = _first_value_span(table)
    if span is None or span[1] != len(value):
        return None
    pos, length, first = span
    out = bytearray(table)
    out[pos:pos + length] = value
    contents_end = first.offset + first.size
    crc = crc32c(out[contents_end:contents_end + 1], crc32c(memoryview(out)[first.offset:contents_end]))
    FIXED32.pack_into(out, contents_end + 1, mask(crc))
    return bytes(out)


class TableReader:
    """Reads a whole table from a :class:`ByteSource`, checking every block's checksum
    (unless ``verify_checksums`` is false)."""

    def __init__(self, source: ByteSource, *, verify_checksums: bool = True) -> None:
        self._source = source
        self.verify_checksums = verify_checksums
        self.name = source.name
        size = source.size()
        if size < FOOTER_LENGTH:
            raise CorruptionError(
                f"{self.name}: file is too short to be an sstable ({size} bytes, footer needs {FOOTER_LENGTH})")
        footer = Footer.decode(source.read_at(size - FOOTER_LENGTH, FOOTER_LENGTH), self.name)
        self._index_end = size - FOOTER_LENGTH
        self._index = parse_block(self.read_block(footer.index, "index block"),
                                  f"{self.name}: index block")
        self._separators = [key for key, _ in self._index]
        self._block_cache: OrderedDict[int, list[tuple[bytes, bytes]]] = OrderedDict()

    def _data_block(self, number: int) -> list[tuple[bytes, bytes]]:
        """Entries of data block ``number``, from a small cache of recently used blocks."""
        cached = self._block_cache.get(number)
        if cached is not None:
            self._block_cache.move_to_end(number)
            return cached
        handle, _ = BlockHandle.decode(self._index[number][1], 0, f"{self.name}: index entry {number}")
        what = f"data block {number}"
        entries = parse_block(self.read_block(handle, what), f"{self.name}: {what}")
        self._block_cache[number] = entries
        if len(self._block_cache) > BLOCK_CACHE_SIZE:
            self._block_cache.popitem(last=False)
        return entries

    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key``, reading one data block; ``None`` if absent."""
        number = bisect.bisect_left(self._separators, key)
        if number == len(self._index):
            return None
        entries = self._data_block(number)
        at = bisect.bisect_left(entries, (key,))
        if at < len(entries) and entries[at][0] == key:
            return entries[at][1]
        return None

    def read_block(self, handle: BlockHandle, what: str) -> bytes:
        """The verified, decompressed contents of the block at ``handle``."""
        where = f"{self.name}: {what} at offset {handle.offset}"
        end = handle.offset + handle.size + BLOCK_TRAILER_SIZE
        if end > self._index_end:
            raise CorruptionError(f"{where}: block of {handle.size} bytes (+{BLOCK_TRAILER_SIZE} "
                                  f"trailer) runs past the table's blocks, which end at {self._index_end}")
        raw = self._source.read_at(handle.offset, handle.size + BLOCK_TRAILER_SIZE)
        contents, kind = raw[: handle.size], raw[handle.size]
        (stored,) = FIXED32.unpack_from(raw, handle.size + 1)
        actual = crc32c(raw[handle.size: handle.size + 1], crc32c(contents)) if self.verify_checksums else 0
        if self.verify_checksums and unmask(stored) != actual:
            raise ChecksumError(f"{where}: block checksum mismatch (stored {unmask(stored):#010x}, "
                                f"computed {actual:#010x})")
        if kind == NO_COMPRESSION:
            return contents
        if kind == SNAPPY_COMPRESSION:
            return snappy.decompress(contents, where)
        raise UnsupportedError(f"{where}: bad block type {kind} (expected 0 = none or 1 = snappy)")

    def scan(self) -> Entries:
        """Every entry, in key order, checked as :meth:`__iter__` checks them: keys strictly
        increasing and within their block's index separator."""
        handles = self._data_handles()
        blocks = [self.read_block(handle, f"data block {number}") for number, handle in enumerate(handles)]
        entries = scan_blocks(blocks, [f"{self.name}: data block {number} at offset {handle.offset}"
                                       for number, handle in enumerate(handles)])
        texts, firsts = entries.texts, entries.block_starts
        # Fast path: one C-level pass comparing neighbours (latin-1 texts compare as their
        # bytes); the loop below only runs to name the culprit.
        in_order = all(map(operator.lt, texts, itertools.islice(texts, 1, None)))
        if in_order:
            ends = [*firsts[1:], len(texts)]
            in_order = all(texts[end - 1] <= index_key.decode("latin-1")
                           for (index_key, _), first, end in zip(self._index, firsts, ends) if end > first)
        if not in_order:
            self._raise_order_problem(entries)
        return entries

    def _data_handles(self) -> list[BlockHandle]:
        """The data blocks' handles, checked before any block is read: each block starts after
        the previous one's trailer (TF writes them in order), so a scan reads each byte of the
        file at most once, whatever the index block repeats."""
        handles = []
        end = 0
        for number, (_, handle_bytes) in enumerate(self._index):
            handle, _ = BlockHandle.decode(handle_bytes, 0, f"{self.name}: index entry {number}")
            if handle.offset < end:
                raise CorruptionError(
                    f"{self.name}: index entry {number}: data block at offset {handle.offset} overlaps or "
                    f"precedes the previous one, which ends at {end} (blocks must follow each other)")
            end = handle.offset + handle.size + BLOCK_TRAILER_SIZE
            handles.append(handle)
        return handles

    def _raise_order_problem(self, entries: Entries) -> None:
        previous: bytes | None = None
        number = 0
        for i in range(len(entries.texts)):
            key = entries.key(i)
            while number + 1 < len(entries.block_starts) and entries.block_starts[number + 1] <= i:
                number += 1
            what = f"data block {number}"
            if previous is not None and key <= previous:
                raise CorruptionError(f"{self.name}: {what}: keys out of order: {key!r} after {previous!r}")
            if key > self._index[number][0]:
                raise CorruptionError(f"{self.name}: {what}: key {key!r} is beyond its index "
                                      f"separator {self._index[number][0]!r}")
            previous = key

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        """Every ``(key, value)`` in key order (see :meth:`scan`)."""
        entries = self.scan()
        for i in range(len(entries.texts)):
            yield entries.key(i), entries.value(i)


@dataclass(frozen=True)
class Entries:
    """A table's entries in key order, with their values as spans of one buffer (no bytes
    object per value): key ``i`` maps to ``buffer[starts[i]:ends[i]]``. ``block_starts[b]``
    is the number of the first entry of data block ``b``.

    Keys are held as latin-1 texts (``texts[i]`` has one code point per byte of key ``i``):
    they compare and sort as the bytes do, an ASCII key is already the name it spells, and a
    listing of 10^5 keys needs no bytes object per key besides (:meth:`key` gives the bytes).
    """

    texts: list[str]
    buffer: bytes
    starts: np.ndarray  # int64
    ends: np.ndarray
    block_starts: list[int]

    def key(self, i: int) -> bytes:
        return self.texts[i].encode("latin-1")

    def value(self, i: int) -> bytes:
        return self.buffer[self.starts[i]:self.ends[i]]


def scan_blocks(blocks: Sequence[bytes], wheres: Sequence[str]) -> Entries:
    """The entries of consecutive data blocks' contents (as :func:`parse_block` finds them,
    block by block; ``wheres[b]`` names block ``b`` in errors), vectorised where the blocks
    have the usual layout."""
    scanned = _scan_usual(blocks)
    if scanned is not None:
        return scanned
    texts: list[str] = []
    values: list[bytes] = []
    firsts = []
    for contents, where in zip(blocks, wheres):
        firsts.append(len(texts))
        for key, value in _block_entries(contents, where):
            texts.append(key.decode("latin-1"))
            values.append(value)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    ends = np.cumsum(lengths)
    return Entries(texts, b"".join(values), ends - lengths, ends, firsts)


def _scan_usual(blocks: Sequence[bytes]) -> Entries | None:
    """:func:`scan_blocks` with numpy for blocks whose entries all have one-byte lengths,
    whose restart array is sane and points at entries with no shared prefix, with at most
    :data:`MAX_SCANNED_RUN` entries between restarts (what TensorFlow's and our builder
    write); ``None`` for anything else, left to :func:`parse_block` and its precise errors.

    Entry boundaries are found by walking every restart run at once, one entry per step:
    a block's restarts say where each run starts, so the walk is ~16 numpy steps for a whole
    index instead of one Python step per entry.
    """
    kept: list[bytes] = []
    run_starts, run_ends, bases = [], [], []
    base = 0
    for contents in blocks:
        n = len(contents)
        if n < FIXED32.size:
            return None
        (num_restarts,) = FIXED32.unpack_from(contents, n - FIXED32.size)
        if num_restarts > (n - FIXED32.size) // FIXED32.size:
            return None
        bases.append(base)
        limit = n - FIXED32.size * (num_restarts + 1)
        if num_restarts == 0 or limit == 0:
            continue  # no entries (parse_block agrees)
        restarts = np.frombuffer(contents, dtype="<u4", count=num_restarts, offset=limit).astype(np.int64)
        if restarts[0] != 0 or restarts[-1] >= limit or (num_restarts > 1 and (np.diff(restarts) <= 0).any()):
            return None
        run_starts.append(restarts + base)
        run_ends.append(np.append(restarts[1:], limit) + base)
        kept.append(contents)
        base += n
    if not kept:
        return Entries([], b"", np.zeros(0, np.int64), np.zeros(0, np.int64), [0] * len(blocks))
    # Three zero bytes after the blocks: an entry header read at a run's last byte stays in
    # bounds (the buffer keeps them: values are spans of it).
    buffer = b"".join([*kept, b"\0\0\0"])
    data = np.frombuffer(buffer, dtype=np.uint8)
    pos, ends = np.concatenate(run_starts), np.concatenate(run_ends)
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for step in range(MAX_SCANNED_RUN):
        # An entry's header as one word: shared, unshared and value lengths (and a byte more).
        head = words_at(data, pos, 4).astype(np.int64)
        if (head & 0x808080).any() or (step == 0 and (head & 0xFF).any()):
            return None
        following = pos + 3 + ((head >> 8) & 0xFF) + ((head >> 16) & 0xFF)
        if (following > ends).any():
            return None
        found.append((pos, head))
        more = following < ends
        pos, ends = following[more], ends[more]
        if not len(pos):
            break
    else:
        return None
    starts = np.concatenate([f[0] for f in found])
    order = np.argsort(starts, kind="stable")
    starts = starts[order]
    heads = np.concatenate([f[1] for f in found])[order]
    shared, unshared = heads & 0xFF, (heads >> 8) & 0xFF
    value_starts = starts + 3 + unshared
    value_ends = value_starts + ((heads >> 16) & 0xFF)
    if (shared[1:] > (shared + unshared)[:-1]).any():
        return None  # a shared prefix longer than the previous key: parse_block names it
    # No key budget to check here: one-byte lengths cap a run's first key at 127 bytes and
    # every key at 254, so a run of <= 64 entries (>= 3 bytes each) yields < 26x its bytes,
    # under MAX_KEY_BYTES_PER_BLOCK_BYTE.
    text = buffer.decode("latin-1")
    # Each key is the previous one's shared prefix plus its own bytes; where the shared length
    # repeats, so does the prefix (the same str, not sliced again).
    repeats = np.zeros(len(shared), dtype=bool)
    repeats[1:] = shared[1:] == shared[:-1]
    key = prefix = ""
    texts = [key := (prefix if same else (prefix := key[:n])) + text[a:e]
             for same, n, a, e in zip(repeats.tolist(), shared.tolist(), (starts + 3).tolist(), value_starts.tolist())]
    block_starts = np.searchsorted(starts, np.asarray(bases, dtype=np.int64)).tolist()
    return Entries(texts, buffer, value_starts, value_ends, block_starts)
