"""The resource contracts of docs/contracts.md, enforced by sweeping hostile parameters.

Each family of ``contract_sweep.FAMILIES`` builds valid-looking inputs (``hostile_builders``)
over a short geometric series and every entry point run on it must (1) return or raise a
TfckptError, (2) stay inside a CPU budget and (3) grow in CPU time and tracemalloc peak no
faster than its input (exponent <= 1.3, 0.5 for lookups on an open reader). The hypothesis
tests draw hostile entries and object graphs and check (1) on every entry point. The long
sweep is ``fuzz/sweep_contracts.py --long``.

Every case holds on the current code: the 23 items of issue 24 that broke these contracts
were found again by this sweep before they were fixed, and each fix turned its case green.
"""

from __future__ import annotations

from pathlib import Path

import hostile_builders as hb
import numpy as np
import pytest
from contract_sweep import (
    CASES,
    ENTRY_POINTS,
    FAMILIES,
    ContractViolation,
    check_growth,
    classify,
    sweep,
    sweep_and_check,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tfckpt._proto import trackable_object_graph_pb2

BUDGET = 1.0  # CPU seconds per call: a contract-keeping call at these sizes takes < 0.1 s

def _id(text: str) -> str:
    return text.replace(" ", "_").replace("*", "^")


GROWTH = [pytest.param(family.name, name, id=_id(f"{family.name}-{name}"))
          for family in FAMILIES.values() for name in family.entry_points]
SINGLE = [pytest.param(case, name, id=_id(f"{case}-{name}"))
          for case, (_, _, names) in CASES.items() for name in names]


@pytest.mark.parametrize(("family", "entry_point"), GROWTH)
def test_growth_is_at_most_linear(tmp_path: Path, family: str, entry_point: str) -> None:
    spec = FAMILIES[family]
    sweep_and_check(family, spec.build, entry_point, ENTRY_POINTS[entry_point], spec.series, tmp_path,
                    repeats=2, budget=BUDGET, max_exponent=spec.max_exponent, peak=spec.peak)


@pytest.mark.parametrize(("case", "entry_point"), SINGLE)
def test_hostile_case_raises_only_tfckpt_errors(tmp_path: Path, case: str, entry_point: str) -> None:
    build, n, _ = CASES[case]
    classify(ENTRY_POINTS[entry_point], build(tmp_path / "in", n), f"{entry_point} on {case}")


def test_the_sweep_detects_superlinear_growth(tmp_path: Path) -> None:
    """The checker itself: a quadratic entry point fails, a linear one passes."""
    def quadratic(path: str) -> None:
        n = hb.input_bytes(path) // 4
        for _ in range(n):
            for _ in range(n):
                pass

    def linear(path: str) -> None:
        for _ in range(hb.input_bytes(path) * 4):
            pass

    check_growth(sweep("linear", hb.float_tensors, "linear", linear, (256, 4096), tmp_path / "l", repeats=2))
    with pytest.raises(ContractViolation, match="superlinear"):
        check_growth(sweep("quadratic", hb.float_tensors, "quadratic", quadratic, (64, 256), tmp_path / "q",
                           repeats=2))
    with pytest.raises(ContractViolation, match="raised ZeroDivisionError"):
        classify(lambda path: 1 // 0, "x", "divide")


# ---- structure-aware generators: hostile entries and object graphs -------------------------

# Dimensions whose products numpy can still describe (issue 24 item 13 is about the others).
DIMS = st.one_of(st.integers(0, 3), st.just(2**10))
HUGE_DIMS = st.one_of(DIMS, st.sampled_from([2**31 - 1, 2**31, 2**62, 2**63 - 1]))
SMALL_OFFSETS = st.one_of(st.integers(0, 64), st.sampled_from([2**32, 2**62]))
ITEM_SIZES = {1: 4, 2: 8, 3: 4, 7: 1, 9: 8, 14: 2, 99: 1}  # float, double, int32, string, int64, bfloat16, unknown
ENTRY_NAMES = ("load", "reader[]", "get_slice", "stats", "verify", "diff", "convert", "nested", "tree")


@st.composite
def hostile_entries(draw: st.DrawFn, ranks: st.SearchStrategy[int], offsets: st.SearchStrategy[int],
                    dims: st.SearchStrategy[int] = DIMS) -> dict[bytes, bytes]:
    """One to three valid-looking entries (by default their size is what dtype and shape
    need) with hostile numbers: ranks, dims, offsets, sizes, shard ids, slices."""
    entries = {}
    for i in range(draw(st.integers(1, 3))):
        rank = draw(ranks)
        shape = draw(st.lists(dims, min_size=rank, max_size=rank)) if rank <= 8 else \
            [1] * (rank - 1) + [draw(dims)]
        dtype = draw(st.sampled_from(sorted(ITEM_SIZES)))
        size = min(ITEM_SIZES[dtype] * int(np.prod(shape, dtype=object)), 2**63 - 1) if draw(st.booleans()) \
            else draw(offsets)
        slices = draw(st.lists(st.lists(st.tuples(st.integers(-2, 4), st.integers(-1, 4)),
                                        min_size=len(shape), max_size=len(shape)), max_size=3)) \
            if shape and draw(st.booleans()) else []
        entries[f"t{i}".encode()] = hb.entry(dtype, shape, shard_id=draw(st.sampled_from([0, 0, 1, 2**31 - 1])),
                                             offset=draw(offsets), size=size, slices=slices)
    return entries


def _run_all(directory: Path, entries: dict[bytes, bytes], num_shards: int) -> None:
    prefix = hb.checkpoint(directory, entries, b"\0" * 64, num_shards=num_shards)
    for name in ENTRY_NAMES:
        classify(ENTRY_POINTS[name], prefix, f"{name} on {entries!r}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=hostile_entries(st.integers(0, 4), SMALL_OFFSETS), num_shards=st.sampled_from([1, 2]))
def test_hostile_entries_raise_only_tfckpt_errors(tmp_path: Path, entries: dict[bytes, bytes],
                                                  num_shards: int) -> None:
    _run_all(tmp_path / "e", entries, num_shards)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          report_multiple_bugs=False)
@given(entries=hostile_entries(st.sampled_from([0, 1, 2, 64, 65, 128, 254]),
                               st.one_of(SMALL_OFFSETS, st.integers(2**63 - 64, 2**63 - 1)), HUGE_DIMS))
@example(entries={b"t0": hb.entry(1, (1,) * 65, size=4)})  # always tried; the search finds it too, not always
def test_hostile_ranks_and_offsets_raise_only_tfckpt_errors(tmp_path: Path, entries: dict[bytes, bytes]) -> None:
    _run_all(tmp_path / "r", entries, 1)


@st.composite
def object_graphs(draw: st.DrawFn) -> tuple[trackable_object_graph_pb2.TrackableObjectGraph, list[str]]:
    """A small graph with any edges (cycles, self-loops, shared children, duplicate names),
    attributes whose keys may or may not exist, and slot variables."""
    count = draw(st.integers(1, 12))
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    keys = []
    for _ in range(count):
        node = graph.nodes.add()
        for _ in range(draw(st.integers(0, 3))):
            node.children.add(node_id=draw(st.integers(0, count - 1)),
                              local_name=draw(st.sampled_from(["a", "b", "a/b", ".ATTRIBUTES", "", "\x1b[2J"])))
        for _ in range(draw(st.integers(0, 2))):
            key = draw(st.sampled_from(["k", "a/.ATTRIBUTES/VARIABLE_VALUE", "missing", "", "_CHECKPOINTABLE_OBJECT_GRAPH"]))
            node.attributes.add(name=draw(st.sampled_from(["VARIABLE_VALUE", "x"])), checkpoint_key=key)
            if key not in ("missing", "_CHECKPOINTABLE_OBJECT_GRAPH") and key not in keys and draw(st.booleans()):
                keys.append(key)
        if draw(st.booleans()):
            node.slot_variables.add(original_variable_node_id=draw(st.integers(0, count - 1)), slot_name="m",
                                    slot_variable_node_id=draw(st.integers(0, count - 1)))
    return graph, keys


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=object_graphs())
def test_hostile_object_graphs_raise_only_tfckpt_errors(
        tmp_path: Path, drawn: tuple[trackable_object_graph_pb2.TrackableObjectGraph, list[str]]) -> None:
    graph, keys = drawn
    prefix = hb.graph_checkpoint(tmp_path / "g", graph, keys)
    for name in ("nested", "object_paths", "tree", "cli tree", "verify", "load", "stats", "convert"):
        classify(ENTRY_POINTS[name], prefix, f"{name} on {graph}")
