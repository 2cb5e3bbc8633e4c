"""Writing a table (leveldb ``table/table_builder``) exactly as TensorFlow's ``TableBuilder``
does, into a sink::

    [data block][trailer] ... [metaindex block][trailer] [index block][trailer] [footer]

Data blocks of :data:`BLOCK_SIZE` bytes with a restart every :data:`DATA_RESTART_INTERVAL`
entries (:mod:`tfckpt.table.block_builder`), never compressed; an empty metaindex block; the
index block (a restart at every entry) maps a separator key (>= every key of a data block,
< every key of the next) to that block's handle; trailers and footer as
:mod:`tfckpt.table.format` states them. A fresh table's data blocks are laid out with numpy
(:mod:`tfckpt.table.fast_layout`, the same bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

from .block_builder import BlockBuilder
from .fast_layout import layout_data_blocks
from .format import BlockHandle, Footer, block_trailer

__all__ = [
    "BLOCK_SIZE",
    "DATA_RESTART_INTERVAL",
    "INDEX_RESTART_INTERVAL",
    "TableBuilder",
    "find_short_successor",
    "find_shortest_separator",
]

BLOCK_SIZE = 256 * 1024  # tensorflow table_options.h: block_size for bundle indexes
DATA_RESTART_INTERVAL = 16  # leveldb options.h block_restart_interval
INDEX_RESTART_INTERVAL = 1  # TableBuilder forces 1 for the index block


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
        data blocks are laid out with numpy (:mod:`tfckpt.table.fast_layout`, the same bytes),
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
        trailer = block_trailer(contents)
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

