"""Writing a block's contents (leveldb ``table/block_builder``): the entries and restart array
of :mod:`tfckpt.table.block`, in the bytes TensorFlow writes::

    entry*:   shared: varint32 | non_shared: varint32 | value_length: varint32
              | key[shared:] | value
    restarts: restart_offset: fixed32 * num_restarts | num_restarts: fixed32

Every ``restart_interval``-th entry is a restart point and stores its whole key (shared = 0);
the first restart is at offset 0, so an empty block is ``fixed32(0) | fixed32(1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..coding import FIXED32, BytesLike, encode_varint

__all__ = ["BlockBuilder"]


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

