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

The plan is pure: it reads nothing and is tested on records alone. Its fast twin, for entries
given as arrays, is :mod:`tfckpt.bundle.fast_plan`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .entry import TensorInfo

__all__ = ["LOCAL", "REMOTE", "Fetch", "Tuning", "plan_fetches"]


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
