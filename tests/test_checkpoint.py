from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import FIXTURES

import tfckpt
from tfckpt import Checkpoint, CheckpointMismatchError, InvalidArgumentError, Variable
from tfckpt.bundle.graph import (
    ObjectGraph,
    attribute_key,
    escape_local_name,
    path_prefix,
    unescape_local_name,
)
from tfckpt.errors import CorruptionError


@pytest.mark.parametrize(("name", "escaped"), [
    ("kernel", "kernel"), ("a/b", "a.Sb"), ("x.y", "x..y"), ("./", "...S"), ("..S", "....S"), ("", ""),
])
def test_local_name_escaping_round_trips(name: str, escaped: str) -> None:
    assert escape_local_name(name) == escaped
    assert unescape_local_name(escaped) == name


def test_bad_escape_is_corruption() -> None:
    with pytest.raises(CorruptionError, match="bad escape"):
        unescape_local_name("a.x")


def test_keys_follow_tf_layout() -> None:
    assert attribute_key(("net", "dense", "kernel")) == "net/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    assert attribute_key(("table", "b/c")) == "table/b.Sc/.ATTRIBUTES/VARIABLE_VALUE"
    assert path_prefix(("x.y",)) == "x..y"


def test_graph_decode_rejects_dangling_node_ids() -> None:
    from tfckpt._proto import trackable_object_graph_pb2 as pb
    proto = pb.TrackableObjectGraph()
    proto.nodes.add().children.add(node_id=5, local_name="x")
    with pytest.raises(CorruptionError, match="refers to node 5 of 1"):
        ObjectGraph.decode(proto.SerializeToString(), "test")
    with pytest.raises(CorruptionError, match="no root"):
        ObjectGraph.decode(b"", "test")
    with pytest.raises(CorruptionError):
        ObjectGraph.decode(b"\xff\xff", "test")


def _structure() -> tuple[Checkpoint, SimpleNamespace, list, dict]:
    net = SimpleNamespace(kernel=Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="kernel"),
                          bias=np.zeros(3, np.float32), note="not a variable", count=3)
    items = [Variable(np.int64(4)), np.ones(2, np.float16)]
    table = {"a": np.array([1.0, 2.0]), "b/c": Variable([b"text"])}
    return Checkpoint(net=net, items=items, table=table), net, items, table


def test_written_keys_and_graph_match_tensorflow_layout(tmp_path: Path) -> None:
    ckpt, *_ = _structure()
    path = ckpt.save(tmp_path / "ckpt")
    reader = tfckpt.load_checkpoint(path)
    assert sorted(reader) == sorted([
        "_CHECKPOINTABLE_OBJECT_GRAPH", "items/0/.ATTRIBUTES/VARIABLE_VALUE", "items/1/.ATTRIBUTES/VARIABLE_VALUE",
        "net/bias/.ATTRIBUTES/VARIABLE_VALUE", "net/kernel/.ATTRIBUTES/VARIABLE_VALUE",
        "save_counter/.ATTRIBUTES/VARIABLE_VALUE", "table/a/.ATTRIBUTES/VARIABLE_VALUE",
        "table/b.Sc/.ATTRIBUTES/VARIABLE_VALUE"])
    graph = reader.object_graph
    assert graph is not None
    root = graph.nodes[0]
    assert [c.local_name for c in root.children] == ["items", "net", "table", "save_counter"]  # sorted, counter last
    assert all(node.has_checkpoint_values for node in graph.nodes)
    tensors = reader.object_tensors()
    assert tensors["net/kernel/.ATTRIBUTES/VARIABLE_VALUE"].full_name == "kernel"
    assert reader.object_paths()["table/b.Sc/.ATTRIBUTES/VARIABLE_VALUE"] == "table/b/c"
    # Data order is breadth-first, the object graph last.
    order = sorted(reader.infos(), key=lambda i: i.offset)
    assert order[-1].name == "_CHECKPOINTABLE_OBJECT_GRAPH"


def test_save_numbers_and_updates_state_write_does_not(tmp_path: Path) -> None:
    ckpt, *_ = _structure()
    assert ckpt.save(tmp_path / "ckpt").endswith("ckpt-1")
    second = ckpt.save(tmp_path / "ckpt")
    assert second.endswith("ckpt-2") and int(ckpt.save_counter.numpy()) == 2
    assert tfckpt.latest_checkpoint(tmp_path) == second
    assert (tmp_path / "checkpoint").read_text() == 'model_checkpoint_path: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-2"\n'
    written = ckpt.write(tmp_path / "other")
    assert written == str(tmp_path / "other") and tfckpt.latest_checkpoint(tmp_path) == second


def test_restore_by_structure_round_trip(tmp_path: Path) -> None:
    ckpt, net, items, table = _structure()
    path = ckpt.save(tmp_path / "ckpt")
    fresh, fnet, fitems, ftable = _structure()
    fnet.kernel.assign(np.zeros((2, 3)))
    fnet.bias[:] = 7
    fitems[0].assign(0)
    ftable["b/c"].assign([b"zzzz"])
    status = fresh.restore(path).assert_consumed()
    assert status.save_path == path
    np.testing.assert_array_equal(fnet.kernel.numpy(), net.kernel.numpy())
    assert fnet.bias.tolist() == [0, 0, 0]
    assert int(fitems[0].numpy()) == int(items[0].numpy()) == 4
    np.testing.assert_array_equal(fitems[1], items[1])
    np.testing.assert_array_equal(ftable["a"], table["a"])
    assert ftable["b/c"].numpy().tolist() == table["b/c"].numpy().tolist() == [b"text"]
    assert int(fresh.save_counter.numpy()) == 1


def test_shared_objects_are_one_node(tmp_path: Path) -> None:
    shared = Variable([1.0, 2.0])
    ckpt = Checkpoint(a={"w": shared}, b=[shared])
    reader = tfckpt.load_checkpoint(ckpt.write(tmp_path / "ck"))
    assert [k for k in reader if k != "_CHECKPOINTABLE_OBJECT_GRAPH"] == ["a/w/.ATTRIBUTES/VARIABLE_VALUE"]
    shared.assign([0.0, 0.0])
    Checkpoint(a={"w": shared}, b=[shared]).read(tmp_path / "ck").assert_consumed()
    assert shared.numpy().tolist() == [1.0, 2.0]


def test_restore_vs_read_and_save_counter(tmp_path: Path) -> None:
    v = Variable([1.0])
    path = Checkpoint(v=v).write(tmp_path / "ck")  # no save_counter in the file
    Checkpoint(v=v).read(path).assert_consumed()
    with pytest.raises(CheckpointMismatchError, match="save_counter"):
        Checkpoint(v=v).restore(path).assert_consumed()
    Checkpoint(v=v).restore(path).assert_nontrivial_match().expect_partial()


def test_partial_structures_and_assertions(tmp_path: Path) -> None:
    ckpt, *_ = _structure()
    path = ckpt.save(tmp_path / "ckpt")
    only_table = {"a": np.zeros(2)}
    status = Checkpoint(table=only_table).restore(path)
    assert only_table["a"].tolist() == [1.0, 2.0]
    status.assert_existing_objects_matched()
    with pytest.raises(CheckpointMismatchError, match="Unresolved object in checkpoint"):
        status.assert_consumed()
    extra = Checkpoint(table={"a": np.zeros(2), "new": np.zeros(1)}).restore(path)
    with pytest.raises(CheckpointMismatchError, match="table/new"):
        extra.assert_existing_objects_matched()
    none = Checkpoint(v=Variable(1.0)).restore(None)
    with pytest.raises(CheckpointMismatchError, match="save_path=None"):
        none.assert_consumed()


def test_mismatch_restores_nothing_and_names_the_path(tmp_path: Path) -> None:
    ckpt, *_ = _structure()
    path = ckpt.save(tmp_path / "ckpt")
    good = np.zeros(2)
    wrong = SimpleNamespace(kernel=Variable(np.zeros((3, 3), np.float32)), bias=np.zeros(3, np.float32))
    with pytest.raises(InvalidArgumentError) as info:
        Checkpoint(table={"a": good}, net=wrong).restore(path)
    assert "'net/kernel'" in str(info.value) and "[2, 3]" in str(info.value) and "[3, 3]" in str(info.value)
    assert good.tolist() == [0.0, 0.0]
    with pytest.raises(InvalidArgumentError, match="holds no variable value"):
        Checkpoint(net=np.zeros(1)).restore(path)


def test_restore_from_directory_and_savedmodel(tmp_path: Path) -> None:
    kernel = np.zeros((2, 3), np.float32)
    step = Variable(np.int64(0))
    Checkpoint(dense={"kernel": kernel}, step=step).read(FIXTURES / "savedmodel").assert_existing_objects_matched()
    assert kernel.tolist() == [[0, 1, 2], [3, 4, 5]] and int(step.numpy()) == 5
    other = np.zeros((2, 3), np.float32)
    Checkpoint(net={"dense": {"kernel": other}}).restore(FIXTURES / "tf2_module")
    assert other[1, 2] == 5


def test_name_based_checkpoint_is_refused_clearly() -> None:
    with pytest.raises(InvalidArgumentError, match="name-based"):
        Checkpoint(v=np.zeros(1)).restore(FIXTURES / "tf1_saver")


def test_constructor_checks() -> None:
    with pytest.raises(InvalidArgumentError, match="reserved"):
        Checkpoint(save_counter=Variable(1))
    with pytest.raises(InvalidArgumentError, match="holds no values to save"):
        Checkpoint(x="text")
    with pytest.raises(InvalidArgumentError, match="dict keys"):
        Checkpoint(x={1: np.zeros(1)}).write("unused")


# ---- reading TF-written graphs --------------------------------------------------------------

def test_nested_view_of_tf_module_checkpoint() -> None:
    tree = tfckpt.load_checkpoint(FIXTURES / "tf2_module").nested(save_counter=False)
    assert set(tree) == {"items", "net", "table"}
    assert isinstance(tree["items"], list) and tree["items"][0] == 3
    assert tree["net"]["dense"]["kernel"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert tree["table"]["b/c"].item() == b"text"
    assert "save_counter" in tfckpt.load_checkpoint(FIXTURES / "tf2_module").nested()


def test_nested_view_of_keras_checkpoint_follows_every_route() -> None:
    reader = tfckpt.load_checkpoint(FIXTURES / "keras")
    full = reader.nested()
    layers = full["model"]["_functional"]["_operations"]
    kernel = layers["1"]["_kernel"]
    assert kernel.shape == (4, 3)
    # The same variable is stored under the optimizer's shorter path.
    np.testing.assert_array_equal(kernel, reader["optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"])
    model_only = reader.nested(optimizer=False, save_counter=False)
    assert set(model_only) == {"model"} and "optimizer" not in model_only["model"]


def test_slot_variables_map_to_their_variables() -> None:
    reader = tfckpt.load_checkpoint(FIXTURES / "tf2_slots")
    slots = {(s.variable_path, s.slot_name): s for s in reader.slot_variables()}
    assert set(slots) == {(("model", "w"), "m"), (("model", "w"), "v"), (("model", "b"), "m"), (("model", "b"), "v")}
    assert slots[(("model", "w"), "m")].key == "model/w/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"
    assert reader.object_paths()[slots[(("model", "b"), "v")].key] == "model/b/.OPTIMIZER_SLOT/optimizer/v"
    tree = reader.nested()
    assert set(tree["optimizer"][".OPTIMIZER_SLOT"]) == {"model/w", "model/b"}
    assert set(tree["optimizer"][".OPTIMIZER_SLOT"]["model/w"]) == {"m", "v"}
    no_slots = reader.nested(slots=False)
    assert ".OPTIMIZER_SLOT" not in no_slots["optimizer"] and "beta1_power" in no_slots["optimizer"]
    assert set(reader.nested(optimizer=False)) == {"model", "save_counter"}


def test_full_names_are_exposed() -> None:
    tensors = tfckpt.load_checkpoint(FIXTURES / "keras").object_tensors()
    assert tensors["optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"].full_name == "sequential/hidden/kernel"


def test_legacy_saveable_keys_are_matched_by_prefix() -> None:
    reader = tfckpt.load_checkpoint(FIXTURES / "iterator")
    paths = reader.object_paths()
    iterator_keys = [k for k in paths if k.startswith("it/")]
    assert iterator_keys and all(paths[k] == "it" for k in iterator_keys)


def test_name_based_checkpoint_nested_by_key() -> None:
    reader = tfckpt.load_checkpoint(FIXTURES / "tf1_saver")
    assert reader.object_graph is None and reader.object_paths() == {}
    assert reader.nested()["dense"]["kernel"].shape == (3, 4)


def test_restore_tf_written_keras_checkpoint_into_numpy_structure() -> None:
    reader = tfckpt.load_checkpoint(FIXTURES / "keras")
    template = reader.nested()
    # A structure of zeros shaped like the checkpoint, sharing objects where the graph does.
    zeros: dict[int, np.ndarray] = {}

    def blank(value):  # type: ignore[no-untyped-def]
        if isinstance(value, dict):
            return {k: blank(v) for k, v in value.items()}
        if isinstance(value, list):
            return [blank(v) for v in value]
        return zeros.setdefault(id(value), np.zeros_like(value))

    structure = blank(template)
    Checkpoint(**{k: v for k, v in structure.items() if k != "save_counter"}).restore(
        FIXTURES / "keras").assert_consumed()
    np.testing.assert_array_equal(structure["model"]["_functional"]["_operations"]["2"]["bias"],
                                  reader["optimizer/_trainable_variables/3/.ATTRIBUTES/VARIABLE_VALUE"])


def test_keras_weights_have_model_paths_and_optimizer_state_is_flagged() -> None:
    tensors = tfckpt.load_checkpoint(FIXTURES / "keras").object_tensors()
    kernel = tensors["optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"]
    assert kernel.path == ("model", "_functional", "_operations", "1", "_kernel") and not kernel.optimizer_state
    assert tensors["optimizer/_variables/2/.ATTRIBUTES/VARIABLE_VALUE"].optimizer_state
    assert tensors["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"].optimizer_state
    assert not tensors["save_counter/.ATTRIBUTES/VARIABLE_VALUE"].optimizer_state
    slots = tfckpt.load_checkpoint(FIXTURES / "tf2_slots").object_tensors()
    assert slots["model/w/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"].optimizer_state
    assert not slots["model/w/.ATTRIBUTES/VARIABLE_VALUE"].optimizer_state
