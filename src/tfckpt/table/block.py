"""Reading a block's contents (leveldb ``table/block``): data, metaindex and index blocks alike.

Block contents (what :func:`tfckpt.table.format.read_block` returns)::

    entry*:   shared: varint32 | non_shared: varint32 | value_length: varint32
              | key[shared:] (non_shared bytes) | value (value_length bytes)
    restarts: restart_offset: fixed32 * num_restarts | num_restarts: fixed32

Restart entries store their whole key (shared == 0); the others share a prefix with the
previous key. Keys are strictly increasing in unsigned bytewise order (checked by the table
reader, which knows the block's index separator). :func:`parse_block` walks the entries one by
one with precise errors; :func:`scan_blocks` finds the entries of many blocks at once with
numpy when they have the usual layout.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..coding import FIXED32, MAX_VARINT32_BYTES, decode_varint, words_at
from ..errors import CorruptionError

__all__ = ["MAX_KEY_BYTES_PER_BLOCK_BYTE", "MAX_SCANNED_RUN", "Entries", "parse_block", "scan_blocks"]

# Entries between two restarts that the vectorised scan follows (writers use 16); a longer run
# is left to the entry-by-entry parser, which is linear whatever the restarts say.
MAX_SCANNED_RUN = 64
# Prefix compression lets a few bytes stand for a whole previous key: a block whose keys each
# share all of the previous one would materialise far more than the file holds. A key is at
# most the bytes of its restart run, so TensorFlow's layout (a restart every 16 entries) yields
# keys of at most 16x a block's bytes; a block whose keys would take more than this factor is
# refused before they are built. (TF's own reader walks one key at a time, but its
# CheckpointReader keeps every name in a map, so it would materialise them all too.) The
# factor applies to the block's bytes in the file: a compressed block's contents are up to
# snappy.MAX_EXPANSION times more, and must not multiply the allowance.
MAX_KEY_BYTES_PER_BLOCK_BYTE = 32


def _varint32(buf: bytes, pos: int, limit: int, where: str) -> tuple[int, int]:
    if pos < limit and buf[pos] < 0x80:  # fast path: almost every length fits in one byte
        return buf[pos], pos + 1
    return decode_varint(buf, pos, limit, MAX_VARINT32_BYTES, where)


def parse_block(contents: bytes, where: str, stored_size: int | None = None) -> list[tuple[bytes, bytes]]:
    """All ``(key, value)`` entries of a block's contents, in stored order. ``stored_size``
    is the block's size in the file (its compressed size; by default the contents' size)."""
    return list(_block_entries(contents, where, stored_size))


def _block_entries(contents: bytes, where: str, stored_size: int | None = None) -> Iterator[tuple[bytes, bytes]]:
    """:func:`parse_block`, one entry at a time (a caller keeping only some form of each key
    does not hold the block's keys twice). The keys may take at most
    :data:`MAX_KEY_BYTES_PER_BLOCK_BYTE` times the block's bytes in the file in all."""
    n = len(contents)
    stored = n if stored_size is None else stored_size
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
    key_budget = MAX_KEY_BYTES_PER_BLOCK_BYTE * stored
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
                                  f"than {MAX_KEY_BYTES_PER_BLOCK_BYTE} times its {stored} bytes in the file "
                                  f"(each sharing "
                                  f"{shared} bytes of the previous key): a prefix-compression bomb")
        key = key[:shared] + contents[pos:key_end]
        yield key, contents[key_end:value_end]
        pos = value_end


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


def scan_blocks(blocks: Sequence[bytes], wheres: Sequence[str], stored_sizes: Sequence[int] | None = None
                ) -> Entries:
    """The entries of consecutive data blocks' contents (as :func:`parse_block` finds them,
    block by block; ``wheres[b]`` names block ``b`` in errors, ``stored_sizes[b]`` is its
    size in the file, by default its contents' size), vectorised where the blocks have the
    usual layout."""
    sizes = [len(contents) for contents in blocks] if stored_sizes is None else list(stored_sizes)
    scanned = _scan_usual(blocks, sizes)
    if scanned is not None:
        return scanned
    texts: list[str] = []
    values: list[bytes] = []
    firsts = []
    for contents, where, stored in zip(blocks, wheres, sizes):
        firsts.append(len(texts))
        for key, value in _block_entries(contents, where, stored):
            texts.append(key.decode("latin-1"))
            values.append(value)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    ends = np.cumsum(lengths)
    return Entries(texts, b"".join(values), ends - lengths, ends, firsts)


def _scan_usual(blocks: Sequence[bytes], stored_sizes: Sequence[int] | None = None) -> Entries | None:
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
    # One-byte lengths cap a run's first key at 127 bytes and every key at 254, so a run of
    # <= 64 entries (>= 3 bytes each) yields < 26x its bytes; but a compressed block's
    # contents are larger than its bytes in the file, so the budget is checked (per block).
    block_of = np.searchsorted(np.asarray(bases, dtype=np.int64), starts, side="right") - 1
    key_bytes = np.bincount(block_of, weights=shared + unshared, minlength=len(blocks))
    sizes = [len(contents) for contents in blocks] if stored_sizes is None else stored_sizes
    if (key_bytes > MAX_KEY_BYTES_PER_BLOCK_BYTE * np.asarray(sizes, dtype=np.float64)).any():
        return None  # parse_block names the block and the entry
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

