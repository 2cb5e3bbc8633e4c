"""Planning reads of many entries: which byte ranges to fetch, in which order.

Reading tensors one by one costs a system call each on local disk and a round trip each on
object storage (30-100 ms apiece). A plan instead sorts the wanted entries by (shard, offset)
and coalesces neighbours into *fetches*: one contiguous byte range each, fetched with one
read (or one ranged GET), from which the tensors are then cut as views. Two numbers shape a
plan, chosen per storage (see :data:`LOCAL` and :data:`REMOTE`):

``gap``
    unwanted bytes between two entries that are still read through rather than starting a
    new fetch: cheaper than a second system call (local) or round trip (remote).
``limit``
    the most bytes one coalesced fetch may span, which also bounds the memory a fetch pins:
    an entry larger than this is a fetch of its own (read straight into its own array).

The plan is pure: it reads nothing and is tested on records alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .entry import TensorInfo

__all__ = ["LOCAL", "REMOTE", "Fetch", "Span", "Tuning", "plan_fetches", "plan_spans"]


@dataclass(frozen=True)
class Tuning:
    """How aggressively to coalesce (see the module docstring)."""

    gap: int
    limit: int


# Local: a pread costs ~1-2 us, copying 4 KiB about as much. Remote: at ~30 ms and ~100 MB/s,
# 1 MiB of gap costs less than one more round trip; 16 MiB ranges keep many in flight.
LOCAL = Tuning(gap=4 << 10, limit=8 << 20)
REMOTE = Tuning(gap=1 << 20, limit=16 << 20)


@dataclass(frozen=True)
class Fetch:
    """One byte range ``[start, end)`` of data file ``shard_id``, holding ``entries``."""

    shard_id: int
    start: int
    end: int
    entries: tuple[TensorInfo, ...]

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def coalesced(self) -> bool:
        """Whether tensors are cut out of a shared buffer (else: one entry, read on its own)."""
        return len(self.entries) > 1


def plan_fetches(infos: Iterable[TensorInfo], tuning: Tuning) -> list[Fetch]:
    """The fetches that read every entry in ``infos`` (stored entries, not partitioned
    tensors' full entries), in (shard, offset) order. An entry listed twice is read once.

    Examples
    --------
    >>> from tfckpt.bundle.entry import TensorInfo
    >>> from tfckpt.dtypes import as_dtype
    >>> f32 = as_dtype("float32")
    >>> infos = [TensorInfo("b", f32, (4,), 0, 16, 16), TensorInfo("a", f32, (4,), 0, 0, 16),
    ...          TensorInfo("far", f32, (1,), 0, 1 << 20, 4)]
    >>> [(f.start, f.end, [i.name for i in f.entries]) for f in plan_fetches(infos, Tuning(gap=64, limit=1 << 30))]
    [(0, 32, ['a', 'b']), (1048576, 1048580, ['far'])]
    """
    order = sorted({id(info): info for info in infos}.values(), key=lambda info: (info.shard_id, info.offset, info.size))
    fetches: list[Fetch] = []
    group: list[TensorInfo] = []
    start = end = 0
    for info in order:
        info_end = info.offset + info.size
        if group and (info.shard_id != group[0].shard_id or info.offset - end > tuning.gap
                      or max(end, info_end) - start > tuning.limit):
            fetches.append(Fetch(group[0].shard_id, start, end, tuple(group)))
            group = []
        if not group:
            start, end = info.offset, info_end
        group.append(info)
        end = max(end, info_end)
    if group:
        fetches.append(Fetch(group[0].shard_id, start, end, tuple(group)))
    return fetches


@dataclass(frozen=True)
class Span:
    """A fetch of :func:`plan_spans`: bytes ``[start, end)`` of data file ``shard_id``,
    holding the sorted entries ``first`` to ``last - 1``."""

    shard_id: int
    start: int
    end: int
    first: int
    last: int


def plan_spans(shard: np.ndarray, offset: np.ndarray, size: np.ndarray, tuning: Tuning) -> list[Span]:
    """:func:`plan_fetches` for entries given as arrays, already sorted by (shard, offset):
    the very same fetches (also where entries of a hostile index overlap), found with numpy (gaps) and a loop over fetches, not entries (limits).

    Examples
    --------
    >>> import numpy as np
    >>> spans = plan_spans(np.array([0, 0, 0]), np.array([0, 16, 1 << 20]), np.array([16, 16, 4]),
    ...                    Tuning(gap=64, limit=1 << 30))
    >>> [(s.start, s.end, s.first, s.last) for s in spans]
    [(0, 32, 0, 2), (1048576, 1048580, 2, 3)]
    """
    end = offset + size
    out: list[Span] = []
    shard_starts = np.flatnonzero(np.diff(shard, prepend=-1) != 0).tolist()
    for a, b in zip(shard_starts, [*shard_starts[1:], len(shard)]):
        running = np.maximum.accumulate(end[a:b])  # overlapping entries are read once
        cuts = (np.flatnonzero(offset[a + 1:b] - running[:-1] > tuning.gap) + 1).tolist()
        for first, last in zip([0, *cuts], [*cuts, b - a]):
            if running[last - 1] - offset[a + first] <= tuning.limit:
                out.append(Span(int(shard[a]), int(offset[a + first]), int(running[last - 1]), a + first, a + last))
                continue
            start, stop, begin = int(offset[a + first]), int(end[a + first]), a + first
            for i in range(a + first + 1, a + last):  # rare: a run of small tensors longer than the limit
                # The gap is checked again: after a cut, bytes that an earlier overlapping entry
                # covered may be a hole of the new fetch.
                if max(stop, int(end[i])) - start > tuning.limit or int(offset[i]) - stop > tuning.gap:
                    out.append(Span(int(shard[a]), start, stop, begin, i))
                    start, stop, begin = int(offset[i]), int(end[i]), i
                stop = max(stop, int(end[i]))
            out.append(Span(int(shard[a]), start, stop, begin, a + last))
    return out
