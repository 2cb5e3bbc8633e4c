"""Object-graph walks are iterative and linear: deep chains, "diamonds" (every level reached
along two routes), thousands of legacy-key prefixes, deep name hierarchies and missing-key
suggestions cost O(size x log), never O(routes), O(depth) stack or O(keys x attributes).

Growth is measured, not absolute time: each case runs at sizes n and 8n (best of a few runs)
and fails when the time grows much faster than the size (linear: ~8x; quadratic: ~64x)."""

from __future__ import annotations

import bisect
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from timing import confirmed, cpu_seconds

import tfckpt
from tfckpt.bundle.graph import (
    OBJECT_GRAPH_KEY,
    ObjectGraph,
    ObjectReference,
    SerializedTensor,
    TrackableObject,
)
from tfckpt.bundle.objects import longest_prefixes, unmatched_keys
from tfckpt.cli import main
from tfckpt.errors import CorruptionError, NotFoundError
from tfckpt.tree import DRAWN_LEVELS, checkpoint_tree, render_tree

FIXTURES = Path(__file__).parent / "fixtures" / "tf"
SCALE = 8
GROWTH_LIMIT = 20.0  # time ratio allowed for a SCALE x bigger input (linear ~8, quadratic ~64)


def assert_linear(cost: Callable[[int], float], small: int) -> None:
    cost(small)  # warm up imports and caches
    first, second = confirmed(lambda: (cost(small), cost(SCALE * small)),
                              lambda times: times[1] < GROWTH_LIMIT * max(times[0], 1e-3))
    assert second < GROWTH_LIMIT * max(first, 1e-3), (small, first, second)


def write(prefix: Path, graph: ObjectGraph, tensors: dict[str, np.ndarray]) -> str:
    with tfckpt.CheckpointWriter(str(prefix)) as writer:
        for key, value in tensors.items():
            writer.add(key, value)
        writer.add(OBJECT_GRAPH_KEY, np.array(graph.encode(), dtype=object))
    return str(prefix)


def variable(key: str) -> TrackableObject:
    return TrackableObject(attributes=(SerializedTensor("VARIABLE_VALUE", key, key),))


def diamonds(depth: int) -> ObjectGraph:
    """Level i is one node with children ``a`` and ``b``; both lead (``next``) to level i + 1:
    2^depth routes to the variable at the bottom, 3 nodes per level."""
    nodes: list[TrackableObject] = []
    for level in range(depth):
        base = 3 * level
        nodes.append(TrackableObject(children=(ObjectReference(base + 1, "a"), ObjectReference(base + 2, "b"))))
        nodes += [TrackableObject(children=(ObjectReference(base + 3, "next"),))] * 2
    nodes.append(variable("w"))
    return ObjectGraph(tuple(nodes))


def chain(length: int) -> ObjectGraph:
    """root -> n1 -> n2 -> ... -> variable, each edge named ``c``."""
    nodes = [TrackableObject(children=(ObjectReference(i + 1, "c"),)) for i in range(length)]
    return ObjectGraph((*nodes, variable("w")))


# ---- items 4 and 5: diamonds and deep chains -------------------------------------------------

def test_diamonds_cost_nodes_not_routes(tmp_path: Path) -> None:
    def cost(depth: int) -> float:
        prefix = write(tmp_path / f"d{depth}", diamonds(depth), {"w": np.ones(2, np.float32)})
        reader = tfckpt.load_checkpoint(prefix)

        def everything() -> None:
            reader.nested()
            reader.object_paths()
            render_tree(checkpoint_tree(reader))
        return cpu_seconds(everything)
    assert_linear(cost, 6)  # routes: 2^6 -> 2^48 before; nodes: 19 -> 145


def test_a_shared_object_is_one_value_in_nested_and_one_path_elsewhere(tmp_path: Path) -> None:
    prefix = write(tmp_path / "d", diamonds(40), {"w": np.arange(3, dtype=np.float32)})  # 2^40 routes
    reader = tfckpt.load_checkpoint(prefix)
    tree = reader.nested()
    assert tree["a"]["next"] is tree["b"]["next"]  # the same dict object at both routes, built once
    level = tree
    for _ in range(39):
        level = level["a"]["next"]
    assert level["b"]["next"].tolist() == [0, 1, 2]
    assert reader.object_paths() == {"w": "/".join(["a", "next"] * 40)}  # the first breadth-first route
    text = render_tree(checkpoint_tree(reader))
    assert text.count("float32[3]") == 1 and text.count("-> same object as") == 40
    assert tfckpt.verify_checkpoint(prefix).ok


def test_a_chain_of_3000_objects_is_walked_without_recursion(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    prefix = write(tmp_path / "c", chain(3000), {"w": np.ones(1, np.float32)})
    reader = tfckpt.load_checkpoint(prefix)
    node = reader.nested()
    for _ in range(3000):
        node = node["c"]
    assert node.tolist() == [1.0]
    assert reader.object_paths()["w"] == "/".join(["c"] * 3000)
    tree = checkpoint_tree(reader)
    assert tree.tensors() == 1
    drawn = render_tree(tree).splitlines()
    assert drawn[-1].endswith("└── [level 3000] c  float32[1]")
    assert max(map(len, drawn)) < 4 * DRAWN_LEVELS + 64  # indent stops growing: O(depth) text
    assert main(["tree", prefix, "--depth", "5"]) == 0
    assert "... (1 tensors)" in capsys.readouterr().out


def test_cycles_end_and_nested_drops_only_the_closing_edge(tmp_path: Path) -> None:
    graph = ObjectGraph((
        TrackableObject(children=(ObjectReference(1, "x"),)),
        TrackableObject(children=(ObjectReference(2, "y"), ObjectReference(0, "root"))),
        TrackableObject(children=(ObjectReference(1, "back"), ObjectReference(3, "v"))),
        variable("v")))
    reader = tfckpt.load_checkpoint(write(tmp_path / "cy", graph, {"v": np.ones(1)}))
    assert reader.nested() == {"x": {"y": {"v": np.ones(1)}}}
    assert "back  -> same object as x" in render_tree(checkpoint_tree(reader))


# ---- item 6: legacy-key prefixes -------------------------------------------------------------

def prefixed(count: int) -> tuple[ObjectGraph, dict[str, np.ndarray]]:
    """``count`` plain variables and ``count`` legacy saveables whose keys carry a suffix."""
    children, nodes = [], [TrackableObject()]
    tensors = {}
    for i in range(count):
        for kind in ("v", "s"):
            children.append(ObjectReference(len(nodes), f"{kind}{i}"))
            key = f"{kind}{i:06d}/.ATTRIBUTES/VARIABLE_VALUE"
            nodes.append(variable(key))
            tensors[key + ("-keys" if kind == "s" else "")] = np.zeros(1, np.int8)
    nodes[0] = TrackableObject(children=tuple(children))
    return ObjectGraph(tuple(nodes)), tensors


def test_legacy_prefixes_are_matched_in_n_log_n(tmp_path: Path) -> None:
    def cost(count: int) -> float:
        graph, tensors = prefixed(count)
        prefix = write(tmp_path / f"p{count}", graph, tensors)

        def everything() -> None:
            reader = tfckpt.load_checkpoint(prefix)  # fresh: nothing cached
            assert reader.object_graph is not None
            assert len(reader.object_paths()) == 2 * count
            assert unmatched_keys(graph, list(tensors)) == []
        return cpu_seconds(everything)
    assert_linear(cost, 400)
    graph, tensors = prefixed(3)
    reader = tfckpt.load_checkpoint(write(tmp_path / "small", graph, tensors))
    assert reader.object_paths()["s000001/.ATTRIBUTES/VARIABLE_VALUE-keys"] == "s1"
    assert tfckpt.verify_checkpoint(reader.prefix).notes == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("ab/", max_size=4), max_size=8), st.lists(st.text("ab/", max_size=5), max_size=12))
def test_longest_prefixes_and_unmatched_keys_agree_with_brute_force(prefixes: list[str], keys: list[str]) -> None:
    want = {}
    for key in keys:
        starting = [p for p in prefixes if key.startswith(p)]
        if starting:
            want[key] = max(starting, key=len)
    assert longest_prefixes(prefixes, keys) == want
    graph = ObjectGraph((TrackableObject(attributes=tuple(SerializedTensor("A", "", p) for p in prefixes)),))
    ordered = sorted(keys)
    assert unmatched_keys(graph, keys) == sorted(
        p for p in set(prefixes) - set(keys) if not any(k.startswith(p) for k in ordered))
    assert all(bisect.bisect_left(ordered, k) < len(ordered) for k in keys)


# ---- item 7: name-based trees ----------------------------------------------------------------

def test_name_based_tree_is_linear(tmp_path: Path) -> None:
    def cost(count: int) -> float:
        prefix = tfckpt.save({f"block_{i}/w": np.zeros(1, np.int8) for i in range(count)}, tmp_path / f"n{count}")
        reader = tfckpt.load_checkpoint(prefix)
        return cpu_seconds(lambda: checkpoint_tree(reader))
    assert_linear(cost, 1000)
    reader = tfckpt.load_checkpoint(tfckpt.save({"a/b/c": np.ones(1), "a/b": np.ones(2), "a/d": np.ones(3)},
                                                tmp_path / "mixed"))
    assert render_tree(checkpoint_tree(reader)).splitlines()[1:] == [
        "└── a", "    ├── b  float64[2]", "    ├── b", "    │   └── c  float64[1]", "    └── d  float64[3]"]


# ---- item 8: suggestions ---------------------------------------------------------------------

def test_missing_keys_cost_log_n_and_suggest_when_shown(tmp_path: Path) -> None:
    def cost(count: int) -> float:
        prefix = tfckpt.save({f"layer_{i:06d}/kernel": np.zeros(1, np.int8) for i in range(count)},
                             tmp_path / f"k{count}")
        reader = tfckpt.load_checkpoint(prefix)

        def misses() -> None:
            for i in range(20):
                assert reader.get(f"layer_{i:06d}/kernal") is None
                assert f"x{i}" not in reader
                with pytest.raises(KeyError):
                    reader[f"layer_{i:06d}/bias"]
        return cpu_seconds(misses)
    assert_linear(cost, 2000)

    def shown(count: int) -> float:
        prefix = tmp_path / f"k{count}" if count >= 2000 else tfckpt.save(
            {f"layer_{i:06d}/kernel": np.zeros(1, np.int8) for i in range(count)}, tmp_path / f"k{count}")
        reader = tfckpt.load_checkpoint(prefix)
        str(pytest.raises(KeyError, reader.__getitem__, "warm/up").value)  # the candidate lists, once

        def messages() -> None:
            for i in range(20):
                with pytest.raises(NotFoundError) as caught:
                    reader[f"layer_{i:06d}/kernal"]
                assert f"did you mean 'layer_{i:06d}/kernel'" in str(caught.value)
        return cpu_seconds(messages)
    assert_linear(shown, 2000)


def test_a_missing_key_error_keeps_its_hint_when_pickled(tmp_path: Path) -> None:
    reader = tfckpt.load_checkpoint(tfckpt.save({"dense/kernel": np.ones(1)}, tmp_path / "m"))
    with pytest.raises(NotFoundError) as caught:
        reader["dense/kernal"]
    copy = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(copy, NotFoundError) and "did you mean 'dense/kernel'?" in str(copy)
    with pytest.raises(NotFoundError, match="did you mean 'save_counter/.ATTRIBUTES/VARIABLE_VALUE'"):
        tfckpt.load_checkpoint(FIXTURES / "keras").key_for("save_countr")


# ---- issue 28 item 1: a damaged graph is an error wherever the graph is used ----------------

def damaged(tmp_path: Path) -> str:
    path = tfckpt.Checkpoint(net={"w": np.arange(4, dtype=np.float32)}).save(str(tmp_path / "dmg" / "ckpt"))
    info = tfckpt.load_checkpoint(path).tensor_info(OBJECT_GRAPH_KEY)
    data = Path(f"{path}.data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[info.offset + info.size - 1] ^= 0xFF
    data.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("command", [["tree"], ["stats"], ["ls", "--objects"],
                                     ["convert", "--object-paths"]])
def test_a_damaged_graph_fails_every_command_that_uses_it(tmp_path: Path, command: list[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = damaged(tmp_path)
    extra = [str(tmp_path / "out.safetensors")] if command[0] == "convert" else []
    assert main([command[0], path, *extra, *command[1:]]) == 1
    assert "checksum" in capsys.readouterr().err.lower()
    assert not (tmp_path / "out.safetensors").exists()


def test_a_damaged_graph_raises_from_the_library(tmp_path: Path) -> None:
    path = damaged(tmp_path)
    with pytest.raises(CorruptionError):
        checkpoint_tree(tfckpt.load_checkpoint(path))
    with pytest.raises(CorruptionError):
        tfckpt.checkpoint_stats(path)


# ---- issue 28 item 11: Keras 3 slots ---------------------------------------------------------

@pytest.mark.parametrize(("fixture", "names"), [("keras", {"momentum", "velocity"}), ("keras_sgd", {"momentum"})])
def test_keras_3_slots_belong_to_their_variables(fixture: str, names: set[str]) -> None:
    reader = tfckpt.load_checkpoint(FIXTURES / fixture)
    slots = reader.slot_variables()
    weights = {info.path: info for info in reader.object_tensors().values()
               if not info.optimizer_state and info.path[0] == "model"}
    assert len(weights) == 4 and len(slots) == 4 * len(names)
    assert {(s.variable_path, s.slot_name) for s in slots} == {(path, name) for path in weights for name in names}
    for slot in slots:
        assert slot.optimizer_path == ("optimizer",)
        assert reader.read_array(slot.key).shape == reader.tensor_info(weights[slot.variable_path].key).shape
        full_name = reader.object_tensors()[slot.key].full_name
        assert full_name.endswith(weights[slot.variable_path].full_name.replace("/", "_") + "_" + slot.slot_name)
