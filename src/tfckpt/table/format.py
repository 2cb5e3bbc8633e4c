"""A table's frame: block handles, block trailers and the footer (leveldb ``table/format``).

File layout (TF ``table_format.txt``: LevelDB's format without filter blocks)::

    [data block][trailer] ... [metaindex block][trailer] [index block][trailer] [footer]

Block trailer, the 5 bytes after each block's contents (read and checked by :func:`read_block`,
written by :func:`block_trailer`; the CRC is checked in :func:`check_trailer` only)::

    type: uint8 (0 = none, 1 = raw Snappy) | crc: fixed32 = mask(crc32c(contents + type))

BlockHandle, where a block is: ``offset: varint64 | size: varint64`` (size excludes the
trailer). Footer, the last 48 bytes of the file::

    metaindex handle | index handle | zeros to 40 bytes | magic: fixed64 = TABLE_MAGIC
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import snappy
from ..coding import FIXED32, FIXED64, BytesLike, crc32c, decode_varint, encode_varint, mask, unmask
from ..errors import ChecksumError, CorruptionError, UnsupportedError
from ..storage import ByteSource

__all__ = [
    "BLOCK_TRAILER_SIZE",
    "FOOTER_LENGTH",
    "MAX_BLOCK_HANDLE_LENGTH",
    "NO_COMPRESSION",
    "SNAPPY_COMPRESSION",
    "TABLE_MAGIC",
    "BlockHandle",
    "Footer",
    "block_trailer",
    "check_trailer",
    "read_block",
]

TABLE_MAGIC = 0xDB4775248B80FB57  # leveldb table/format.h kTableMagicNumber
MAX_BLOCK_HANDLE_LENGTH = 20  # two varint64s
FOOTER_LENGTH = 2 * MAX_BLOCK_HANDLE_LENGTH + FIXED64.size  # 48
BLOCK_TRAILER_SIZE = 1 + FIXED32.size  # type byte + masked crc
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


def block_trailer(contents: BytesLike, kind: int = NO_COMPRESSION) -> bytes:
    """The trailer stored after a block's ``contents`` of type ``kind``: the type byte and
    the masked CRC32C of the contents followed by that byte."""
    type_byte = bytes([kind])
    return type_byte + FIXED32.pack(mask(crc32c(type_byte, crc32c(contents))))


def check_trailer(contents: BytesLike, trailer: BytesLike, where: str) -> None:
    """Raise :class:`ChecksumError` unless ``trailer`` (a block's 5 trailer bytes) holds the
    CRC of ``contents`` and its type byte: the one place a block checksum is compared."""
    (stored,) = FIXED32.unpack_from(trailer, 1)
    actual = crc32c(trailer[:1], crc32c(contents))
    if unmask(stored) != actual:
        raise ChecksumError(f"{where}: block checksum mismatch (stored {unmask(stored):#010x}, "
                            f"computed {actual:#010x})")


def read_block(source: ByteSource, handle: BlockHandle, blocks_end: int, where: str, *,
               verify_checksums: bool = True) -> bytes:
    """The verified, decompressed contents of the block at ``handle`` in ``source``, whose
    blocks end at ``blocks_end`` (where the footer starts); ``where`` names it in errors."""
    end = handle.offset + handle.size + BLOCK_TRAILER_SIZE
    if end > blocks_end:
        raise CorruptionError(f"{where}: block of {handle.size} bytes (+{BLOCK_TRAILER_SIZE} "
                              f"trailer) runs past the table's blocks, which end at {blocks_end}")
    raw = source.read_at(handle.offset, handle.size + BLOCK_TRAILER_SIZE)
    contents, trailer = raw[: handle.size], raw[handle.size:]
    if verify_checksums:
        check_trailer(contents, trailer, where)
    kind = trailer[0]
    if kind == NO_COMPRESSION:
        return contents
    if kind == SNAPPY_COMPRESSION:
        return snappy.decompress(contents, where)
    raise UnsupportedError(f"{where}: bad block type {kind} (expected 0 = none or 1 = snappy)")
