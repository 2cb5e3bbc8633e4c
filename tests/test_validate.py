"""The structural rules of partitioned tensors against brute force, and against hostile sizes."""

from __future__ import annotations

import itertools
import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tfckpt.bundle.validate import Box, overlap_problem, tiling_problem, work_budget

REGION: Box = ((0, 4), (0, 4))


def brute(boxes: list[Box]) -> tuple[bool, bool]:
    """(covers REGION exactly, no two overlap), by counting every cell."""
    grid = np.zeros((4, 4), int)
    for (a0, a1), (b0, b1) in boxes:
        grid[a0:a1, b0:b1] += 1
    return bool((grid == 1).all()), bool((grid <= 1).all())


extent = st.tuples(st.integers(0, 3), st.integers(1, 4)).map(lambda p: (p[0], min(4, p[0] + p[1])))
boxes_strategy = st.lists(st.tuples(extent, extent), min_size=0, max_size=7)


@settings(max_examples=1500, deadline=None)
@given(boxes_strategy)
def test_agrees_with_brute_force(boxes: list[Box]) -> None:
    covers, disjoint = brute(boxes)
    assert (tiling_problem(boxes, REGION) is None) == covers, boxes
    assert (overlap_problem(boxes, REGION) is None) == disjoint, boxes


def test_every_tiling_by_grid_lines_is_accepted_in_any_order() -> None:
    cuts = [0, 1, 3, 4]
    cells = [((a, b), (c, d)) for (a, b), (c, d) in itertools.product(itertools.pairwise(cuts), repeat=2)]
    for order in itertools.islice(itertools.permutations(cells), 0, 5000, 97):
        assert tiling_problem(list(order), ((0, 4), (0, 4))) is None


def test_a_pinwheel_has_no_straight_cut_and_is_still_accepted() -> None:
    pinwheel = [((0, 2), (0, 1)), ((2, 3), (0, 2)), ((1, 3), (2, 3)), ((0, 1), (1, 3)), ((1, 2), (1, 2))]
    assert tiling_problem(pinwheel, ((0, 3), (0, 3))) is None
    assert "overlap" in str(tiling_problem([*pinwheel[:4], ((1, 3), (1, 2))], ((0, 3), (0, 3))))


def test_messages_name_the_first_problem_in_slice_notation() -> None:
    shape = (6, 2)
    assert tiling_problem([((0, 3), (0, 2))], ((0, 6), (0, 2)), shape) == (
        "region 3,3:- is not covered by any stored slice (the slice 0,3:- only partly covers -:-)")
    assert tiling_problem([((0, 4), (0, 2)), ((3, 6), (0, 2))], ((0, 6), (0, 2)), shape) == (
        "slices 0,4:- and 3,3:- overlap")
    assert tiling_problem([((0, 2), (0, 2)), ((4, 6), (0, 2))], ((0, 6), (0, 2)), shape) == (
        "region 2,2:- is not covered by any stored slice")
    assert tiling_problem([((0, 6), (0, 2))] * 2, ((0, 6), (0, 2)), shape) == "slice -:- is stored twice"


def test_hostile_layouts_are_answered_within_the_budget() -> None:
    n = 10_000
    layouts = {
        "staircase": ([((0, 100), (i, i + 2)) for i in range(n)], ((0, 100), (0, n + 1))),
        "identical": ([((0, 10), (0, 10))] * n, ((0, 10), (0, 10))),
        "long bars": ([((i, n), (i, i + 1)) for i in range(n)], ((0, n), (0, n))),
        "rows, one gap": ([((i, i + 1),) for i in range(n + 1) if i != n // 2], ((0, n + 1),)),
    }
    for name, (boxes, region) in layouts.items():
        started = time.process_time()
        assert tiling_problem(boxes, region) is not None, name
        assert time.process_time() - started < 2.0, name  # a guard against hangs, not a benchmark
    spiral: list[Box] = []
    lo0, hi0, lo1, hi1 = 0, 4000, 0, 4000
    for k in range(4000):
        side = k % 4
        if side == 0:
            spiral.append(((lo0, lo0 + 1), (lo1, hi1)))
            lo0 += 1
        elif side == 1:
            spiral.append(((lo0, hi0), (lo1, lo1 + 1)))
            lo1 += 1
        elif side == 2:
            spiral.append(((hi0 - 1, hi0), (lo1, hi1)))
            hi0 -= 1
        else:
            spiral.append(((lo0, hi0), (hi1 - 1, hi1)))
            hi1 -= 1
    assert f"{work_budget(4000, 2):,} steps" in str(tiling_problem(spiral, ((0, 4000), (0, 4000))))
