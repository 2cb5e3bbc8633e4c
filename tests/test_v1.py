"""Legacy V1 checkpoints: TF-written fixtures (no TF needed) and damaged files."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from fixtures import values
from test_bundle import assert_same

import tfckpt
from tfckpt.errors import CorruptionError, NotFoundError, TfckptError


@pytest.mark.parametrize("where", ["v1_single", "v1_sharded"])
def test_v1_fixtures_read_through_the_common_api(where: str) -> None:
    directory = FIXTURES / where
    reader = tfckpt.load_checkpoint(directory)  # resolved through the state file
    expected = values.v1_variables()
    expected["v1/partitioned"] = values.partitioned()["part0"]
    assert sorted(reader) == sorted(expected)
    for name, value in expected.items():
        assert_same(reader[name], value)
    np.testing.assert_array_equal(reader.get_slice("v1/partitioned")[3:8, 1:], expected["v1/partitioned"][3:8, 1:])
    assert reader.get_variable_to_dtype_map()["v1/float16"].name == "float16"
    assert tfckpt.list_variables(directory) == sorted((k, list(v.shape)) for k, v in expected.items())


def test_v1_paths_resolve_like_tensorflow() -> None:
    single = FIXTURES / "v1_single" / "model.ckpt-5"
    assert tfckpt.latest_checkpoint(FIXTURES / "v1_single") == str(single)
    assert tfckpt.load_variable(single, "v1/scalar") == np.float32(2.5)
    sharded = FIXTURES / "v1_sharded" / "model.ckpt-5-?????-of-00003"
    assert tfckpt.latest_checkpoint(FIXTURES / "v1_sharded") == str(sharded)
    one_shard = FIXTURES / "v1_sharded" / "model.ckpt-5-00001-of-00003"
    whole, part = set(tfckpt.load_checkpoint(sharded)), set(tfckpt.load_checkpoint(one_shard))
    assert part and part < whole  # one named shard file is read alone, as TensorFlow does


def test_damaged_v1_files(tmp_path: Path) -> None:
    target = tmp_path / "model.ckpt-5"
    shutil.copy(FIXTURES / "v1_single" / "model.ckpt-5", target)
    data = bytearray(target.read_bytes())
    data[40] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(TfckptError):
        tfckpt.load(target)
    target.write_bytes(b"not a table at all" * 3)
    with pytest.raises(CorruptionError):
        tfckpt.load_checkpoint(target)
    with pytest.raises(NotFoundError):
        tfckpt.load_checkpoint(tmp_path / "absent")


@pytest.mark.tf
def test_v1_matches_tensorflow_reader(tf) -> None:
    for where in ("v1_single/model.ckpt-5", "v1_sharded/model.ckpt-5-?????-of-00003"):
        prefix = str(FIXTURES / where)
        theirs, ours = tf.train.load_checkpoint(prefix), tfckpt.load_checkpoint(prefix)
        assert ours.get_variable_to_shape_map() == theirs.get_variable_to_shape_map()
        assert {k: v.name for k, v in ours.get_variable_to_dtype_map().items()} == \
            {k: v.name for k, v in theirs.get_variable_to_dtype_map().items()}
        unreadable_by_tf = []
        for name in ours:
            try:
                got = theirs.get_tensor(name)
            except tf.errors.UnimplementedError:  # TF's V1 reader lacks some types its writer has
                unreadable_by_tf.append(name)
                continue
            assert_same(ours[name], np.array(got, dtype=object) if isinstance(got, bytes) else np.asarray(got))
        # TF 2.21 cannot read uint16, complex, half or partitioned V1 tensors; tfckpt reads all.
        assert len(unreadable_by_tf) < len(ours) // 2, unreadable_by_tf


@pytest.mark.tf
def test_tfckpt_reads_a_live_v1_save(tf, tmp_path: Path) -> None:
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        v = tf.compat.v1.Variable(np.arange(10, dtype=np.int16), name="v")
        sess.run(v.initializer)
        path = tf.compat.v1.train.Saver([v], write_version=tf.compat.v1.train.SaverDef.V1).save(
            sess, str(tmp_path / "m"), write_meta_graph=False)
    assert tfckpt.load(path)["v"].tolist() == list(range(10))


def test_v1_block_checksums_are_checked_whatever_verify_checksums_says(tmp_path: Path) -> None:
    """V1 has table block CRCs only, which are checked always, as a V2 index's blocks are:
    verify_checksums=False skips tensor CRCs, which V1 records do not have."""
    source = FIXTURES / "v1_single" / "model.ckpt-5"
    damaged = tmp_path / "model.ckpt-5"
    data = bytearray(source.read_bytes())
    reader = tfckpt.load_checkpoint(source)
    name = min(reader)
    reader.close()
    # Flip the last byte of a block's stored CRC (the 5-byte trailer after its contents).
    from tfckpt.storage import FileSource
    from tfckpt.table import BlockHandle, TableReader
    table = TableReader(FileSource(str(source)))
    handle, _ = BlockHandle.decode(table._index[0][1])
    data[handle.offset + handle.size + 4] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(tfckpt.ChecksumError):
        tfckpt.load(damaged)
    with pytest.raises(tfckpt.ChecksumError):
        tfckpt.load_checkpoint(damaged, verify_checksums=False).read_array(name)
    with pytest.raises(tfckpt.ChecksumError):
        tfckpt.load(damaged, verify_checksums=False)


def test_mmap_on_a_v1_checkpoint_says_it_cannot() -> None:
    with pytest.raises(tfckpt.UnsupportedError, match="mmap cannot map a V1 checkpoint"):
        tfckpt.load_checkpoint(FIXTURES / "v1_single" / "model.ckpt-5", mmap=True)
    assert tfckpt.load_checkpoint(FIXTURES / "v1_single" / "model.ckpt-5").keys()  # without: read as usual
