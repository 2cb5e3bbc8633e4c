"""File names of a bundle (tensorflow/core/util/tensor_bundle/naming.cc).

A checkpoint is addressed by a *prefix* ``P``; its files are::

    P.index                      the table of entries (see tfckpt.table)
    P.data-SSSSS-of-NNNNN        shard S of N, zero-padded to at least 5 digits, S from 0
"""

from __future__ import annotations

import re

__all__ = ["DATA_SUFFIX_RE", "INDEX_SUFFIX", "SAVED_MODEL_FILENAMES", "SAVED_MODEL_PB", "SAVED_MODEL_PBTXT",
           "SAVED_MODEL_VARIABLES", "data_filename", "index_filename", "prefix_of"]

INDEX_SUFFIX = ".index"
SAVED_MODEL_PB = "saved_model.pb"  # a SavedModel directory holds one of these two
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
SAVED_MODEL_FILENAMES = (SAVED_MODEL_PB, SAVED_MODEL_PBTXT)
SAVED_MODEL_VARIABLES = ("variables", "variables")  # its variables' prefix, under the directory
DATA_SUFFIX_RE = re.compile(r"\.data-\d{5,}-of-\d{5,}$")


def index_filename(prefix: str) -> str:
    return prefix + INDEX_SUFFIX


def data_filename(prefix: str, shard_id: int, num_shards: int) -> str:
    return f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}"


def prefix_of(path: str) -> str | None:
    """The prefix if ``path`` names a bundle's index or data file, else ``None``."""
    if path.endswith(INDEX_SUFFIX):
        return path[: -len(INDEX_SUFFIX)]
    match = DATA_SUFFIX_RE.search(path)
    return path[: match.start()] if match else None
