"""Partitioned variables, shards and merges against real TensorFlow."""

import itertools
from pathlib import Path

import numpy as np
import pytest
from test_bundle import assert_same

import tfckpt
from tfckpt import CheckpointWriter

pytestmark = pytest.mark.tf

VALUE = np.arange(24 * 10, dtype=np.float32).reshape(24, 10)


def partitioners(tf):  # type: ignore[no-untyped-def]
    v1 = tf.compat.v1
    return {
        "fixed3_axis0": v1.fixed_size_partitioner(3, axis=0),
        "fixed4_axis1": v1.fixed_size_partitioner(4, axis=1),
        "min_max": v1.min_max_variable_partitioner(max_partitions=5, min_slice_size=200),
        "axis_size": v1.variable_axis_size_partitioner(max_shard_bytes=300),
    }


@pytest.mark.parametrize("kind", ["fixed3_axis0", "fixed4_axis1", "min_max", "axis_size"])
def test_tfckpt_reads_tf1_partitioned_variables(tf, tmp_path: Path, kind: str) -> None:
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        var = tf.compat.v1.get_variable("emb", initializer=tf.constant(VALUE), partitioner=partitioners(tf)[kind])
        sess.run(tf.compat.v1.global_variables_initializer())
        path = tf.compat.v1.train.Saver([var]).save(sess, str(tmp_path / "m"), write_meta_graph=False)
    reader = tfckpt.load_checkpoint(path)
    assert reader.get_variable_to_shape_map() == tf.train.load_checkpoint(path).get_variable_to_shape_map()
    assert_same(reader["emb"], VALUE)
    np.testing.assert_array_equal(reader.get_slice("emb")[5:17, 3:7], VALUE[5:17, 3:7])


@pytest.mark.parametrize("kind", ["fixed3_axis0", "fixed4_axis1", "min_max"])
@pytest.mark.parametrize("layout", ["whole", "same_slices", "other_slices"])
def test_tf1_partitioned_variables_restore_from_tfckpt(tf, tmp_path: Path, kind: str, layout: str) -> None:
    prefix = str(tmp_path / "ours")
    with CheckpointWriter(prefix) as writer:
        if layout == "whole":
            writer.add("emb", VALUE)
        else:
            axis = 0 if layout == "other_slices" or kind != "fixed4_axis1" else 1
            cuts = [0, 5, 11, 24] if axis == 0 else [0, 3, 6, 8, 10]
            if layout == "same_slices" and kind == "fixed3_axis0":
                cuts = [0, 8, 16, 24]
            for lo, hi in itertools.pairwise(cuts):
                index = (slice(lo, hi), slice(None)) if axis == 0 else (slice(None), slice(lo, hi))
                spec = f"{lo},{hi - lo}:-" if axis == 0 else f"-:{lo},{hi - lo}"
                writer.add_slice("emb", VALUE.shape, spec, VALUE[index])
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        var = tf.compat.v1.get_variable("emb", shape=VALUE.shape, dtype=tf.float32,
                                        initializer=tf.compat.v1.zeros_initializer(),
                                        partitioner=partitioners(tf)[kind])
        tf.compat.v1.train.Saver([var]).restore(sess, prefix)
        np.testing.assert_array_equal(sess.run(tf.convert_to_tensor(var)), VALUE)


def test_tensorflow_reads_tfckpt_multi_shard_and_merged_checkpoints(tf, tmp_path: Path) -> None:
    tensors = {f"layer{i}/w": np.full((64, 16), i, np.float32) for i in range(8)}
    with CheckpointWriter(str(tmp_path / "sharded"), max_shard_bytes=10_000) as writer:
        for name, value in tensors.items():
            writer.add(name, value)
    for rank in range(3):
        part = {k: v for i, (k, v) in enumerate(tensors.items()) if i % 3 == rank}
        tfckpt.distributed.save_part(part, tmp_path / "merged", rank, 3)
    tfckpt.distributed.merge_parts(tmp_path / "merged", 3)
    for prefix in ("sharded", "merged"):
        reader = tf.train.load_checkpoint(str(tmp_path / prefix))
        for name, value in tensors.items():
            assert_same(reader.get_tensor(name), value)
    assert tfckpt.load_checkpoint(tmp_path / "sharded").header.num_shards > 1


def test_tfckpt_reads_tf2_sharding_policy_output(tf, tmp_path: Path) -> None:
    root = tf.Module()
    root.vars = [tf.Variable(np.full((100, 10), i, np.float32)) for i in range(6)]
    options = tf.train.CheckpointOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(max_shard_size=5000))
    path = tf.train.Checkpoint(root=root).write(str(tmp_path / "ck"), options=options)
    reader = tfckpt.load_checkpoint(path)
    assert reader.header.num_shards > 1
    theirs = tf.train.load_checkpoint(path)
    assert reader.get_variable_to_shape_map() == theirs.get_variable_to_shape_map()
    for name in reader:
        got = theirs.get_tensor(name)
        assert_same(reader[name], got if isinstance(got, np.ndarray) else np.array(got, dtype=object))


def test_tensorflow_reads_a_checkpoint_written_by_parallel_processes(tf, tmp_path: Path) -> None:
    import multiprocessing

    from test_partitioned import _worker
    world, prefix = 4, str(tmp_path / "model-7")
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(prefix, rank, world)) for rank in range(world)]
    for process in processes:
        process.start()
    tfckpt.distributed.merge_parts(prefix, world, timeout=120)  # rank 0's job: waits for all parts
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    reader = tf.train.load_checkpoint(prefix)
    assert len(reader.get_variable_to_shape_map()) == 2 * world
    for rank in range(world):
        np.testing.assert_array_equal(reader.get_tensor(f"rank{rank}/w"), np.full((100, 8), rank, np.float32))
        assert reader.get_tensor(f"rank{rank}/step") == rank
