"""The structural rules of a bundle, in one place.

Each rule is a function that returns a description of what is wrong (``None`` when the rule
holds) instead of raising, so that the reader can raise on the first problem while
``tfckpt verify`` collects them all from the very same code.

Rules about sizes:

- a fixed-size tensor stores exactly ``num_elements * itemsize`` bytes;
- a string tensor stores at least one length byte per element plus the 4-byte length
  checksum (nothing at all when it has no elements);
- the bytes an entry names lie inside its data file.

Rules about partitioned tensors (TensorFlow's ``TensorSliceSet`` and ``LookupSlice``):

- stored slices do not overlap;
- a read of a region needs the stored slices to cover it completely.

Slices are checked as boxes ``((lo, hi), ...)``. The check splits a set of boxes along
straight cuts that no box crosses (every partitioner TensorFlow has, and any grid, splits
down to single boxes this way), which takes O(n log n) per level; only a group with no such
cut (a "pinwheel" arrangement) is compared pairwise. All of it runs within a fixed budget
of steps, so a hostile index with thousands of slices costs at most about half a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..coding import FIXED32
from .entry import TensorInfo

__all__ = [
    "WORK_BUDGET",
    "Box",
    "box_text",
    "bytes_problem",
    "overlap_problem",
    "size_problem",
    "tiling_problem",
]

Box = tuple[tuple[int, int], ...]
WORK_BUDGET = 2_000_000  # box visits and comparisons one check may make (~0.5 s at worst)


def expected_size(info: TensorInfo) -> int | None:
    """The exact byte size of a fixed-size entry, ``None`` for variable-size dtypes."""
    return info.num_elements * info.dtype.itemsize if info.dtype.is_fixed_size else None


def size_problem(info: TensorInfo) -> str | None:
    """Whether the entry's ``size`` can hold its dtype and shape."""
    if info.slices:
        return None  # the full entry of a partitioned tensor stores no bytes itself
    wanted = expected_size(info)
    if wanted is not None:
        if info.size != wanted:
            return (f"invalid size in bundle entry: stored size {info.size}; expected {wanted} for "
                    f"{info.dtype.name}{list(info.shape)}")
        return None
    if info.dtype.name == "string":
        count = info.num_elements
        least = 0 if count == 0 else count + FIXED32.size
        if info.size < least:
            return (f"invalid size in bundle entry: stored size {info.size}; a string tensor of {count} "
                    f"elements needs at least {least} bytes")
    return None


def bytes_problem(info: TensorInfo, file_size: int) -> str | None:
    """Whether the entry's bytes lie inside its data file of ``file_size`` bytes."""
    if info.offset + info.size > file_size:
        return (f"{info.size} bytes at offset {info.offset} run past the end of the data file "
                f"({file_size} bytes)")
    return None


def box_text(box: Box, shape: tuple[int, ...] | None = None) -> str:
    """A box in TensorFlow's slice notation (``start,length`` per dimension), with ``-`` for
    dimensions it spans whole when the tensor's ``shape`` is given: ``0,10:-``."""
    return ":".join("-" if shape is not None and (lo, hi) == (0, shape[d]) else f"{lo},{hi - lo}"
                    for d, (lo, hi) in enumerate(box))


def _volume(box: Box) -> int:
    return math.prod(hi - lo for lo, hi in box)


def _meet(a: Box, b: Box) -> Box | None:
    out = []
    for (a0, a1), (b0, b1) in zip(a, b):
        lo, hi = max(a0, b0), min(a1, b1)
        if lo >= hi:
            return None
        out.append((lo, hi))
    return tuple(out)


def _cuts(boxes: list[Box], dim: int, lo: int, hi: int) -> list[list[Box]] | None:
    """Split ``boxes`` at every position in ``(lo, hi)`` of dimension ``dim`` that no box
    crosses; ``None`` if there is none."""
    order = sorted(boxes, key=lambda box: box[dim][0])
    groups: list[list[Box]] = [[order[0]]]
    reach = order[0][dim][1]
    for box in order[1:]:
        start = box[dim][0]
        if start >= reach and lo < start < hi:
            groups.append([box])
        else:
            groups[-1].append(box)
        reach = max(reach, box[dim][1])
    return groups if len(groups) > 1 else None


def _split_region(region: Box, dim: int, groups: list[list[Box]]) -> list[tuple[list[Box], Box]]:
    """The sub-regions of ``region`` along ``dim`` that each group spans, in order, with the
    gaps between them (before the first, between two, after the last) as empty groups."""
    out: list[tuple[list[Box], Box]] = []
    position = region[dim][0]

    def part(lo: int, hi: int) -> Box:
        return region[:dim] + ((lo, hi),) + region[dim + 1:]

    for group in groups:
        lo, hi = min(box[dim][0] for box in group), max(box[dim][1] for box in group)
        if lo > position:
            out.append(([], part(position, lo)))
        out.append((group, part(lo, hi)))
        position = hi
    if position < region[dim][1]:
        out.append(([], part(position, region[dim][1])))
    return out


def _uncovered(region: Box, box: Box) -> Box:
    """A part of ``region`` that ``box`` (which lies inside it) leaves uncovered."""
    for dim, ((lo, hi), (box_lo, box_hi)) in enumerate(zip(region, box)):
        if (lo, hi) != (box_lo, box_hi):
            gap = (lo, box_lo) if box_lo > lo else (box_hi, hi)
            return box[:dim] + (gap,) + region[dim + 1:]
    raise AssertionError("the box fills the region")


class _TilingCheck:
    """One check of a set of boxes: the mode (exact cover or only no overlap), the tensor's
    shape for messages, and the work budget shared by every step."""

    def __init__(self, cover: bool, shape: tuple[int, ...] | None) -> None:
        self.cover = cover
        self.shape = shape
        self.budget = WORK_BUDGET

    def text(self, box: Box) -> str:
        return box_text(box, self.shape)

    def too_complex(self, count: int) -> str:
        return (f"{count} slices are arranged so intricately that checking them would take too long (tfckpt "
                f"stops after {WORK_BUDGET:,} steps); TensorFlow's partitioners never write such layouts")

    def run(self, boxes: list[Box], region: Box) -> str | None:
        work: list[tuple[list[Box], Box]] = [(boxes, region)]
        while work:
            group, part = work.pop()
            self.budget -= len(group)
            if self.budget < 0:
                return self.too_complex(len(boxes))
            problem = self.group(group, part, work)
            if problem is not None:
                return problem
        return None

    def group(self, boxes: list[Box], region: Box, work: list[tuple[list[Box], Box]]) -> str | None:
        """Check one group, or queue its parts on ``work`` if a straight cut divides it."""
        if not boxes:
            return f"region {self.text(region)} is not covered by any stored slice" if self.cover else None
        if len(boxes) == 1:
            if self.cover and boxes[0] != region:
                return (f"region {self.text(_uncovered(region, boxes[0]))} is not covered by any stored slice "
                        f"(the slice {self.text(boxes[0])} only partly covers {self.text(region)})")
            return None
        for dim in range(len(region)):
            groups = _cuts(boxes, dim, *region[dim])
            if groups is not None:
                # Reversed, so that the first region is checked first and named in any message.
                work.extend(reversed(_split_region(region, dim, groups)))
                return None
        if len(set(boxes)) < len(boxes):
            seen: set[Box] = set()
            for box in boxes:
                if box in seen:
                    return f"slice {self.text(box)} is stored twice"
                seen.add(box)
        if self.cover:
            total = sum(_volume(box) for box in boxes)
            if total != _volume(region):
                return self.pairwise(boxes) or (
                    f"the slices inside region {self.text(region)} hold {total} elements, the region has "
                    f"{_volume(region)}: they overlap or leave part of it uncovered")
        return self.pairwise(boxes)

    def pairwise(self, boxes: list[Box]) -> str | None:
        """A sweep along dimension 0 comparing boxes whose extents there meet."""
        order = sorted(boxes, key=lambda box: box[0][0])
        active: list[Box] = []
        for box in order:
            active = [other for other in active if other[0][1] > box[0][0]]
            for other in active:
                self.budget -= 1
                if self.budget < 0:
                    return self.too_complex(len(boxes))
                if _meet(box, other) is not None:
                    return f"slices {self.text(other)} and {self.text(box)} overlap"
            active.append(box)
        return None


def tiling_problem(pieces: Sequence[Box], region: Box, shape: tuple[int, ...] | None = None) -> str | None:
    """Whether ``pieces`` (boxes inside ``region``) cover it exactly, without overlap;
    ``shape``, the whole tensor's, only makes messages read like TensorFlow's slice specs."""
    solid = [box for box in pieces if _volume(box) > 0]
    if _volume(region) == 0:
        return None
    return _TilingCheck(True, shape).run(solid, region)


def overlap_problem(pieces: Sequence[Box], region: Box, shape: tuple[int, ...] | None = None) -> str | None:
    """Whether any two of ``pieces`` overlap (gaps allowed)."""
    solid = [box for box in pieces if _volume(box) > 0]
    return _TilingCheck(False, shape).run(solid, region) if len(solid) > 1 else None
