"""LevelDB-style immutable table (SSTable), the container of a bundle's ``.index`` file, split
as LevelDB splits ``table/``: :mod:`~tfckpt.table.format` (handles, trailers and their CRC,
footer), :mod:`~tfckpt.table.block` (reading a block), :mod:`~tfckpt.table.block_builder`,
:mod:`~tfckpt.table.reader`, :mod:`~tfckpt.table.builder` and :mod:`~tfckpt.table.fast_layout` (a
fresh table's data blocks laid out with numpy: the builder's fast twin). Each module's docstring states the bytes it
reads or writes; the file as a whole::

    [data block][trailer] ... [metaindex block][trailer] [index block][trailer] [footer]

TensorFlow writes 256 KiB data blocks, restart interval 16 (1 for the index block) and never
compresses; the builder reproduces its bytes exactly. This package re-exports the public
names of its modules.
"""

from __future__ import annotations

from .block import MAX_KEY_BYTES_PER_BLOCK_BYTE, MAX_SCANNED_RUN, Entries, parse_block, scan_blocks
from .block_builder import BlockBuilder
from .builder import (
    BLOCK_SIZE,
    DATA_RESTART_INTERVAL,
    INDEX_RESTART_INTERVAL,
    TableBuilder,
    find_short_successor,
    find_shortest_separator,
)
from .format import (
    BLOCK_TRAILER_SIZE,
    FOOTER_LENGTH,
    MAX_BLOCK_HANDLE_LENGTH,
    NO_COMPRESSION,
    SNAPPY_COMPRESSION,
    TABLE_MAGIC,
    BlockHandle,
    Footer,
)
from .reader import BLOCK_CACHE_SIZE, TableReader, first_value, replace_first_value

__all__ = [
    "BLOCK_CACHE_SIZE",
    "BLOCK_SIZE",
    "BLOCK_TRAILER_SIZE",
    "DATA_RESTART_INTERVAL",
    "FOOTER_LENGTH",
    "INDEX_RESTART_INTERVAL",
    "MAX_BLOCK_HANDLE_LENGTH",
    "MAX_KEY_BYTES_PER_BLOCK_BYTE",
    "MAX_SCANNED_RUN",
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
    "scan_blocks",
]
