"""Live interop with real TensorFlow: TF reads what tfckpt writes, tfckpt reads what TF writes.

Skipped when TensorFlow is not installed, unless TFCKPT_REQUIRE_TF is set (CI sets it).
"""

from pathlib import Path

import numpy as np
import pytest
from fixtures import values
from test_bundle import assert_same

import tfckpt

pytestmark = pytest.mark.tf


def tf_value(tf, tf_name: str, value: np.ndarray):  # type: ignore[no-untyped-def]
    dtype = tf.dtypes.as_dtype(tf_name)
    return tf.constant(value if dtype.is_quantized else value.astype(dtype.as_numpy_dtype), dtype=dtype)


def as_storage(tf_name: str, value: np.ndarray) -> np.ndarray:
    """TF returns quantized tensors as structured arrays; view them as their storage type."""
    if value.dtype.names:
        return value.view(value.dtype[0])
    return value


def test_tensorflow_reads_every_dtype_tfckpt_writes(tf, tmp_path: Path) -> None:
    prefix = str(tmp_path / "ck")
    expected = values.all_dtypes()
    with tfckpt.CheckpointWriter(prefix) as writer:
        for name, (tf_name, value) in expected.items():
            writer.add(name, value, dtype=tf_name)
    reader = tf.train.load_checkpoint(prefix)
    dtype_map = reader.get_variable_to_dtype_map()
    for name, (tf_name, value) in expected.items():
        assert dtype_map[name].name == tf_name
        assert_same(as_storage(tf_name, reader.get_tensor(name)), value)
    # And through the RestoreV2 op, which checks dtypes itself.
    names = sorted(expected)
    restored = tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                                    dtypes=[tf.dtypes.as_dtype(expected[n][0]) for n in names])
    for name, tensor in zip(names, restored):
        if not tensor.dtype.is_quantized:
            assert_same(tensor.numpy(), expected[name][1])


def test_tensorflow_reads_strings_tfckpt_writes(tf, tmp_path: Path) -> None:
    prefix = tfckpt.save(values.strings(), tmp_path / "ck")
    reader = tf.train.load_checkpoint(prefix)
    for name, value in values.strings().items():
        got = reader.get_tensor(name)
        assert_same(got if isinstance(got, np.ndarray) else np.array(got, dtype=object), value)


def test_tfckpt_reads_every_dtype_tensorflow_writes(tf, tmp_path: Path) -> None:
    prefix = str(tmp_path / "ck")
    expected = values.all_dtypes()
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=list(expected), shape_and_slices=[""] * len(expected),
                      tensors=[tf_value(tf, t, v) for t, v in expected.values()])
    reader = tfckpt.load_checkpoint(prefix)
    for name, (tf_name, value) in expected.items():
        assert reader.get_variable_to_dtype_map()[name].name == tf_name
        assert_same(reader[name], value)


@pytest.mark.parametrize("case", ["all_dtypes", "strings", "many_keys", "random"])
def test_same_tensors_give_byte_identical_files(tf, tmp_path: Path, case: str) -> None:
    if case == "all_dtypes":
        tensors = {n: (t, v) for n, (t, v) in values.all_dtypes().items()}
    elif case == "strings":
        tensors = {n: ("string", v) for n, v in values.strings().items()}
    elif case == "many_keys":
        tensors = {n: ("int8", v) for n, v in values.many_keys(9000).items()}
    else:
        rng = np.random.default_rng(7)
        tensors = {f"layer_{i}/w{'x' * int(rng.integers(0, 40))}": ("float32", rng.standard_normal(
            tuple(int(d) for d in rng.integers(0, 5, size=int(rng.integers(0, 4)))), dtype=np.float32))
            for i in range(300)}
    theirs, ours = str(tmp_path / "tf"), str(tmp_path / "ours")
    tf.raw_ops.SaveV2(prefix=theirs, tensor_names=list(tensors), shape_and_slices=[""] * len(tensors),
                      tensors=[tf_value(tf, t, v) if t != "string" else tf.constant(v, tf.string)
                               for t, v in tensors.values()])
    with tfckpt.CheckpointWriter(ours) as writer:
        for name, (tf_name, value) in tensors.items():
            writer.add(name, value, dtype=tf_name)
    for suffix in (".index", ".data-00000-of-00001"):
        assert Path(ours + suffix).read_bytes() == Path(theirs + suffix).read_bytes(), suffix


def test_reader_maps_and_debug_string_match_tensorflow(tf) -> None:
    from conftest import FIXTURES
    for relative in ["all_dtypes/ckpt", "tf1_partitioned/model.ckpt", "tf1_sharded/model.ckpt-3000",
                     "keras/ckpt-1", "iterator/ckpt-1", "strings/ckpt"]:
        prefix = str(FIXTURES / relative)
        theirs, ours = tf.train.load_checkpoint(prefix), tfckpt.load_checkpoint(prefix)
        assert ours.get_variable_to_shape_map() == theirs.get_variable_to_shape_map(), relative
        assert {k: v.name for k, v in ours.get_variable_to_dtype_map().items()} == \
            {k: v.name for k, v in theirs.get_variable_to_dtype_map().items()}, relative
        assert ours.debug_string() == theirs.debug_string(), relative
        assert tfckpt.list_variables(prefix) == tf.train.list_variables(prefix)


def test_tf1_saver_restores_a_tfckpt_checkpoint(tf, tmp_path: Path) -> None:
    expected = values.tf1_variables()
    prefix = tfckpt.save(expected, tmp_path / "model.ckpt")
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        variables = {n: tf.compat.v1.Variable(np.zeros_like(v), name=n) for n, v in expected.items()}
        tf.compat.v1.train.Saver(list(variables.values())).restore(sess, prefix)
        for name, variable in variables.items():
            assert_same(sess.run(variable), expected[name])


def test_tfckpt_reads_live_tf1_sharded_and_partitioned_saves(tf, tmp_path: Path) -> None:
    config = tf.compat.v1.ConfigProto(device_count={"CPU": 4})
    with tf.Graph().as_default(), tf.compat.v1.Session(config=config) as sess:
        created = {}
        for i, (name, value) in enumerate(values.tf1_variables().items()):
            with tf.device(f"/cpu:{i}"):
                created[name] = tf.compat.v1.Variable(value, name=name)
        part = tf.compat.v1.get_variable("emb", initializer=tf.constant(np.arange(60.0).reshape(12, 5)),
                                         partitioner=tf.compat.v1.fixed_size_partitioner(4))
        sess.run(tf.compat.v1.global_variables_initializer())
        prefix = tf.compat.v1.train.Saver(sharded=True).save(sess, str(tmp_path / "m"), write_meta_graph=False)
    reader = tfckpt.load_checkpoint(prefix)
    assert reader.header.num_shards >= 4
    for name, value in values.tf1_variables().items():
        assert_same(reader[name], value)
    assert_same(reader["emb"], np.arange(60.0).reshape(12, 5))
    del part


def test_tfckpt_reads_live_tf2_checkpoint(tf, tmp_path: Path) -> None:
    root = tf.Module()
    root.w = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    root.items = [tf.Variable(np.int64(4)), tf.Variable(b"bytes")]
    path = tf.train.Checkpoint(net=root).save(str(tmp_path / "ckpt"))
    assert tfckpt.latest_checkpoint(tmp_path) == path
    loaded = tfckpt.load(tmp_path)
    assert_same(loaded["net/w/.ATTRIBUTES/VARIABLE_VALUE"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert loaded["net/items/1/.ATTRIBUTES/VARIABLE_VALUE"].item() == b"bytes"
    assert loaded["save_counter/.ATTRIBUTES/VARIABLE_VALUE"] == 1


def test_tensorflow_latest_checkpoint_accepts_our_state_file(tf, tmp_path: Path) -> None:
    from tfckpt.state import CheckpointState, write_state
    tfckpt.save({"x": [1.0]}, tmp_path / "ckpt-7")
    write_state(tmp_path, CheckpointState("ckpt-7", ["ckpt-7"]))
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-7")
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert list(state.all_model_checkpoint_paths) == [str(tmp_path / "ckpt-7")]


def test_tensorflow_reads_every_state_of_an_overwrite(tf, tmp_path: Path) -> None:
    """The re-pointed old checkpoint (N+1 shard names, empty last shard) that a concurrent
    reader may meet during an overwrite is an ordinary bundle for TensorFlow too."""
    from tfckpt.bundle.publish import repoint_existing

    prefix = str(tmp_path / "ck")
    with tfckpt.CheckpointWriter(prefix) as writer:
        writer.add("a", np.arange(6, dtype=np.float32), shard=0)
        writer.add("b", np.arange(3, dtype=np.int64), shard=1)
    assert repoint_existing(prefix, 2, sync=False) is not None
    reader = tf.train.load_checkpoint(prefix)
    np.testing.assert_array_equal(reader.get_tensor("a"), np.arange(6, dtype=np.float32))
    np.testing.assert_array_equal(reader.get_tensor("b"), np.arange(3))
    tfckpt.save({"a": np.ones(2, np.float32)}, prefix)
    np.testing.assert_array_equal(tf.train.load_checkpoint(prefix).get_tensor("a"), np.ones(2, np.float32))


def test_one_body_of_code_gives_the_same_objects_with_tf_train_and_tfckpt(tf, tmp_path: Path) -> None:
    """A script written against tf.train keeps working when tf.train is replaced by tfckpt:
    same types, same values, for scalars, strings, arrays and the listing functions."""
    checkpoint = tf.train.Checkpoint(f=tf.Variable(1.5), i=tf.Variable(np.int64(3)), s=tf.Variable(b"hey\x00"),
                                     v=tf.Variable([1.0, 2.0]), sv=tf.Variable([b"a", b""]), b=tf.Variable(True),
                                     h=tf.Variable(np.float16(1)), e=tf.Variable(np.zeros((0, 3), np.int32)))
    path = checkpoint.write(str(tmp_path / "ck"))

    def body(module):  # type: ignore[no-untyped-def]
        reader = module.load_checkpoint(path)
        shapes = reader.get_variable_to_shape_map()
        dtypes = {k: v.name for k, v in reader.get_variable_to_dtype_map().items()}
        values = {k: reader.get_tensor(k) for k in sorted(shapes) if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}
        listed = module.list_variables(path)
        one = module.load_variable(path, "f/.ATTRIBUTES/VARIABLE_VALUE")
        return shapes, dtypes, values, listed, one

    theirs, ours = body(tf.train), body(tfckpt)
    for a, b in zip(theirs, ours):
        assert type(a) is type(b)
    assert theirs[0] == ours[0] and theirs[1] == ours[1] and theirs[3] == ours[3]
    assert [type(x) for x in theirs[3][0]] == [type(x) for x in ours[3][0]]
    assert {k: type(v) for k, v in theirs[2].items()} == {k: type(v) for k, v in ours[2].items()}
    for key, value in theirs[2].items():
        assert np.asarray(value).dtype == np.asarray(ours[2][key]).dtype, key
        assert np.asarray(value).tolist() == np.asarray(ours[2][key]).tolist(), key
    assert type(theirs[4]) is type(ours[4]) and theirs[4] == ours[4]


def test_python_values_get_the_dtypes_tensorflow_gives_them(tf, tmp_path: Path) -> None:
    values = {"int": 1, "float": 1.5, "big": 2**40, "list": [1, 2], "floats": [[1.0], [2.0]], "bool": True,
              "complex": 1j, "text": "é", "bytes": b"a\x00", "strings": [b"x", b""], "np64": np.float64(1)}
    prefix = tfckpt.save(values, tmp_path / "ck")
    dtypes = tfckpt.load_checkpoint(prefix).get_variable_to_dtype_map()
    reader = tf.train.load_checkpoint(prefix)
    for name, value in values.items():
        assert dtypes[name].name == tf.constant(value).dtype.name, name
        expected = value.encode() if isinstance(value, str) else value
        assert np.asarray(reader.get_tensor(name)).tolist() == np.asarray(expected).tolist(), name


def test_a_multi_block_index_is_tensorflows_byte_for_byte(tf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """20,000 small tensors of mixed dtypes and shapes (an index of three 256 KiB blocks,
    laid out with numpy, records encoded as columns): ``tfckpt.save`` writes the very files
    TF's SaveV2 writes for the same tensors in the same order, and TF lists and reads them."""
    rng = np.random.default_rng(11)
    kinds = [np.float32, np.int64, np.float16, np.int8, np.bool_]
    tensors = {f"model/block_{i // 100:03d}/layer_{i % 100:02d}/{('kernel', 'bias', 'moving_mean')[i % 3]}":
               (rng.standard_normal((i % 4 + 1, i % 3)) * 10).astype(kinds[i % len(kinds)]) for i in range(20_000)}
    ours, theirs = str(tmp_path / "ours" / "ck"), str(tmp_path / "tf" / "ck")
    tfckpt.save(tensors, ours)
    tf.raw_ops.SaveV2(prefix=theirs, tensor_names=list(tensors), shape_and_slices=[""] * len(tensors),
                      tensors=[tf.constant(v) for v in tensors.values()])
    for suffix in (".index", ".data-00000-of-00001"):
        assert Path(ours + suffix).read_bytes() == Path(theirs + suffix).read_bytes(), suffix
    assert Path(ours + ".index").stat().st_size > 3 * (256 << 10) // 2  # more than one block
    reader = tf.train.load_checkpoint(ours)
    assert reader.get_variable_to_shape_map() == {name: list(value.shape) for name, value in tensors.items()}
    for name in list(tensors)[::997]:
        np.testing.assert_array_equal(reader.get_tensor(name), tensors[name])
