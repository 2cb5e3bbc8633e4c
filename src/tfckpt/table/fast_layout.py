"""The fast twin of the entry-by-entry :class:`tfckpt.table.builder.TableBuilder`: a table's data
blocks laid out with numpy, for indexes of 10^4 to 10^6 entries: the bytes of
:mod:`tfckpt.table.block_builder` (entries with their varint lengths, key suffixes and values;
each block's restart array) for a fresh table's data blocks, which :mod:`tfckpt.table.builder`
writes with their trailers.

:class:`tfckpt.table.block_builder.BlockBuilder` adds entries one at a time (a Python step
each, ~1 us). Here the same bytes are computed for all entries together, in three steps:

1. the prefix each key shares with the one before (a padded key matrix compared row with
   row), which also checks that keys strictly increase;
2. where blocks end: a block closes after the entry that brings its size estimate (entries,
   plus 4 bytes per restart point, plus 4) to the block size. An entry's length depends on
   whether it is a restart point (every ``interval``-th entry of its block stores its whole
   key), so the estimate of a block from ``s`` to ``j`` is a prefix sum of the lengths without
   restarts plus, from a prefix sum taken every ``interval`` entries, the restart points'
   extra bytes: one search per block, not one step per entry;
3. the entries written into one buffer: the three length varints, key suffixes and values
   copied as spans.

The result is byte for byte what the entry-by-entry builder makes (``tests/test_fast_twins.py``
compares them); anything it does not cover (a huge entry that gets a block of its own, a very
long key) is left to that builder.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..coding import FIXED32, encode_varints, put_rows, put_spans, varint_lengths

__all__ = ["MAX_KEY_WIDTH", "DataBlocks", "layout_data_blocks"]

MAX_KEY_WIDTH = 1 << 10  # longer keys: the entry-by-entry builder (the key matrix would be wide)
_CHUNK_BYTES = 8 << 20  # bound on the scratch arrays of one step (the key matrix, the index arrays)


@dataclass(frozen=True)
class DataBlocks:
    """Entries laid out in data blocks. ``entries`` holds every entry as stored; entry ``i``
    starts at ``offsets[i]``; block ``b`` holds entries ``starts[b]`` to ``starts[b + 1] - 1``.
    The last block is ``complete`` if it reached the block size (else more entries may join)."""

    entries: np.ndarray
    offsets: np.ndarray
    starts: list[int]
    complete: bool
    interval: int

    def restarts(self, block: int) -> list[int]:
        """The restart points of a block: where its entries that store a whole key start."""
        first, end = self.starts[block], self.starts[block + 1]
        points: list[int] = (self.offsets[first:end:self.interval] - self.offsets[first]).tolist()
        return points

    def body(self, block: int) -> memoryview:
        """The block's entries, without the restart array."""
        first, end = self.starts[block], self.starts[block + 1]
        return self.entries.data[int(self.offsets[first]):int(self.offsets[end])]

    def contents(self, block: int) -> bytes:
        """The block as stored: its entries, restart points and their count."""
        restarts = self.restarts(block)
        return b"".join((self.body(block), np.asarray(restarts, dtype="<u4").tobytes(),
                         FIXED32.pack(len(restarts))))


def layout_data_blocks(keys: Sequence[bytes], values: np.ndarray, value_lengths: np.ndarray, block_size: int,
                       interval: int) -> DataBlocks | None:
    """Lay out ``keys`` (strictly increasing) with their values (``values``, uint8, holds them
    back to back) in blocks of ``block_size``, starting a fresh table; ``None`` if an entry is
    too long for this layout (see the module docstring). Raises ``ValueError`` if keys do not
    strictly increase."""
    n = len(keys)
    key_lengths = np.fromiter(map(len, keys), dtype=np.int64, count=n)
    value_lengths = np.asarray(value_lengths, dtype=np.int64)
    if not n or int(key_lengths.max()) > MAX_KEY_WIDTH or bool(((key_lengths + value_lengths) >= 2 * block_size).any()):
        return None
    shared = _shared_prefixes(keys, key_lengths)
    unshared = key_lengths - shared
    tail = varint_lengths(value_lengths) + value_lengths
    plain = varint_lengths(shared) + varint_lengths(unshared) + unshared + tail  # entry lengths, no restart
    whole = 1 + varint_lengths(key_lengths) + key_lengths + tail  # at a restart point
    starts = _block_starts(plain, whole - plain, block_size, interval)
    complete = starts[-1] == n
    if not complete:
        starts.append(n)
    # Every ``interval``-th entry of each block is a restart point: it shares nothing.
    first_of_block = np.repeat(np.asarray(starts[:-1]), np.diff(starts))
    restart = (np.arange(n) - first_of_block) % interval == 0
    shared = np.where(restart, 0, shared)
    lengths = np.where(restart, whole, plain)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    entries = _write_entries(keys, key_lengths, shared, values, value_lengths, offsets)
    return DataBlocks(entries, offsets, starts, complete, interval)


def _shared_prefixes(keys: Sequence[bytes], key_lengths: np.ndarray) -> np.ndarray:
    """How many leading bytes each key shares with the previous one (0 for the first)."""
    n = len(keys)
    width = max(1, int(key_lengths.max()))
    shared = np.zeros(n, dtype=np.int64)
    step = max(1, _CHUNK_BYTES // width)
    for start in range(1, n, step):  # rows start - 1 .. end - 1, each compared with the one before
        end = min(n, start + step)
        matrix = np.array(keys[start - 1:end], dtype=f"S{width}").view(np.uint8).reshape(-1, width)
        before, after = matrix[:-1], matrix[1:]
        differ = before != after
        first = np.where(differ.any(axis=1), differ.argmax(axis=1), width)
        length_before, length_after = key_lengths[start - 1:end - 1], key_lengths[start:end]
        common = np.minimum(length_before, length_after)
        inside = first < common  # the keys differ at a byte both have
        rows = np.arange(len(first))
        at = np.minimum(first, width - 1)
        increasing = np.where(inside, after[rows, at] > before[rows, at], length_after > length_before)
        if not increasing.all():
            bad = start + int(np.argmin(increasing))
            raise ValueError(f"table keys must be strictly increasing: {keys[bad]!r} after {keys[bad - 1]!r}")
        shared[start:end] = np.minimum(first, common)
    return shared


def _block_starts(plain: np.ndarray, extra: np.ndarray, block_size: int, interval: int) -> list[int]:
    """The first entry of each block, and ``n`` after a last block that reached the size.
    ``plain`` is each entry's length if not a restart point, ``extra`` what a restart adds."""
    n = len(plain)
    before = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(plain, out=before[1:])
    # along[k]: the extra bytes of entries k, k - interval, k - 2 * interval, ... (back to 0)
    padded = np.zeros(-(-n // interval) * interval, dtype=np.int64)
    padded[:n] = extra
    along: list[int] = padded.reshape(-1, interval).cumsum(axis=0).reshape(-1)[:n].tolist()
    prefix: list[int] = before.tolist()
    longest = block_size // 3 + 2  # every entry takes at least 3 bytes: no block holds more

    starts = [0]
    first = 0
    while first < n:
        earlier = along[first - interval] if first >= interval else 0

        def estimate(j: int, first: int = first, earlier: int = earlier) -> int:
            restarts = (j - first) // interval  # restart points after the first, up to entry j
            return (prefix[j + 1] - prefix[first] + along[first + restarts * interval] - earlier
                    + FIXED32.size * (restarts + 1) + FIXED32.size)

        # The estimate grows with every entry: the block ends at the first entry that fills it.
        stop = min(n, first + longest)
        last = first + bisect.bisect_left(range(first, stop), block_size, key=estimate)
        if last >= n:
            break  # the last block stays open
        first = last + 1
        starts.append(first)
    return starts


def _write_entries(keys: Sequence[bytes], key_lengths: np.ndarray, shared: np.ndarray, values: np.ndarray,
                   value_lengths: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Every entry (shared, unshared and value lengths as varints, key suffix, value) at its
    offset, written in chunks of rows so that the index arrays stay bounded."""
    n = len(keys)
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    key_bytes = np.frombuffer(b"".join(keys), dtype=np.uint8)
    key_starts = np.cumsum(key_lengths) - key_lengths
    value_starts = np.cumsum(value_lengths) - value_lengths
    unshared = key_lengths - shared
    start = 0
    while start < n:  # rows whose entries total about a chunk
        end = max(start + 1, int(np.searchsorted(offsets, offsets[start] + _CHUNK_BYTES // 8, side="right")) - 1)
        end = min(end, n)
        at = offsets[start:end].copy()
        for field in (shared[start:end], unshared[start:end], value_lengths[start:end]):
            rows, lengths = encode_varints(field)
            put_rows(out, at, rows, lengths)
            at += lengths
        put_spans(out, at, key_bytes, key_starts[start:end] + shared[start:end], unshared[start:end])
        at += unshared[start:end]
        put_spans(out, at, values, value_starts[start:end], value_lengths[start:end])
        start = end
    return out
