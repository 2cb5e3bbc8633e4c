"""The fast twin of :func:`tfckpt.bundle.plan.plan_fetches`: the same fetches for entries given
as arrays (the columns of :mod:`tfckpt.bundle.fast_entries`), found with numpy and one Python
step per fetch, never per entry. Bulk reads of small tensors
(:meth:`tfckpt.bundle.store.BundleStore.read_quick`) plan with it; ``tests/test_fast_twins.py``
checks that it finds the reference's very fetches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .plan import Tuning

__all__ = ["Span", "plan_spans"]


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
    """:func:`tfckpt.bundle.plan.plan_fetches` for entries given as arrays, already sorted by
    (shard, offset): the very same fetches (also where entries of a hostile index overlap), found with numpy
    and one step per fetch, not per entry: gaps cut where an entry starts too far past the
    bytes before it, and a run longer than the limit is cut with one search per fetch.

    Examples
    --------
    >>> import numpy as np
    >>> spans = plan_spans(np.array([0, 0, 0]), np.array([0, 16, 1 << 20]), np.array([16, 16, 4]),
    ...                    Tuning(gap=64, limit=1 << 30))
    >>> [(s.start, s.end, s.first, s.last) for s in spans]
    [(0, 32, 0, 2), (1048576, 1048580, 2, 3)]
    """
    out: list[Span] = []
    shard_starts = np.flatnonzero(np.diff(shard, prepend=-1) != 0).tolist()
    for a, b in zip(shard_starts, [*shard_starts[1:], len(shard)]):
        shard_id, starts = int(shard[a]), offset[a:b]
        ends = starts + size[a:b]
        running = np.maximum.accumulate(ends)  # overlapping entries are read once
        cuts = (np.flatnonzero(starts[1:] - running[:-1] > tuning.gap) + 1).tolist()
        for first, last in zip([0, *cuts], [*cuts, b - a]):
            at = first
            while at < last:
                start = int(starts[at])
                if at == first or running[at - 1] <= ends[at]:
                    # No entry before ``at`` reaches past its end, so the bytes this fetch has
                    # read up to each entry are ``running`` (no hole over the gap inside a run):
                    # the fetch ends before the first entry whose end is past the limit.
                    bound = start + tuning.limit
                    stop = last if bound >= running[last - 1] else \
                        max(at + 1, at + int(np.searchsorted(running[at:last], bound, side="right")))
                    out.append(Span(shard_id, start, int(running[stop - 1]), a + at, a + stop))
                    at = stop
                    continue
                # Rare (a hostile index): an entry before ``at`` overlaps past it, so after this
                # cut, bytes it covered may be a hole of the new fetch: entry by entry, for this
                # fetch only.
                stop, covered = at + 1, int(ends[at])
                while stop < last and max(covered, int(ends[stop])) - start <= tuning.limit \
                        and int(starts[stop]) - covered <= tuning.gap:
                    covered = max(covered, int(ends[stop]))
                    stop += 1
                out.append(Span(shard_id, start, covered, a + at, a + stop))
                at = stop
    return out
