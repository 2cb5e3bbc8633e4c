"""Hostile shapes, slices and offsets: each ends in a tfckpt error naming the key, within a
time that grows with the input, never in a raw numpy error or an overflowed offset."""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from timing import confirmed, cpu_seconds

import tfckpt
from tfckpt.bundle import validate
from tfckpt.bundle.entry import BundleHeader, TensorInfo
from tfckpt.bundle.naming import index_filename
from tfckpt.bundle.slices import TensorSlice
from tfckpt.bundle.validate import NUMPY_MAX_DIMS, WORK_CAP, Box, array_problem, tiling_problem, work_budget
from tfckpt.bundle.writer import write_index
from tfckpt.coding import crc32c, mask

# ---- slice tiling: work counted per dimension, bounded by the input -----------------------


def nested_pinwheels(levels: int, rank: int) -> tuple[list[Box], Box]:
    """A valid tiling no straight cut divides: ``levels`` rings of four arms (a pinwheel in
    each ring) around a centre cell, in the last two dimensions; the others have size 1."""
    size = 2 * levels + 1
    boxes: list[Box] = []
    for k in range(levels):
        a, b = k, size - k
        boxes += [((a, b - 1), (a, a + 1)), ((b - 1, b), (a, b - 1)), ((a + 1, b), (b - 1, b)), ((a, a + 1), (a + 1, b))]
    boxes.append(((levels, levels + 1), (levels, levels + 1)))
    ones = ((0, 1),) * (rank - 2)
    return [ones + box for box in boxes], ones + ((0, size), (0, size))


def overlapping_rings(levels: int, rank: int, spread: int | None = None) -> tuple[list[Box], Box]:
    """The rings of :func:`nested_pinwheels`, but in ``spread`` other dimensions (all by
    default) of size 3 every slice covers 0-2 or 1-3: they all meet there, no cut divides
    them, and so every pair must be compared in every dimension (a wrong tiling)."""
    rings, region = nested_pinwheels(levels, rank)
    spread = rank - 2 if spread is None else spread
    def widen(i: int, box: Box) -> Box:
        return tuple((0, 2) if (i + d) % 2 else (1, 3) for d in range(spread)) + box[spread:]
    return [widen(i, box) for i, box in enumerate(rings)], ((0, 3),) * spread + region[spread:]


@pytest.mark.parametrize("layout", [nested_pinwheels, overlapping_rings])
def test_tiling_cost_grows_with_slices_times_rank(layout: Callable[[int, int], tuple[list[Box], Box]]) -> None:
    """Slice count and rank grow 4x together: the time per (slice x dimension x log2 slices)
    must not grow (a check that walks every dimension per pairwise step grows 4x per step)."""
    def measure() -> list[float]:
        per_unit = []
        for levels, rank in [(4, 8), (16, 32), (64, 128)]:
            boxes, region = layout(levels, rank)
            seconds = cpu_seconds(lambda: tiling_problem(boxes, region))  # noqa: B023 (called at once)
            per_unit.append(seconds / (len(boxes) * rank * len(boxes).bit_length()))
        return per_unit

    def holds(per_unit: list[float]) -> bool:
        return per_unit[-1] <= 3 * min(per_unit[:-1])
    per_unit = confirmed(measure, holds)
    assert holds(per_unit), per_unit


def test_the_issue_layout_is_accepted_quickly() -> None:
    """401 slices of a rank-254 tensor in nested pinwheels (4.7 s before): a valid tiling,
    checked in the dimensions that divide it."""
    boxes, region = nested_pinwheels(100, 254)
    assert len(boxes) == 401
    started = time.process_time()
    assert tiling_problem(boxes, region) is None
    assert time.process_time() - started < 1.0  # a guard against regressions, not a benchmark
    shape = tuple(hi for _, hi in region)
    assert "leave part of it uncovered" in str(tiling_problem(boxes[:-1], region, shape))  # no centre cell


def test_a_layout_past_the_cap_is_answered_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the cap the check stops: 4x the slices cost at most the linear reading of them
    more, and the answer says the layout is too complex (a lower cap keeps the test short)."""
    cap = WORK_CAP // 10
    monkeypatch.setattr(validate, "WORK_CAP", cap)
    small, large = overlapping_rings(256, 48), overlapping_rings(1024, 48)
    assert work_budget(len(small[0]), 48) == work_budget(len(large[0]), 48) == cap
    for boxes, region in (small, large):
        problem = tiling_problem(boxes, region)
        assert problem is not None and "too long" in problem and f"{cap:,} steps" in problem

    def measure() -> list[float]:
        return [cpu_seconds(lambda: tiling_problem(boxes, region), repeat=1)  # noqa: B023 (called at once)
                for boxes, region in (small, large)]
    times = confirmed(measure, lambda times: times[1] <= 6 * times[0] + 0.05)
    assert times[1] <= 6 * times[0] + 0.05, times


def write_partitioned(prefix: Path, name: str, shape: tuple[int, ...], pieces: list[Box]) -> None:
    """An index holding only the full entry of a partitioned tensor (the tiling is checked
    before any slice's entry is looked up)."""
    slices = tuple(TensorSlice.from_bounds(box) for box in pieces)
    entry = TensorInfo(name, tfckpt.as_dtype("float32"), shape, slices=slices)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(index_filename(str(prefix)), "wb") as out:
        write_index(out, BundleHeader(), [entry])
    (prefix.parent / f"{prefix.name}.data-00000-of-00001").write_bytes(b"")


def test_a_hostile_partitioned_index_is_a_corruption_error_naming_the_tensor(tmp_path: Path) -> None:
    boxes, region = overlapping_rings(256, 32, spread=20)  # rank 32: numpy 1.24 holds at most 32 dimensions
    prefix = tmp_path / "ck"
    write_partitioned(prefix, "emb", tuple(hi for _, hi in region), boxes)
    with pytest.raises(tfckpt.CorruptionError, match=r"ck: key 'emb': 1025 slices of rank 32 .* too long"):
        tfckpt.load(prefix)
    report = tfckpt.verify_checkpoint(prefix)
    assert any(p.key == "emb" and "too long" in p.message for p in report.problems), report.problems


# ---- a slice's own entry listing slices ---------------------------------------------------


@pytest.mark.parametrize("size", [0, 4, 16])
def test_a_slice_entry_listing_slices_is_a_corruption_error(tmp_path: Path, size: int) -> None:
    prefix = str(tmp_path / "ck")
    with tfckpt.CheckpointWriter(prefix) as writer:
        writer.add_slice("p", (4, 2), "0,2:-", np.zeros((2, 2), np.float32))
        writer.add_slice("p", (4, 2), "2,2:-", np.ones((2, 2), np.float32))
    with tfckpt.load_checkpoint(prefix) as reader:
        entries = [info for _, info in reader.store.entries()]
    nested = [dataclasses.replace(info, size=size, slices=(TensorSlice.parse("0,1:-"),))
              if info.name.startswith("\x00") else info for info in entries]
    with open(index_filename(prefix), "wb") as out:
        write_index(out, BundleHeader(), nested)
    expected = r"ck\.index: key 'p\[0,2:-\]': the data entry of a slice lists 1 slices of its own; expected none"
    for read in (lambda: tfckpt.load(prefix, verify_checksums=False), lambda: tfckpt.load_checkpoint(prefix)["p"],
                 lambda: tfckpt.load_checkpoint(prefix).get_slice("p")[:1]):
        with pytest.raises(tfckpt.CorruptionError, match=expected):
            read()
    problems = tfckpt.verify_checkpoint(prefix).problems
    assert any(re.search(expected, problem.message) for problem in problems), problems


# ---- offsets and sizes near 2**63 and 2**64 -------------------------------------------------

NEAR_LIMITS = st.one_of(st.integers(0, 40), st.integers((1 << 63) - 40, (1 << 63) - 1),
                        st.integers(1 << 63, (1 << 63) + 40), st.integers((1 << 64) - 40, (1 << 64) - 1))


@pytest.fixture(scope="module")
def two_tensors(tmp_path_factory: pytest.TempPathFactory) -> str:
    prefix = str(tmp_path_factory.mktemp("near") / "ck")
    tfckpt.save({"a": np.arange(3, dtype=np.float32), "b": np.ones(3, np.float32)}, prefix)
    return prefix


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=NEAR_LIMITS, size=st.one_of(st.just(12), NEAR_LIMITS), verify=st.booleans())
@example(offset=(1 << 63) - 4, size=12, verify=False)  # the audit's case: offset + size wraps negative
def test_offsets_and_sizes_near_the_integer_limits(two_tensors: str, tmp_path: Path, offset: int, size: int,
                                                   verify: bool) -> None:
    """Both the single-tensor path and the bulk (numpy-screened) path either read the bytes
    that are there or raise a tfckpt error naming the key; an offset + size that wraps in
    int64 passes no screen."""
    with tfckpt.load_checkpoint(two_tensors) as reader:
        a, b = reader.tensor_info("a"), reader.tensor_info("b")
    prefix = str(tmp_path / "ck")
    shutil.copyfile(f"{two_tensors}.data-00000-of-00001", f"{prefix}.data-00000-of-00001")
    with open(index_filename(prefix), "wb") as out:
        write_index(out, BundleHeader(), [dataclasses.replace(a, offset=offset, size=size), b])
    fits = size == 12 and offset + size <= 24
    for read in (lambda: tfckpt.load(prefix, verify_checksums=verify)["a"],
                 lambda: tfckpt.load_checkpoint(prefix, verify_checksums=verify)["a"]):
        try:
            value = read()
        except tfckpt.TfckptError as exc:
            assert "key 'a'" in str(exc), exc
            assert not fits or verify, exc  # only a checksum may fail when the bytes are there
            continue
        assert fits and value.shape == (3,), (offset, size)


# ---- shapes TensorFlow accepts and numpy cannot hold ---------------------------------------

UNHOLDABLE = [
    ("float32", (1,) * (NUMPY_MAX_DIMS + 1)),
    ("float32", (1,) * 254),  # TensorFlow's own limit
    ("float32", (0,) * 70),
    ("float32", (0, 1 << 62)),  # empty, but 2**64 bytes to numpy
    ("string", (0, 1 << 62)),
    ("int8", (1 << 62, 2, 0)),
]


def write_with(prefix: Path, dtype: str, shape: tuple[int, ...]) -> None:
    """A checkpoint of ``a`` (``dtype`` and ``shape``, one element or none, its bytes and
    checksum right) and an ordinary ``z``."""
    value = b"\x00\x00\x80\x3f" if math.prod(shape) else b""
    tfckpt.save({"z": np.ones(3, np.float32)}, prefix)
    data = Path(f"{prefix}.data-00000-of-00001")
    with tfckpt.load_checkpoint(prefix) as reader:
        z = reader.tensor_info("z")
    data.write_bytes(data.read_bytes() + value)
    a = TensorInfo.of_data("a", tfckpt.as_dtype(dtype), shape, 0, 12, len(value), mask(crc32c(value)))
    with open(index_filename(str(prefix)), "wb") as out:
        write_index(out, BundleHeader(), [a, z])


@pytest.mark.parametrize(("dtype", "shape"), UNHOLDABLE, ids=lambda v: str(v)[:20])
def test_shapes_numpy_cannot_hold_are_unsupported_errors(tmp_path: Path, dtype: str, shape: tuple[int, ...]) -> None:
    prefix = tmp_path / "ck"
    write_with(prefix, dtype, shape)
    expected = re.escape(f"ck: key 'a': cannot read {dtype}{list(shape)}: ")
    reads: dict[str, Callable[[], object]] = {
        "load": lambda: tfckpt.load(prefix),
        "reader[]": lambda: tfckpt.load_checkpoint(prefix)["a"],
        "get_slice": lambda: tfckpt.load_checkpoint(prefix).get_slice("a")[...],
        "read_arrays": lambda: dict(tfckpt.load_checkpoint(prefix, mmap=True).read_arrays(["z", "a"])),
        "stats": lambda: tfckpt.checkpoint_stats(prefix),
        "diff": lambda: tfckpt.diff_checkpoints(prefix, prefix),
        "convert": lambda: tfckpt.convert_checkpoint(prefix, tmp_path / "out.npz"),
    }
    for what, read in reads.items():
        with pytest.raises(tfckpt.UnsupportedError, match=expected):
            read()
            pytest.fail(what)
    with tfckpt.load_checkpoint(prefix) as reader:  # listing needs no array
        assert reader.get_variable_to_shape_map()["a"] == list(shape)
        assert reader.get_variable_to_dtype_map()["a"].name == dtype
        assert reader["z"].tolist() == [1, 1, 1]
    report = tfckpt.verify_checkpoint(prefix)  # the bytes are checked without an array
    assert report.ok and report.tensors_checked == 2, report.problems


def test_numpy_max_dims_is_numpy_own_limit() -> None:
    np.empty((1,) * NUMPY_MAX_DIMS)
    with pytest.raises(ValueError):
        np.empty((1,) * (NUMPY_MAX_DIMS + 1))


@settings(max_examples=300, deadline=None)
@given(dtype=st.sampled_from(["int8", "float16", "float32", "complex128", "string", "bool"]),
       shape=st.lists(st.one_of(st.integers(0, 4), st.integers(1, (1 << 63) - 1)), max_size=70).map(lambda s: (*s, 0)))
def test_array_problem_agrees_with_numpy(dtype: str, shape: tuple[int, ...]) -> None:
    """Shapes with a zero dimension (numpy allocates nothing for them) of every rank around
    numpy's limit: the rule and numpy's own answer agree."""
    np_dtype = tfckpt.as_dtype(dtype).as_numpy_dtype
    try:
        np.empty(shape, dtype=np_dtype)
        made = True
    except ValueError:
        made = False
    assert (array_problem(tfckpt.as_dtype(dtype), shape) is None) == made
