"""The fast twin of :func:`tfckpt.bundle.payload.cut_fixed`: many little-endian fixed-size
tensors cut from one fetched buffer at once (bulk reads of small tensors,
:meth:`tfckpt.bundle.store.BundleStore.read_quick`), their checksums computed in one pass and
compared with numpy. The byte layout and the checksum rule are :mod:`tfckpt.bundle.payload`'s,
whose ``cut_fixed`` also raises the precise error for a tensor that fails;
``tests/test_fast_twins.py`` checks the twin against it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..coding import crc32c_spans, unmask_many
from ..errors import ChecksumError
from .payload import byte_view

__all__ = ["cut_many"]


def cut_many(buffer: np.ndarray[Any, Any], ats: np.ndarray, nbytes: np.ndarray,
             kinds: Sequence[tuple[np.dtype[Any], tuple[int, ...]]], kind: np.ndarray, stored_crcs: np.ndarray,
             verify: bool, on_mismatch: Callable[[int], None]) -> list[np.ndarray[Any, Any]]:
    """:func:`tfckpt.bundle.payload.cut_fixed` for many little-endian tensors of one fetched ``buffer``: tensor
    ``i`` starts at byte ``ats[i]``, has ``nbytes[i]`` bytes (checked by the caller against
    its dtype and shape) and dtype and shape ``kinds[kind[i]]``. Checksums are
    computed in one pass and compared with numpy; ``on_mismatch(i)`` is called for the first
    tensor that fails (it raises the precise error). Aligned tensors come back as views made
    from one strided window per kind (a view each is then one indexing operation, not three);
    others are copied out."""
    if verify and len(ats):
        bad = np.flatnonzero(crc32c_spans(buffer.data, ats, ats + nbytes) != unmask_many(stored_crcs))
        if len(bad):
            on_mismatch(int(bad[0]))
            raise ChecksumError(f"checksum mismatch in tensor {int(bad[0])} of a bulk read")  # on_mismatch raises first
    out: list[Any] = [None] * len(ats)
    for k in np.unique(kind).tolist():
        dtype, shape = kinds[k]
        rows = np.flatnonzero(kind == k)
        starts = ats[rows]
        aligned = starts % dtype.alignment == 0
        if dtype.itemsize and (starts % dtype.itemsize == 0).all() and aligned.all():
            size = dtype.itemsize * math.prod(shape)
            inner = np.empty(shape, dtype).strides
            # Every itemsize-aligned position of the buffer as a tensor of this kind.
            window = np.ndarray(((len(buffer) - size) // dtype.itemsize + 1, *shape), dtype, buffer,
                                strides=(dtype.itemsize, *inner))
            elements = (starts // dtype.itemsize).tolist()
            views = [window[e, ...] for e in elements] if not shape else [window[e] for e in elements]
        else:
            views = []
            for at in starts.tolist():
                value = np.empty(shape, dtype=dtype)
                byte_view(value)[:] = buffer[at:at + value.nbytes].data
                views.append(value)
        for row, value in zip(rows.tolist(), views):
            out[row] = value
    return out
