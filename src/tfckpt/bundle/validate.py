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
cut (a "pinwheel" arrangement) is compared pairwise. Dimensions along which every box of a
group spans the group's whole region are left out of its cuts and comparisons (they can
neither divide nor separate boxes). The work is counted in dimension-steps (one dimension of
one box visited, sorted or compared) against a budget that grows with the input, ``slices x
rank x log2(slices)`` (what any grid needs), and has a fixed cap: a check costs
O(input x log) and at most :data:`WORK_CAP` steps (about a second), then reports the layout
as too complex.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import itemgetter
from typing import TypeVar

import numpy as np

from ..coding import FIXED32
from ..dtypes import DType
from .entry import TensorInfo
from .slices import TensorSlice

__all__ = [
    "NUMPY_MAX_DIMS",
    "WORK_CAP",
    "WORK_FLOOR",
    "WORK_PER_ITEM",
    "Box",
    "array_problem",
    "box_text",
    "bytes_inside",
    "bytes_problem",
    "fixed_nbytes",
    "overlap_problem",
    "shard_inside",
    "shard_problem",
    "size_problem",
    "slice_entry_problem",
    "string_size_problem",
    "tiling_problem",
    "work_budget",
]

Box = tuple[tuple[int, int], ...]
IntOrArray = TypeVar("IntOrArray", int, np.ndarray)
# The budget of one check, in dimension-steps (see work_budget).
WORK_FLOOR = 10_000  # however few the slices: small pinwheels are compared pairwise in full
WORK_PER_ITEM = 4  # per slice, dimension and level of cuts: twice what a grid's check takes
WORK_CAP = 10_000_000  # however many the slices (about a second of the slowest steps)
_BOX_STEPS = 4  # what handling one box costs beyond its dimensions, in steps
_PAIRWISE_CALL = 64  # what one box's numpy comparisons cost beyond their elements, in steps


def work_budget(count: int, rank: int) -> int:
    """The dimension-steps one check of ``count`` boxes of ``rank`` dimensions may take.

    Each level of straight cuts costs about ``count x rank`` steps (visiting every box once
    in each dimension that is still divided), and a grid of ``count`` boxes has at most
    ``log2(count)`` levels, so every layout TensorFlow's partitioners write fits with room to
    spare; work beyond that comes from arrangements only pairwise comparison can check.
    """
    return min(WORK_CAP, WORK_FLOOR + WORK_PER_ITEM * count * (rank + _BOX_STEPS) * (count.bit_length() + 1))


def fixed_nbytes(dtype: DType, shape: tuple[int, ...]) -> int:
    """The bytes a fixed-size tensor of ``dtype`` and ``shape`` stores (a Python int: no
    overflow, however hostile the shape)."""
    return dtype.itemsize * math.prod(shape)


def expected_size(info: TensorInfo) -> int | None:
    """The exact byte size of a fixed-size entry, ``None`` for variable-size dtypes."""
    return fixed_nbytes(info.dtype, info.shape) if info.dtype.is_fixed_size else None


def string_size_problem(size: int, count: int) -> str | None:
    """Whether ``size`` bytes can hold a string tensor of ``count`` elements: each element
    needs at least one length byte, and the lengths their 4-byte checksum (nothing at all is
    stored for no elements)."""
    least = 0 if count == 0 else count + FIXED32.size
    if size < least:
        return (f"invalid size in bundle entry: stored size {size}; a string tensor of {count} "
                f"elements needs at least {least} bytes")
    return None


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
        return string_size_problem(info.size, info.num_elements)
    return None


def shard_inside(shard_id: IntOrArray, num_shards: int) -> IntOrArray:
    """Whether an entry's ``shard_id`` names a data file of a bundle whose header says
    ``num_shards``: for ints, or elementwise for int64 arrays (the bulk path's columns). A
    header of 0 shards still has the one data file 0 (TensorFlow writes it so for an empty
    bundle)."""
    return shard_id < max(num_shards, 1)


def shard_problem(info: TensorInfo, num_shards: int) -> str | None:
    """Whether the entry's data file is one the header names (a partitioned tensor's full
    entry names none)."""
    if not info.slices and not shard_inside(info.shard_id, num_shards):
        return f"is in shard {info.shard_id} but the header says there are {num_shards} shards"
    return None


def bytes_inside(offset: IntOrArray, size: IntOrArray, file_size: int) -> IntOrArray:
    """Whether ``size`` bytes at ``offset`` lie inside a file of ``file_size`` bytes: for ints,
    or elementwise for int64 arrays (the bulk path's columns). Written without ``offset +
    size``, which wraps negative in int64 for an offset near 2**63; ``file_size - size``
    cannot (both are at least 0)."""
    return offset <= file_size - size


def bytes_problem(offset: int, size: int, file_size: int) -> str | None:
    """Whether ``size`` bytes at ``offset`` lie inside a data file of ``file_size`` bytes."""
    if not bytes_inside(offset, size, file_size):
        return f"{size} bytes at offset {offset} run past the end of the data file ({file_size} bytes)"
    return None


def slice_entry_problem(info: TensorInfo, piece: TensorSlice, part: TensorInfo | None) -> str | None:
    """Whether ``part``, the data entry stored for slice ``piece`` of the partitioned tensor
    ``info``, exists and holds that slice's dtype and shape."""
    if part is None:
        return f"slice {piece} is listed but its data entry is missing"
    wanted = piece.shape(info.shape)
    if part.dtype != info.dtype or part.shape != wanted:
        return (f"slice {piece} is stored as {part.dtype.name}{list(part.shape)}, expected "
                f"{info.dtype.name}{list(wanted)}")
    return None


def _numpy_max_dims() -> int:
    """The most dimensions a numpy array may have (32 before numpy 2.0, 64 since), found by
    trying: numpy 1.x names it in no public constant."""
    works, fails = 1, 1024
    while fails - works > 1:
        rank = (works + fails) // 2
        try:
            np.empty((1,) * rank, dtype=np.uint8)
        except ValueError:
            fails = rank
        else:
            works = rank
    return works


NUMPY_MAX_DIMS = _numpy_max_dims()
_NUMPY_MAX_BYTES = int(np.iinfo(np.intp).max)


def array_problem(dtype: DType, shape: tuple[int, ...]) -> str | None:
    """Whether numpy can hold a value of ``dtype`` and ``shape``, which TensorFlow accepts up
    to rank 254 and 2**63-1 elements. numpy allows :data:`NUMPY_MAX_DIMS` dimensions, and its
    item size times the product of the non-zero dimensions must fit in ``intp`` (so even an
    empty ``float32[0, 2**62]`` cannot be made)."""
    if len(shape) > NUMPY_MAX_DIMS:
        return f"numpy arrays have at most {NUMPY_MAX_DIMS} dimensions, this tensor has {len(shape)}"
    np_dtype = dtype.as_numpy_dtype
    if np_dtype is None:
        return None  # opaque values are refused on their own grounds
    nbytes = np_dtype.itemsize
    for dim in shape:
        nbytes *= dim or 1
        if nbytes > _NUMPY_MAX_BYTES:
            return (f"numpy cannot make an array of this shape (the item size times the non-zero "
                    f"dimensions exceeds {_NUMPY_MAX_BYTES} bytes)")
    return None


def box_text(box: Box, shape: tuple[int, ...] | None = None) -> str:
    """A box in TensorFlow's slice notation (``start,length`` per dimension), with ``-`` for
    dimensions it spans whole when the tensor's ``shape`` is given: ``0,10:-``."""
    return ":".join("-" if shape is not None and (lo, hi) == (0, shape[d]) else f"{lo},{hi - lo}"
                    for d, (lo, hi) in enumerate(box))


def _volume(box: Box) -> int:
    return math.prod(hi - lo for lo, hi in box)


def _cuts(boxes: list[Box], dim: int, lo: int, hi: int) -> list[list[Box]] | None:
    """Split ``boxes`` at every position in ``(lo, hi)`` of dimension ``dim`` that no box
    crosses; ``None`` if there is none."""
    order = sorted(boxes, key=itemgetter(dim))
    groups: list[list[Box]] = [[order[0]]]
    reach = order[0][dim][1]
    for box in order[1:]:
        start, stop = box[dim]
        if start >= reach and lo < start < hi:
            groups.append([box])
        else:
            groups[-1].append(box)
        reach = max(reach, stop)
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
    shape for messages, and the work budget (dimension-steps) shared by every step."""

    def __init__(self, cover: bool, shape: tuple[int, ...] | None, count: int, rank: int) -> None:
        self.cover = cover
        self.shape = shape
        self.count = count
        self.rank = rank
        self.allowed = self.budget = work_budget(count, rank)

    def text(self, box: Box) -> str:
        return box_text(box, self.shape)

    def spend(self, steps: int) -> bool:
        """Charge ``steps``; whether the budget is now exhausted."""
        self.budget -= steps
        return self.budget < 0

    def too_complex(self) -> str:
        return (f"{self.count} slices of rank {self.rank} are arranged so intricately that checking them "
                f"would take too long (tfckpt stops after {self.allowed:,} steps for so many); "
                f"TensorFlow's partitioners never write such layouts")

    def run(self, boxes: list[Box], region: Box) -> str | None:
        work: list[tuple[list[Box], Box]] = [(boxes, region)]
        while work:
            group, part = work.pop()
            # Visiting a group (duplicates, volumes, which dimensions still divide it, its
            # parts' extents) reads every dimension of every box once, plus a few steps a box.
            if self.spend(max(len(group), 1) * (len(part) + _BOX_STEPS)):
                return self.too_complex()
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
        # A dimension in which every box spans the whole region can neither be cut nor
        # separate two boxes: only the others are sorted and compared.
        dims = [dim for dim, (extent, column) in enumerate(zip(region, zip(*boxes)))
                if column.count(extent) != len(boxes)]
        for dim in dims:
            if self.spend(_BOX_STEPS * len(boxes)):  # a sort and a pass in Python
                return self.too_complex()
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
                return self.pairwise(boxes, dims) or (
                    f"the slices inside region {self.text(region)} hold {total} elements, the region has "
                    f"{_volume(region)}: they overlap or leave part of it uncovered")
        return self.pairwise(boxes, dims)

    def pairwise(self, boxes: list[Box], dims: list[int]) -> str | None:
        """Compare each box with the boxes after it in a sweep along the first of ``dims``
        (those in which the boxes differ) whose extents there meet, in those dimensions only;
        the comparisons of one box run in numpy (bounds fit in int64: they lie in a shape)."""
        sweep = dims[0]
        order = sorted(boxes, key=lambda box: box[sweep][0])
        bounds = np.array(order, dtype=np.int64)[:, dims, :]
        lo, hi = bounds[:, :, 0], bounds[:, :, 1]
        # Boxes i+1 .. reach[i]-1 start before box i ends along the sweep: its candidates.
        reach = np.searchsorted(lo[:, 0], hi[:, 0], side="left")
        for i in np.flatnonzero(reach > np.arange(1, len(order) + 1)).tolist():
            end = int(reach[i])
            if self.spend(_PAIRWISE_CALL + (end - i - 1) * len(dims)):
                return self.too_complex()
            meet = (np.maximum(lo[i + 1:end], lo[i]) < np.minimum(hi[i + 1:end], hi[i])).all(axis=1)
            if meet.any():
                return f"slices {self.text(order[i])} and {self.text(order[i + 1 + int(meet.argmax())])} overlap"
        return None


def tiling_problem(pieces: Sequence[Box], region: Box, shape: tuple[int, ...] | None = None) -> str | None:
    """Whether ``pieces`` (boxes inside ``region``) cover it exactly, without overlap;
    ``shape``, the whole tensor's, only makes messages read like TensorFlow's slice specs."""
    solid = [box for box in pieces if _volume(box) > 0]
    if _volume(region) == 0:
        return None
    return _TilingCheck(True, shape, len(solid), len(region)).run(solid, region)


def overlap_problem(pieces: Sequence[Box], region: Box, shape: tuple[int, ...] | None = None) -> str | None:
    """Whether any two of ``pieces`` overlap (gaps allowed)."""
    solid = [box for box in pieces if _volume(box) > 0]
    return _TilingCheck(False, shape, len(solid), len(region)).run(solid, region) if len(solid) > 1 else None
