"""The fast twins (ARCHITECTURE.md "Fast twins"): each vectorised module of a per-entry
reference path, tested here against its reference, one section per twin. Each property draws
ordinary and hostile input; the twin must give the reference's result, and where the reference
refuses, refuse too (or leave the row to the reference)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from timing import confirmed, cpu_seconds

from tfckpt.bundle import fast_plan, plan
from tfckpt.bundle.entry import TensorInfo
from tfckpt.dtypes import as_dtype

F32 = as_dtype("float32")


# -- bundle/fast_plan: plan_spans == plan.plan_fetches ---------------------------------------

def adjacent_runs(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """Entries back to back (or nearly, or overlapping a little) in long runs: the layout of a
    save of many small tensors, where one run spans many fetch limits."""
    layout, shard = [], 0
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, 100))
        for size, step in draw(st.lists(st.tuples(st.integers(0, 64), st.integers(-8, 12)), max_size=80)):
            layout.append((shard, at, size))
            at = max(0, at + size + (step if step < 0 or step > 8 else 0))
        shard += draw(st.integers(0, 1))
    return sorted(layout)


scattered = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 5000), st.integers(0, 900)), max_size=60).map(sorted)


@settings(max_examples=400, deadline=None)
@given(st.one_of(scattered, st.composite(adjacent_runs)()), st.integers(0, 600), st.integers(1, 3000))
def test_plan_spans_finds_the_fetches_plan_fetches_finds(layout: list[tuple[int, int, int]], gap: int,
                                                         limit: int) -> None:
    """The array planner used by bulk reads of small tensors keeps the planner's rules (each
    entry in one fetch that holds it, no fetch over the limit unless alone, no hole over the
    gap), and finds the record planner's very fetches: on scattered entries, on long runs of
    adjacent ones cut by the limit many times, and where entries overlap (a hostile index:
    after a cut, bytes an earlier entry covered may be a hole of the next fetch)."""
    infos = [TensorInfo(f"t{i}", F32, (size // 4,), shard, offset, size) for i, (shard, offset, size) in enumerate(layout)]
    tuning = plan.Tuning(gap=gap, limit=limit)
    columns = np.array(layout, dtype=np.int64).reshape(-1, 3)
    spans = fast_plan.plan_spans(columns[:, 0], columns[:, 1], columns[:, 2], tuning)
    assert [i for s in spans for i in range(s.first, s.last)] == list(range(len(layout)))
    for s in spans:
        members = layout[s.first:s.last]
        assert all(shard == s.shard_id and s.start <= offset and offset + size <= s.end for shard, offset, size in members)
        assert s.end - s.start <= limit or len(members) == 1
        covered = s.start
        for _, offset, size in members:
            assert offset - covered <= gap
            covered = max(covered, offset + size)
    expected = [(f.shard_id, f.start, f.end, [int(i.name[1:]) for i in f.entries]) for f in plan.plan_fetches(infos, tuning)]
    assert [(s.shard_id, s.start, s.end, list(range(s.first, s.last))) for s in spans] == expected


def test_plan_spans_checks_the_gap_after_a_cut_in_overlapping_entries() -> None:
    """Found by the property above in CI: entry 0 covers bytes [0, 2); a cut at the limit
    starts a new fetch at entry 1 (offset 1, empty), and entry 2 at offset 2 then lies past a
    hole of one byte, over a gap of 0: a fetch of its own, as the record planner has it."""
    spans = fast_plan.plan_spans(np.zeros(3, np.int64), np.array([0, 1, 2]), np.array([2, 0, 0]),
                                 plan.Tuning(gap=0, limit=1))
    assert [(s.start, s.end, s.first, s.last) for s in spans] == [(0, 2, 0, 1), (1, 1, 1, 2), (2, 2, 2, 3)]


def test_a_run_longer_than_the_limit_costs_a_step_per_fetch_not_per_entry() -> None:
    """Issue 27: 10^6 adjacent 16-byte tensors are one 15 MiB run, longer than the 8 MiB fetch
    limit, which the planner once cut entry by entry in Python (minutes for a load). Here the
    same shape at small scale: 2k to 32k adjacent entries, the limit holding the first 2k, so
    the larger runs are cut 4 to 16 times; CPU time must grow no faster than the count (the
    per-entry cut jumped from numpy's cost to Python's: exponent ~2)."""
    tuning = plan.Tuning(gap=0, limit=2000 * 16)
    counts = [2000, 8000, 32000]

    def exponent() -> float:
        times = []
        for n in counts:
            columns = np.zeros(n, np.int64), np.arange(n, dtype=np.int64) * 16, np.full(n, 16, np.int64)
            times.append(cpu_seconds(lambda columns=columns: fast_plan.plan_spans(*columns, tuning), repeat=3))
        return math.log(max(times[-1], 1e-6) / max(times[0], 1e-6)) / math.log(counts[-1] / counts[0])

    assert confirmed(exponent, lambda k: k <= 1.3) <= 1.3
