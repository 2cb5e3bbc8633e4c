"""Reading a table (leveldb ``table/table``) from a :class:`~tfckpt.storage.ByteSource`: the
footer (the last 48 bytes), then the index block it names, then data blocks as asked, each
through :func:`tfckpt.table.format.read_block` (trailer and CRC) and parsed by
:mod:`tfckpt.table.block`. The index block maps each data block's separator key to its
handle; the reader checks that keys increase strictly, stay within their block's separator
and that data blocks follow each other in the file.

:func:`first_value` and :func:`replace_first_value` read (and rewrite in place) the value of
a table's first entry, under the empty key (a bundle's header), without parsing the rest.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections import OrderedDict
from collections.abc import Iterator

from ..coding import MAX_VARINT32_BYTES, decode_varint
from ..errors import ChecksumError, CorruptionError
from ..storage import ByteSource
from .block import Entries, parse_block, scan_blocks
from .format import (
    BLOCK_TRAILER_SIZE,
    FOOTER_LENGTH,
    NO_COMPRESSION,
    BlockHandle,
    Footer,
    block_trailer,
    check_trailer,
    read_block,
)

__all__ = ["BLOCK_CACHE_SIZE", "TableReader", "first_value", "replace_first_value"]

BLOCK_CACHE_SIZE = 8  # data blocks kept by TableReader.get (V1 checkpoints read many keys per block)


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
    try:
        check_trailer(memoryview(table)[start:end], table[end:end + BLOCK_TRAILER_SIZE], where)
    except ChecksumError:
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
    out[contents_end:contents_end + BLOCK_TRAILER_SIZE] = block_trailer(memoryview(out)[first.offset:contents_end])
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
                                  f"{self.name}: index block", footer.index.size)
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
        entries = parse_block(self.read_block(handle, what), f"{self.name}: {what}", handle.size)
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
        return read_block(self._source, handle, self._index_end, f"{self.name}: {what} at offset {handle.offset}",
                          verify_checksums=self.verify_checksums)

    def scan(self) -> Entries:
        """Every entry, in key order, checked as :meth:`__iter__` checks them: keys strictly
        increasing and within their block's index separator."""
        handles = self._data_handles()
        blocks = [self.read_block(handle, f"data block {number}") for number, handle in enumerate(handles)]
        entries = scan_blocks(blocks, [f"{self.name}: data block {number} at offset {handle.offset}"
                                       for number, handle in enumerate(handles)], [handle.size for handle in handles])
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

