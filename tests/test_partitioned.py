"""Partitioned tensors, partial reads, multiple data shards and merging."""

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from fixtures import values
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bundle import assert_same

import tfckpt
from tfckpt import CheckpointWriter, InvalidArgumentError, TensorSlice
from tfckpt.bundle import payload
from tfckpt.bundle.naming import index_filename
from tfckpt.bundle.reader import CheckpointReader
from tfckpt.bundle.slices import encode_slice_key, parse_shape_and_slice
from tfckpt.errors import CorruptionError
from tfckpt.storage import FileSource


class CountingSource(FileSource):
    """A FileSource that counts the bytes read from data files."""

    total = 0

    def read_at(self, offset: int, n: int) -> bytes:
        if ".data-" in self.name:
            CountingSource.total += n
        return super().read_at(offset, n)

    def readinto_at(self, offset: int, buffer: memoryview) -> None:
        if ".data-" in self.name:
            CountingSource.total += buffer.nbytes
        super().readinto_at(offset, buffer)


def test_parse_shape_and_slice() -> None:
    assert parse_shape_and_slice("5 2 0,3:0,2") == ((5, 2), TensorSlice(((0, 3), (0, 2))))
    assert str(TensorSlice.parse("0,3:-")) == "0,3:-"
    for bad in ["5 2", "x 2 0,1:-", "5 2 0,3"]:
        with pytest.raises(InvalidArgumentError):
            parse_shape_and_slice(bad)
    with pytest.raises(InvalidArgumentError):
        TensorSlice.parse("0,0:-")  # zero length


def _partitioned(tmp_path: Path, value: np.ndarray, cuts: list[int], axis: int = 0) -> str:
    prefix = str(tmp_path / "ck")
    with CheckpointWriter(prefix) as writer:
        edges = [0, *cuts, value.shape[axis]]
        for lo, hi in itertools.pairwise(edges):
            extents = [(0, -1)] * value.ndim
            extents[axis] = (lo, hi - lo)
            index = [slice(None)] * value.ndim
            index[axis] = slice(lo, hi)
            writer.add_slice("t", value.shape, TensorSlice(tuple(extents)), value[tuple(index)])
    return prefix


@pytest.mark.parametrize("dtype", ["float16", "uint32", "int8", "bool", "complex128", "string"])
def test_partitioned_tensors_of_any_dtype_are_assembled(tmp_path: Path, dtype: str) -> None:
    if dtype == "string":
        value = np.array([[f"r{r}c{c}".encode() for c in range(3)] for r in range(7)], dtype=object)
    else:
        value = (np.arange(21).reshape(7, 3) % 2 == 0) if dtype == "bool" else np.arange(21).reshape(7, 3).astype(dtype)
    prefix = _partitioned(tmp_path, value, [2, 5])
    reader = tfckpt.load_checkpoint(prefix)
    assert list(reader) == ["t"] and reader.get_variable_to_shape_map() == {"t": [7, 3]}
    assert_same(reader["t"], value)
    assert_same(reader.get_slice("t")[1:6], value[1:6])


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_partial_reads_match_numpy(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    shape = tuple(data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=4)))
    value = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    directory = tmp_path_factory.mktemp("p")
    axis = data.draw(st.integers(0, len(shape) - 1))
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, shape[axis] - 1)), max_size=3)))) if shape[axis] > 1 else []
    whole = tfckpt.save({"t": value}, directory / "whole")
    parted = _partitioned(directory, value, cuts, axis)
    index = tuple(data.draw(st.one_of(
        st.integers(-dim, dim - 1),
        st.builds(slice, st.none() | st.integers(-dim - 1, dim + 1), st.none() | st.integers(-dim - 1, dim + 1),
                  st.none() | st.sampled_from([1, 2, -1, -2, 3]))))
        for dim in shape[:data.draw(st.integers(0, len(shape)))])
    factor = data.draw(st.sampled_from([0, 4]))  # 0 forces one read per run
    original = (payload.SPAN_READ_FACTOR, payload.SPAN_READ_SMALL)
    payload.SPAN_READ_FACTOR, payload.SPAN_READ_SMALL = factor, (0 if factor == 0 else original[1])
    try:
        for prefix in (whole, parted):
            got = tfckpt.load_checkpoint(prefix).get_slice("t")[index]
            np.testing.assert_array_equal(got, value[index])
    finally:
        payload.SPAN_READ_FACTOR, payload.SPAN_READ_SMALL = original


def test_partial_read_touches_only_the_bytes_needed(tmp_path: Path) -> None:
    table = np.arange(1000 * 64, dtype=np.float32).reshape(1000, 64)
    prefix = tfckpt.save({"emb": table, "other": np.zeros(10_000)}, tmp_path / "ck")
    reader = CheckpointReader(prefix, opener=CountingSource)
    CountingSource.total = 0
    rows = reader.get_slice("emb")[100:200, :]
    np.testing.assert_array_equal(rows, table[100:200])
    assert CountingSource.total == 100 * 64 * 4
    CountingSource.total = 0
    np.testing.assert_array_equal(reader.read_slice("emb", "10,5:-"), table[10:15])
    assert CountingSource.total == 5 * 64 * 4
    # In a partitioned tensor only the slices that intersect are read.
    parted = _partitioned(tmp_path / "p", table, [250, 500, 750])
    reader = CheckpointReader(parted, opener=CountingSource)
    CountingSource.total = 0
    np.testing.assert_array_equal(reader.get_slice("t")[600:610], table[600:610])
    assert CountingSource.total == 10 * 64 * 4


def test_index_errors_like_numpy(tmp_path: Path) -> None:
    view = tfckpt.load_checkpoint(tfckpt.save({"t": np.zeros((3, 4))}, tmp_path / "ck")).get_slice("t")
    with pytest.raises(IndexError):
        view[3]
    with pytest.raises(IndexError):
        view[0, 0, 0]
    with pytest.raises(tfckpt.UnsupportedError, match="fancy"):
        view[[0, 1]]
    assert view[..., 1].shape == (3,) and view[-1].shape == (4,) and len(view) == 3
    np.testing.assert_array_equal(np.asarray(view), np.zeros((3, 4)))


def test_missing_and_overlapping_slices_are_reported(tmp_path: Path) -> None:
    import dataclasses

    from tfckpt.bundle.entry import BundleHeader
    from tfckpt.bundle.writer import write_index
    prefix = _partitioned(tmp_path, np.arange(12.0).reshape(6, 2), [3])
    entries = dict(tfckpt.load_checkpoint(prefix).store.entries())
    full = entries.pop(b"t")
    top, bottom = full.slices

    def rewrite(slices: tuple, drop: bytes | None = None) -> None:
        kept = [info for key, info in entries.items() if key != drop]
        with open(index_filename(prefix), "wb") as sink:
            write_index(sink, BundleHeader(), [*kept, dataclasses.replace(full, slices=slices)])

    rewrite((top, bottom), drop=encode_slice_key("t", bottom))
    with pytest.raises(CorruptionError, match="slice 3,3:- is listed but its data entry is missing"):
        tfckpt.load_checkpoint(prefix)["t"]
    rewrite((TensorSlice(((0, 4), (0, -1))), bottom))
    with pytest.raises(CorruptionError, match="slices 0,4:- and 3,3:- overlap"):
        tfckpt.load_checkpoint(prefix)["t"]
    rewrite((top,))
    reader = tfckpt.load_checkpoint(prefix)
    with pytest.raises(CorruptionError, match=r"key 't': region 3,3:- is not covered by any stored slice"):
        reader["t"]
    assert reader.get_slice("t")[0:3].tolist() == [[0, 1], [2, 3], [4, 5]]  # covered parts still read


def test_add_slice_errors(tmp_path: Path) -> None:
    writer = CheckpointWriter(str(tmp_path / "ck"))
    writer.add_slice("t", None, "4 2 0,2:-", np.zeros((2, 2)))
    with pytest.raises(InvalidArgumentError, match="already added"):
        writer.add_slice("t", (4, 2), "0,2:-", np.zeros((2, 2)))
    with pytest.raises(InvalidArgumentError, match="needs"):
        writer.add_slice("t", (4, 2), "2,2:-", np.zeros((3, 2)))
    with pytest.raises(InvalidArgumentError, match="earlier slices"):
        writer.add_slice("t", (4, 2), "2,2:-", np.zeros((2, 2), np.float32))
    with pytest.raises(InvalidArgumentError, match="does not fit"):
        writer.add_slice("u", (4, 2), "3,2:-", np.zeros((2, 2)))
    with pytest.raises(InvalidArgumentError, match="duplicate"):
        writer.add("t", np.zeros(1))
    writer.abort()
    full = tfckpt.CheckpointWriter(str(tmp_path / "full"))
    full.add_slice("w", (2, 2), "-:-", np.ones((2, 2)))  # whole tensor: a plain entry
    full.finish()
    assert tfckpt.load_checkpoint(tmp_path / "full").tensor_info("w").slices == ()


def test_overlapping_slices_are_refused_at_finish_and_nothing_is_written(tmp_path: Path) -> None:
    writer = CheckpointWriter(str(tmp_path / "ck"))
    writer.add("other", np.ones(3))
    writer.add_slice("t", (4, 2), "0,2:-", np.zeros((2, 2)))
    writer.add_slice("t", (4, 2), "1,2:-", np.zeros((2, 2)))  # overlaps row 1
    with pytest.raises(InvalidArgumentError, match=r"'t': slices 0,2:- and 1,2:- overlap; nothing was written"):
        writer.finish()
    assert list(tmp_path.iterdir()) == []


def test_ten_thousand_slices_are_checked_in_n_log_n(tmp_path: Path) -> None:
    """10**4 slices of one tensor (a grid of 100 x 100 blocks, in shuffled order) round-trip;
    the counts, not the clock, are what is asserted: the validator does not compare pairs."""
    from tfckpt.bundle import validate

    rng = np.random.default_rng(0)
    full = rng.standard_normal((400, 300)).astype(np.float32)
    blocks = [(i, j) for i in range(100) for j in range(100)]
    rng.shuffle(blocks)
    with CheckpointWriter(str(tmp_path / "ck"), sync=False) as writer:
        for i, j in blocks:
            writer.add_slice("grid", (400, 300), f"{4 * i},4:{3 * j},3", full[4 * i:4 * i + 4, 3 * j:3 * j + 3])
    reader = tfckpt.load_checkpoint(tmp_path / "ck")
    np.testing.assert_array_equal(reader["grid"], full)
    np.testing.assert_array_equal(reader.get_slice("grid")[37:251, 5:7], full[37:251, 5:7])
    counted = []
    original = validate._TilingCheck.pairwise
    validate._TilingCheck.pairwise = lambda self, boxes: counted.append(len(boxes))  # type: ignore[method-assign]
    try:
        assert validate.tiling_problem([((4 * i, 4 * i + 4), (3 * j, 3 * j + 3)) for i, j in blocks],
                                       ((0, 400), (0, 300))) is None
    finally:
        validate._TilingCheck.pairwise = original  # type: ignore[method-assign]
    assert counted == []  # every block was separated by straight cuts, none compared pairwise


def test_rewriting_tf1_partitioned_fixture_is_byte_identical(tmp_path: Path) -> None:
    source = tfckpt.load_checkpoint(FIXTURES / "tf1_partitioned")
    target = str(tmp_path / "model.ckpt")
    pieces = [(name, piece, source.tensor_info(name)) for name in source for piece in source.tensor_info(name).slices]
    # TF writes slices in the order of their data offsets.
    raw = dict(source.store.entries())
    pieces.sort(key=lambda p: raw[encode_slice_key(p[0], p[1])].offset)
    with CheckpointWriter(target) as writer:
        for name, piece, info in pieces:
            writer.add_slice(name, info.shape, piece, source.read_slice(name, piece))
    for suffix in (".index", ".data-00000-of-00001"):
        assert Path(target + suffix).read_bytes() == (FIXTURES / "tf1_partitioned" / ("model.ckpt" + suffix)).read_bytes()
    expected = values.partitioned()
    for name, value in expected.items():
        assert_same(tfckpt.load(target)[name], value)


def test_reproducing_tf1_sharded_save_by_parts_and_merge(tmp_path: Path) -> None:
    source = tfckpt.load_checkpoint(FIXTURES / "tf1_sharded")
    shards = sorted({source.tensor_info(n).shard_id for n in source})
    parts = []
    for shard in shards:
        infos = sorted((source.tensor_info(n) for n in source if source.tensor_info(n).shard_id == shard),
                       key=lambda i: i.offset)
        part = str(tmp_path / "model.ckpt-3000_temp" / f"part-{shard:05d}-of-{len(shards):05d}")
        tfckpt.save({i.name: source[i.name] for i in infos}, part)
        parts.append(part)
    merged = tfckpt.merge_checkpoints(parts, tmp_path / "model.ckpt-3000")
    assert not (tmp_path / "model.ckpt-3000_temp").exists()  # emptied and removed, as TF does
    for suffix in [".index"] + [f".data-{i:05d}-of-{len(shards):05d}" for i in shards]:
        assert Path(merged + suffix).read_bytes() == (FIXTURES / "tf1_sharded" / ("model.ckpt-3000" + suffix)).read_bytes()


# ---- multi-shard writing and merging -------------------------------------------------------

def test_size_policy_and_explicit_shards(tmp_path: Path) -> None:
    tensors = {f"t{i}": np.full(250, i, np.float32) for i in range(6)}  # 1000 bytes each
    with CheckpointWriter(str(tmp_path / "sized"), max_shard_bytes=2500) as writer:
        for name, value in tensors.items():
            writer.add(name, value)
    reader = tfckpt.load_checkpoint(tmp_path / "sized")
    assert reader.header.num_shards == 3
    assert [reader.tensor_info(f"t{i}").shard_id for i in range(6)] == [0, 0, 1, 1, 2, 2]
    for name, value in tensors.items():
        assert_same(reader[name], value)
    with CheckpointWriter(str(tmp_path / "explicit")) as writer:
        writer.add("a", [1], shard=2)
        writer.add("b", [2], shard=0)
    reader = tfckpt.load_checkpoint(tmp_path / "explicit")
    assert reader.header.num_shards == 3 and reader.tensor_info("a").shard_id == 2
    assert sorted(p.name for p in tmp_path.glob("explicit.data-*")) == [
        "explicit.data-00000-of-00003", "explicit.data-00001-of-00003", "explicit.data-00002-of-00003"]


def test_resaving_with_fewer_shards_removes_stale_files(tmp_path: Path) -> None:
    with CheckpointWriter(str(tmp_path / "ck"), max_shard_bytes=8) as writer:
        writer.add("a", np.zeros(2))
        writer.add("b", np.zeros(2))
    assert len(list(tmp_path.glob("ck.data-*"))) == 2
    tfckpt.save({"a": [1]}, tmp_path / "ck")
    assert [p.name for p in tmp_path.glob("ck.data-*")] == ["ck.data-00000-of-00001"]


def test_merge_semantics(tmp_path: Path) -> None:
    a = str(tmp_path / "parts" / "a")
    b = str(tmp_path / "parts" / "b")
    with CheckpointWriter(a, max_shard_bytes=8) as writer:  # 8 bytes each: three data files
        writer.add("x", np.zeros(1))
        writer.add("y", np.ones(1))
        writer.add_slice("p", (4,), "0,2", np.array([0.0, 1.0]))
    with CheckpointWriter(b) as writer:
        writer.add("z", [7])
        writer.add_slice("p", (4,), "2,2", np.array([2.0, 3.0]))
    merged = tfckpt.merge_checkpoints([a, str(tmp_path / "missing"), b], tmp_path / "out", allow_missing_files=True)
    reader = tfckpt.load_checkpoint(merged)
    assert reader.header.num_shards == 4 == len(list(tmp_path.glob("out.data-*-of-00004")))
    assert reader["p"].tolist() == [0.0, 1.0, 2.0, 3.0] and reader["z"].tolist() == [7]
    assert not os.path.exists(index_filename(a)) and not (tmp_path / "parts").exists()
    with pytest.raises(InvalidArgumentError, match="allow_missing_files was set to false"):
        tfckpt.merge_checkpoints([str(tmp_path / "missing")], tmp_path / "x")
    with pytest.raises(InvalidArgumentError, match="At least one prefix"):
        tfckpt.merge_checkpoints([str(tmp_path / "missing")], tmp_path / "x", allow_missing_files=True)
    c = tfckpt.save({"z": [1]}, tmp_path / "c")
    d = tfckpt.save({"z": [2]}, tmp_path / "d")
    with pytest.raises(InvalidArgumentError, match="Duplicate tensor keyed by z"):
        tfckpt.merge_checkpoints([c, d], tmp_path / "dup")


def _worker(prefix: str, rank: int, world: int) -> None:
    tensors = {f"rank{rank}/w": np.full((100, 8), rank, np.float32), f"rank{rank}/step": np.int64(rank)}
    tfckpt.distributed.save_part(tensors, prefix, rank, world)


def test_multiprocess_parts_and_merge(tmp_path: Path) -> None:
    import multiprocessing
    world = 4
    prefix = str(tmp_path / "model-7")
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(prefix, rank, world)) for rank in range(1, world)]
    for process in processes:
        process.start()
    _worker(prefix, 0, world)
    tfckpt.distributed.merge_parts(prefix, world, timeout=120)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    reader = tfckpt.load_checkpoint(prefix)
    assert reader.header.num_shards == world and len(reader) == 2 * world
    for rank in range(world):
        assert reader[f"rank{rank}/w"].mean() == rank
    assert not Path(prefix + "_temp").exists()


def test_merge_parts_times_out_naming_missing_ranks(tmp_path: Path) -> None:
    tfckpt.distributed.save_part({"a": [1]}, tmp_path / "m", 0, 3)
    with pytest.raises(tfckpt.distributed.PartsTimeoutError, match=r"ranks \[1, 2\]"):
        tfckpt.distributed.merge_parts(tmp_path / "m", 3, timeout=0.2)


def test_restoring_one_part_of_a_partitioned_variable_says_how() -> None:
    """TF1 names the parts `part0/part_1` in the graph, but saves one key `part0` with slices."""
    with pytest.raises(tfckpt.NotFoundError) as info:
        tfckpt.Saver({"part0/part_1": np.zeros((3, 4), np.float32)}).restore(FIXTURES / "tf1_partitioned")
    message = str(info.value)
    assert "Key part0/part_1 not found" in message
    assert "'part0' is stored there as a partitioned variable (3 slices of full shape [10, 4], float32; " \
           "part_1 is slice '4,3:0,4')" in message
    assert "restore it whole under the key 'part0'" in message and "read_slice('part0', '4,3:0,4')" in message
    # and what it suggests works
    assert tfckpt.load_checkpoint(FIXTURES / "tf1_partitioned").read_slice("part0", "4,3:0,4").shape == (3, 4)
    with pytest.raises(tfckpt.NotFoundError) as plain:
        tfckpt.Saver({"part0/bias": np.zeros(3, np.float32)}).restore(FIXTURES / "tf1_partitioned")
    assert "stored there as a partitioned" not in str(plain.value)
