"""tfckpt against checkpoints written by real TensorFlow (committed; see fixtures/make_fixtures.py)."""

from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from fixtures import values
from test_bundle import assert_same

import tfckpt
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.writer import BundleWriter, prepare
from tfckpt.storage import FileSource
from tfckpt.table import TableReader


def test_all_dtypes_values_and_names() -> None:
    reader = tfckpt.load_checkpoint(FIXTURES / "all_dtypes" / "ckpt")
    expected = values.all_dtypes()
    assert sorted(reader) == sorted(expected)
    for name, (tf_name, value) in expected.items():
        assert reader.get_variable_to_dtype_map()[name].name == tf_name, name
        assert_same(reader[name], value)


def test_strings_values() -> None:
    loaded = tfckpt.load(FIXTURES / "strings" / "ckpt")
    expected = values.strings()
    assert sorted(loaded) == sorted(expected)
    for name, value in expected.items():
        assert_same(loaded[name], value)


def test_many_keys_span_several_index_blocks() -> None:
    prefix = FIXTURES / "many_keys" / "ckpt"
    table = TableReader(FileSource(index_filename(str(prefix))))
    assert len(table._index) >= 2  # several 256 KiB data blocks
    loaded = tfckpt.load(prefix)
    expected = values.many_keys()
    assert len(loaded) == len(expected) == 6000
    for name, value in expected.items():
        assert_same(loaded[name], value)


def test_tf1_saver_state_and_values() -> None:
    directory = FIXTURES / "tf1_saver"
    assert tfckpt.latest_checkpoint(directory) == str(directory / "model.ckpt-3")
    loaded = tfckpt.load(directory)
    for name, value in values.tf1_variables().items():
        assert_same(loaded[name], value)
    assert loaded["global_step"] == 3
    assert tfckpt.load_variable(directory / "model.ckpt-2", "global_step:0") == 2


def test_tf1_sharded_reads_every_shard() -> None:
    reader = tfckpt.load_checkpoint(FIXTURES / "tf1_sharded")
    assert reader.header.num_shards == 3
    assert {reader.tensor_info(n).shard_id for n in reader} == {0, 1, 2}
    for name, value in values.tf1_variables().items():
        assert_same(reader[name], value)


def test_tf1_partitioned_variables_are_listed_whole_and_assembled() -> None:
    reader = tfckpt.load_checkpoint(FIXTURES / "tf1_partitioned")
    expected = values.partitioned()
    assert reader.get_variable_to_shape_map() == {k: list(v.shape) for k, v in expected.items()}
    for name, value in expected.items():
        assert_same(reader[name], value)


@pytest.mark.parametrize("where", ["tf2_module", "keras", "savedmodel"])
def test_object_based_checkpoints_match_tf_reading(where: str) -> None:
    directory = FIXTURES / where
    reader = tfckpt.load_checkpoint(directory)
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in reader
    graph = reader["_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert isinstance(graph, bytes) and len(graph) > 10  # a scalar string comes back as bytes, as in TF
    with np.load(directory / "expected.npz") as expected:
        assert set(expected.files) <= set(reader)
        for name in expected.files:
            assert_same(reader.read_array(name), expected[name])


def test_tf2_module_string_variable_and_escaped_names() -> None:
    reader = tfckpt.load_checkpoint(FIXTURES / "tf2_module")
    assert reader["table/b.Sc/.ATTRIBUTES/VARIABLE_VALUE"] == b"text"
    assert reader["save_counter/.ATTRIBUTES/VARIABLE_VALUE"] == 1


def test_variant_is_listed_and_refused_clearly() -> None:
    reader = tfckpt.load_checkpoint(FIXTURES / "iterator")
    dtypes = {k: v.name for k, v in reader.get_variable_to_dtype_map().items()}
    variant_keys = [k for k, v in dtypes.items() if v == "variant"]
    assert variant_keys, dtypes
    with pytest.raises(tfckpt.UnsupportedError, match="variant"):
        reader[variant_keys[0]]
    assert reader["v/.ATTRIBUTES/VARIABLE_VALUE"] == 1.0


# ---- golden bytes: rewriting TF's tensors in TF's order reproduces TF's files -------------

GOLDEN = ["all_dtypes/ckpt", "strings/ckpt", "many_keys/ckpt", "tf1_saver/model.ckpt-3",
          "tf2_module/ckpt-1", "keras/ckpt-1", "savedmodel/variables/variables"]


@pytest.mark.parametrize("relative", GOLDEN)
@pytest.mark.parametrize("batched", [False, True], ids=["add", "add_many"])
def test_rewrite_is_byte_identical_to_tensorflow(tmp_path: Path, relative: str, batched: bool) -> None:
    """Tensor by tensor, and batched (small tensors' records kept as columns and encoded with
    numpy), the writer reproduces TF's files byte for byte."""
    source = str(FIXTURES / relative)
    reader = tfckpt.load_checkpoint(source)
    # Data order = TF's SaveV2 call order; an empty tensor sits before the next one at its offset.
    infos = sorted(reader.infos(), key=lambda i: (i.offset, i.size > 0))
    target = str(tmp_path / "ck")
    with BundleWriter(target) as writer:
        if batched:
            writer.add_many([prepare(info.name, reader[info.name], info.dtype) for info in infos])
        for info in infos if not batched else ():
            writer.add(info.name, reader[info.name], dtype=info.dtype)
    if batched:  # the columns path really ran (only strings and resources go one by one)
        assert writer._runs or all(i.dtype.name in ("string", "resource", "variant") for i in infos)
    for path_of in (index_filename, lambda p: data_filename(p, 0, 1)):
        assert Path(path_of(target)).read_bytes() == Path(path_of(source)).read_bytes()


def test_committed_files_name_no_machine_path() -> None:
    """Files TensorFlow wrote for the tests (graphs keep file names as constants, state files
    keep checkpoint paths) name nothing outside the repository: no absolute path of the
    machine that generated them."""
    import re
    root = Path(__file__).resolve().parent.parent
    machine_path = re.compile(rb"/(?:work|home|root|tmp|Users|private/var)/")
    found = [str(path.relative_to(root)) for where in ("tests/fixtures", "tests/corpus", "examples")
             for path in sorted((root / where).rglob("*"))
             if path.is_file() and "__pycache__" not in path.parts and machine_path.search(path.read_bytes())]
    assert not found
