"""The fast twin of :meth:`tfckpt.bundle.store.BundleStore.read_many` for small fixed-size
tensors: no record per tensor. The entries' columns (:mod:`tfckpt.bundle.fast_entries`) are
screened with the rules of :mod:`tfckpt.bundle.validate` applied to arrays (size against dtype
and shape, shard ids the header names, bytes inside the data file), planned with
:mod:`tfckpt.bundle.fast_plan`, and each fetch's tensors are checksummed and cut at once
(:mod:`tfckpt.bundle.fast_payload`). The store supplies the I/O (data file sizes, reads) and
the reference read that names a tensor whose checksum fails; any tensor not screened in here
is read through its record. ``tests/test_fast_twins.py`` checks the twin against ``read_many``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..dtypes import DType
from . import validate
from .fast_entries import PlainEntries
from .fast_payload import cut_many
from .fast_plan import plan_spans
from .plan import LOCAL

__all__ = ["QUICK_MAX_BYTES", "quick_rows", "quick_size", "read_rows"]

# Tensors up to this size are read in bulk without per-tensor records: the regime where
# per-tensor Python costs more than the bytes. Larger ones are read into their own arrays.
QUICK_MAX_BYTES = 64 << 10


def quick_size(kind: tuple[DType, tuple[int, ...]] | None) -> int:
    """The stored size of a tensor of this dtype and shape if it may be read here, else -1
    (a hostile shape's size may not fit in int64: it is left to the record path's checks)."""
    if (kind is None or not kind[0].is_fixed_size or kind[0].as_numpy_dtype is None
            or validate.array_problem(*kind) is not None):  # left to the reader, which says why
        return -1
    size = validate.fixed_nbytes(*kind)
    return size if size <= QUICK_MAX_BYTES else -1


def quick_rows(plain: PlainEntries, rows: np.ndarray, num_shards: int,
               shard_size: Callable[[int], int | None]) -> np.ndarray:
    """Whether each entry ``rows[i]`` of ``plain`` (-1: no entry) may be read by
    :func:`read_rows`: decoded in the plain layout, its size the one its dtype and shape need
    (at most :data:`QUICK_MAX_BYTES`), in a data file the header names, its bytes inside that
    file (``shard_size``: the file's size, ``None`` for a file read elsewhere, e.g. remote)."""
    expected = np.array([quick_size(kind) for kind in plain.kinds], dtype=np.int64)
    known = rows >= 0
    at = np.where(known, rows, 0)
    size, shard, offset = plain.size[at], plain.shard_id[at], plain.offset[at]
    # The rules check_stored applies, on the columns: size (expected is capped), shard, bytes.
    quick: np.ndarray = (known & plain.plain[at] & (size == expected[plain.kind[at]])
             & validate.shard_inside(shard, num_shards))
    for shard_id in np.unique(shard[quick]).tolist():
        in_shard = shard == shard_id
        file_size = shard_size(shard_id)
        if file_size is None:
            quick &= ~in_shard
        else:
            quick &= ~in_shard | validate.bytes_inside(offset, size, file_size)
    return quick


def read_rows(plain: PlainEntries, rows: np.ndarray, read_into: Callable[[int, int, np.ndarray], None],
              verify: bool, reference: Callable[[int], object]) -> list[np.ndarray[Any, Any]]:
    """The values of the entries ``rows`` of ``plain`` (each one :func:`quick_rows` accepted,
    of a little-endian bundle), read as one plan: sorted by (shard, offset), neighbours fetched
    together (``read_into(shard_id, start, buffer)``), checksums compared in bulk, values cut as
    views. ``reference(i)`` reads value ``i`` through its record, which raises the precise
    error; it is called for the first tensor whose checksum fails."""
    shard, offset, size = plain.shard_id[rows], plain.offset[rows], plain.size[rows]
    kinds = [(k[0].as_numpy_dtype, k[1]) if k is not None and k[0].as_numpy_dtype is not None else (np.dtype("u1"), ())
             for k in plain.kinds]
    out: list[np.ndarray[Any, Any]] = [np.empty(0)] * len(rows)
    order = np.lexsort((offset, shard))
    for fetch in plan_spans(shard[order], offset[order], size[order], LOCAL):
        picked = order[fetch.first:fetch.last]
        buffer = np.empty(fetch.end - fetch.start, dtype=np.uint8)
        read_into(fetch.shard_id, fetch.start, buffer)

        def mismatch(i: int, picked: np.ndarray = picked) -> None:
            reference(int(picked[i]))
        values = cut_many(buffer, offset[picked] - fetch.start, size[picked], kinds, plain.kind[rows[picked]],
                          plain.masked_crc32c[rows[picked]], verify, mismatch)
        for i, value in zip(picked.tolist(), values):
            out[i] = value
    return out
