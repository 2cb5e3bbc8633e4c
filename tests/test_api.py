import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, FIXTURES

import tfckpt
from tfckpt.errors import NotFoundError


def _checkpoint_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    shutil.copytree(FIXTURES / "tf1_saver", directory)
    return directory


@pytest.mark.parametrize("form", ["prefix", "index", "data", "dir", "pathlike"])
def test_path_forms_resolve_to_the_same_prefix(tmp_path: Path, form: str) -> None:
    directory = _checkpoint_dir(tmp_path)
    prefix = str(directory / "model.ckpt-3")
    path = {"prefix": prefix, "index": prefix + ".index", "data": prefix + ".data-00000-of-00001",
            "dir": str(directory), "pathlike": Path(prefix)}[form]
    with tfckpt.load_checkpoint(path) as reader:
        assert reader.prefix == prefix
        assert reader["global_step"] == 3


def test_savedmodel_directory_reads_its_variables() -> None:
    reader = tfckpt.load_checkpoint(FIXTURES / "savedmodel")
    assert reader.prefix == str(FIXTURES / "savedmodel" / "variables" / "variables")
    assert "net/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE" not in reader  # root is the module itself
    assert "dense/kernel/.ATTRIBUTES/VARIABLE_VALUE" in reader


def test_missing_paths_are_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no checkpoint"):
        tfckpt.load_checkpoint(tmp_path / "nothing")
    with pytest.raises(NotFoundError, match="Couldn't find 'checkpoint' file"):
        tfckpt.load_checkpoint(tmp_path)


def test_list_variables_is_sorted_and_complete(tmp_path: Path) -> None:
    prefix = tfckpt.save({"b": np.zeros((2, 3)), "a": np.int64(1), "c/d": [b"x"]}, tmp_path / "ck")
    assert tfckpt.list_variables(prefix) == [("a", []), ("b", [2, 3]), ("c/d", [1])]


def test_shape_and_dtype_maps_give_each_name_its_own_entry(tmp_path: Path) -> None:
    """The maps come from grouped kinds (many names share a dtype and shape): every name still
    gets its own shape list, as TF's does, and the kind of its own entry."""
    tensors = {f"t{i:03d}": np.zeros((i % 3, 2), dtype=[np.float32, np.int64][i % 2]) for i in range(60)}
    reader = tfckpt.load_checkpoint(tfckpt.save(tensors, tmp_path / "ck"))
    shapes = reader.get_variable_to_shape_map()
    assert shapes == {name: list(value.shape) for name, value in tensors.items()}
    shapes["t000"].append(7)
    assert shapes["t006"] == [0, 2] and reader.get_variable_to_shape_map()["t000"] == [0, 2]
    assert {name: dtype.name for name, dtype in reader.get_variable_to_dtype_map().items()} == {
        name: value.dtype.name for name, value in tensors.items()}


def test_load_variable_strips_output_suffix(tmp_path: Path) -> None:
    prefix = tfckpt.save({"w": np.arange(3)}, tmp_path / "ck")
    np.testing.assert_array_equal(tfckpt.load_variable(prefix, "w:0"), np.arange(3))
    with pytest.raises(KeyError):
        tfckpt.load_variable(prefix, "v")


def test_reader_is_a_read_only_mapping(tmp_path: Path) -> None:
    from collections.abc import Mapping
    prefix = tfckpt.save({"b": [1], "a": [2.0]}, tmp_path / "ck")
    reader = tfckpt.load_checkpoint(prefix)
    assert isinstance(reader, Mapping)
    assert list(reader) == ["a", "b"] and len(reader) == 2
    assert reader.has_tensor("a") and not reader.has_tensor("z")
    assert dict(reader.items()).keys() == {"a", "b"}
    with pytest.raises(TypeError):
        reader["c"] = 1  # type: ignore[index]
    assert reader.get_variable_to_dtype_map()["a"].name == "float32"  # Python floats: float32, as in TF
    assert reader.debug_string() == b"a (DT_FLOAT) [1]\nb (DT_INT32) [1]\n"
    with pytest.raises(TypeError, match="name must be a str, got int 0"):
        reader[0]  # type: ignore[index]


def test_opening_reads_no_tensor_data(tmp_path: Path) -> None:
    prefix = tfckpt.save({"w": np.ones(1000)}, tmp_path / "ck")
    os.remove(prefix + ".data-00000-of-00001")
    assert tfckpt.list_variables(prefix) == [("w", [1000])]


def test_reader_is_safe_from_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor
    tensors = {f"t{i}": np.full(1000, i, np.int32) for i in range(32)}
    reader = tfckpt.load_checkpoint(tfckpt.save(tensors, tmp_path / "ck"))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: (n, reader[n]), list(tensors) * 8))
    for name, value in results:
        np.testing.assert_array_equal(value, tensors[name])


# ---- state file --------------------------------------------------------------------------------

def test_latest_checkpoint_none_cases(tmp_path: Path) -> None:
    assert tfckpt.latest_checkpoint(tmp_path) is None  # no state file
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "gone-1"\n')
    assert tfckpt.latest_checkpoint(tmp_path) is None  # names a checkpoint that is not there


def test_unparsable_state_file_is_none_with_a_warning_like_tf(tmp_path: Path) -> None:
    from tfckpt.state import get_checkpoint_state, read_state
    for content in (b"this is { not a state file", b"\xff\xfe\x00"):
        (tmp_path / "checkpoint").write_bytes(content)
        with pytest.warns(RuntimeWarning, match="checkpoint state"):
            assert tfckpt.latest_checkpoint(tmp_path) is None
        with pytest.raises(tfckpt.CorruptionError):  # the strict reader says why
            read_state(tmp_path)
    (tmp_path / "checkpoint").write_text('all_model_checkpoint_paths: "x"\n')
    with pytest.raises(ValueError, match="no model_checkpoint_path"):  # TF raises here too
        get_checkpoint_state(tmp_path)


def test_absolute_paths_of_a_moved_directory_fall_back_to_the_state_dir(tmp_path: Path) -> None:
    directory = _checkpoint_dir(tmp_path)
    (directory / "checkpoint").write_text(
        'model_checkpoint_path: "/old/place/that/is/gone/model.ckpt-3"\n'
        'all_model_checkpoint_paths: "/old/place/that/is/gone/model.ckpt-3"\n')
    assert tfckpt.latest_checkpoint(directory) == str(directory / "model.ckpt-3")


def test_state_round_trip_uses_tf_text_format(tmp_path: Path) -> None:
    from tfckpt.state import CheckpointState, read_state, write_state
    tfckpt.save({"x": [1]}, tmp_path / "ckpt-2")
    state = CheckpointState("ckpt-2", ["ckpt-1", "ckpt-2"], [1795314744.7682338, 1795314750.0], 1795314700.5)
    path = write_state(tmp_path, state)
    assert Path(path).read_text() == (
        'model_checkpoint_path: "ckpt-2"\n'
        'all_model_checkpoint_paths: "ckpt-1"\n'
        'all_model_checkpoint_paths: "ckpt-2"\n'
        "all_model_checkpoint_timestamps: 1795314744.7682338\n"
        "all_model_checkpoint_timestamps: 1795314750.0\n"
        "last_preserved_timestamp: 1795314700.5\n")
    loaded = read_state(tmp_path)
    assert loaded is not None and loaded.model_checkpoint_path == str(tmp_path / "ckpt-2")
    assert tfckpt.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-2")
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []


def test_parallel_load_equals_serial_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tfckpt.bundle import store
    monkeypatch.setattr(store, "PARALLEL_MIN_BYTES", 0)
    tensors = {f"t{i}": np.full((64, i + 1), i, np.float32) for i in range(20)}
    with tfckpt.CheckpointWriter(str(tmp_path / "ck"), max_shard_bytes=4096) as writer:
        for name, value in tensors.items():
            writer.add(name, value)
    parallel, serial = tfckpt.load(tmp_path / "ck", max_workers=4), tfckpt.load(tmp_path / "ck", max_workers=1)
    assert list(parallel) == list(serial) == sorted(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(parallel[name], value)


def test_mmap_reads_are_zero_copy_and_still_verified(tmp_path: Path) -> None:
    with tfckpt.CheckpointWriter(str(tmp_path / "ck")) as writer:
        writer.add("byte", np.int8(1))  # puts the next tensor at an odd offset: not aligned
        writer.add("odd", np.arange(4, dtype=np.float32))
        writer.add("pad", np.zeros(7, np.int8))  # 1 + 16 + 7: the next tensor starts at 24
        writer.add("aligned", np.arange(6, dtype=np.float64).reshape(2, 3))
    reader = tfckpt.load_checkpoint(tmp_path / "ck", mmap=True)
    aligned = reader["aligned"]
    assert not aligned.flags.owndata and not aligned.flags.writeable  # a view of the mapped file
    np.testing.assert_array_equal(aligned, np.arange(6.0).reshape(2, 3))
    odd = reader["odd"]
    assert odd.flags.owndata and odd.tolist() == [0, 1, 2, 3]  # unaligned: read as usual
    reader.close()
    assert aligned.sum() == 15  # the mapping outlives the reader while arrays use it
    data = tmp_path / "ck.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[-3] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(tfckpt.ChecksumError):
        tfckpt.load_checkpoint(tmp_path / "ck", mmap=True)["aligned"]


def test_a_directory_without_state_file_opens_its_only_checkpoint(tmp_path: Path) -> None:
    tfckpt.save({"w": np.ones(2)}, tmp_path / "out" / "model.ckpt")
    assert tfckpt.resolve_prefix(tmp_path / "out") == str(tmp_path / "out" / "model.ckpt")
    assert tfckpt.load(str(tmp_path / "out") + "/")["w"].tolist() == [1.0, 1.0]
    tfckpt.save({"w": np.ones(2)}, tmp_path / "out" / "other.ckpt")
    with pytest.raises(tfckpt.NotFoundError, match="holds 2 checkpoints, name one: model.ckpt, other.ckpt"):
        tfckpt.load_checkpoint(tmp_path / "out")


def test_load_variable_accepts_object_paths_and_suggests_names() -> None:
    assert tfckpt.load_variable("examples/keras_mlp", "save_counter") == 1
    with pytest.raises(tfckpt.NotFoundError, match="did you mean 'save_counter/.ATTRIBUTES/VARIABLE_VALUE'"):
        tfckpt.load_variable("examples/keras_mlp", "save_countr")
    kernel = tfckpt.load_variable("examples/keras_mlp", "model/_functional/_operations/1/_kernel")
    assert kernel.shape == (4, 3)


@pytest.mark.parametrize(("value", "message"), [
    (None, "NoneType None is not a tensor value"),
    ({"a": 1}, "dict {'a': 1} is not a tensor value"),
    ({1, 2}, "set {1, 2} is not a tensor value"),
    (np.array([1.0, 2.0], dtype=object), "found float 1.0; give numbers a numeric dtype"),
    (2**70, "holds int 1180591620717411303424 (an integer too large for int64)"),
    (object(), "holds object <object object at"),
    ([1, "a"], "a mixed list of int and str values; a tensor holds one dtype"),  # not "too large for int64"
    ([[2.5, b"x"], [True, "y"]], "a mixed list of bool and bytes and float and str values"),
])
def test_unsupported_values_name_the_tensor_the_value_and_what_is_accepted(tmp_path: Path, value: object,
                                                                           message: str) -> None:
    with pytest.raises(tfckpt.InvalidArgumentError) as info:
        tfckpt.save({"w": value}, tmp_path / "ck")
    assert str(info.value).startswith("tensor 'w': ") and message in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_list_instead_of_a_dict_is_an_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(tfckpt.InvalidArgumentError, match="must be a mapping"):
        tfckpt.save([("w", 1)], tmp_path / "ck")  # type: ignore[arg-type]


def test_bytes_keep_their_trailing_nul_bytes(tmp_path: Path) -> None:
    prefix = tfckpt.save({"s": b"ab\x00", "l": [b"x\x00\x00", b""]}, tmp_path / "ck")
    assert tfckpt.load_variable(prefix, "s") == b"ab\x00"
    assert tfckpt.load(prefix)["l"].tolist() == [b"x\x00\x00", b""]


def test_the_reader_has_tf_s_methods_the_mapping_s_and_a_few_documented_extras() -> None:
    """The reader's audience is people reading tensors; what verify and merge need is the
    store's (``reader.store``), not a pass-through on the reader."""
    from collections.abc import Mapping

    from tfckpt.bundle.reader import CheckpointReader
    tensorflow = {"get_tensor", "has_tensor", "get_variable_to_shape_map", "get_variable_to_dtype_map",
                  "debug_string"}
    extras = {"close", "prefix", "header", "store", "tensor_info", "infos", "key_for", "get_slice", "read_array",
              "read_arrays", "read_slice", "object_graph", "object_paths", "object_tensors", "slot_variables",
              "nested"}
    with tfckpt.load_checkpoint(EXAMPLES / "keras_mlp") as reader:
        public = {name for name in dir(reader) if not name.startswith("_")} - set(dir(Mapping))
        assert public == tensorflow | extras
        assert isinstance(reader, CheckpointReader) and reader.store.verify_checksums


def test_a_store_without_quick_reads_declares_it_and_is_read_through_its_records() -> None:
    """Quick reads are an optional capability a store declares (``quick``), not two methods
    every store must stub: a store of records alone serves every read of the reader."""
    import numpy as np

    from tfckpt.bundle.entry import BundleHeader, TensorInfo
    from tfckpt.bundle.reader import CheckpointReader
    from tfckpt.bundle.store import BundleStore, RecordStore, Store

    assert "quick_sizes" not in vars(Store) and "read_quick" not in vars(Store)

    class Records(RecordStore):
        prefix = index_name = "memory"
        header = BundleHeader()
        verify_checksums = False

        def __init__(self) -> None:
            self.values = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2, dtype=np.int64)}
            self._entries = {name: TensorInfo.of_data(name, tfckpt.as_dtype(value.dtype), value.shape, 0, 0,
                                                      value.nbytes, 0) for name, value in self.values.items()}
            self._slice_entries = {}

        def stored_entries(self):  # type: ignore[no-untyped-def]
            return iter(sorted(self._entries.items()))

        def check_stored(self, info: TensorInfo) -> None:
            pass

        def check_entry(self, info: TensorInfo) -> int:
            return info.size

        def read_entry(self, info: TensorInfo) -> np.ndarray:
            return self.values[info.name]

        def debug_string(self) -> bytes:
            return b""

        def close(self) -> None:
            pass

    store = Records()
    assert store.quick is None
    with CheckpointReader(store) as reader:
        assert {name: value.tolist() for name, value in reader.read_arrays(["b", "a"])} == {
            "a": [[0, 1, 2], [3, 4, 5]], "b": [1, 1]}
        assert reader.get_slice("a")[1:, 1:].tolist() == [[4, 5]]
    with tfckpt.load_checkpoint(EXAMPLES / "keras_mlp") as reader:
        assert isinstance(reader.store, BundleStore) and reader.store.quick is reader.store
