"""The read planner (bundle/plan.py) and bulk reads (CheckpointReader.read_arrays): coalesced
fetches, views of shared buffers, every tensor still verified, bounded memory."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tfckpt
from tfckpt.bundle import plan
from tfckpt.bundle.entry import TensorInfo
from tfckpt.bundle.reader import CheckpointReader
from tfckpt.dtypes import as_dtype
from tfckpt.storage import FileSource

F32 = as_dtype("float32")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 5000), st.integers(0, 900)), max_size=60),
       st.integers(0, 600), st.integers(1, 3000))
def test_every_entry_is_in_exactly_one_fetch_within_the_rules(layout: list[tuple[int, int, int]], gap: int,
                                                             limit: int) -> None:
    infos = [TensorInfo(f"t{i}", F32, (size // 4,), shard, offset, size) for i, (shard, offset, size) in enumerate(layout)]
    fetches = plan.plan_fetches(infos, plan.Tuning(gap=gap, limit=limit))
    placed = [info for fetch in fetches for info in fetch.entries]
    assert sorted(map(id, placed)) == sorted(map(id, infos))  # each once
    for fetch in fetches:
        assert all(info.shard_id == fetch.shard_id and fetch.start <= info.offset
                   and info.offset + info.size <= fetch.end for info in fetch.entries)
        assert fetch.size <= limit or len(fetch.entries) == 1  # only a lone large entry exceeds it
        covered = fetch.start
        for info in fetch.entries:  # in offset order, no hole wider than the gap
            assert info.offset - covered <= gap
            covered = max(covered, info.offset + info.size)
    assert [(f.shard_id, f.start) for f in fetches] == sorted((f.shard_id, f.start) for f in fetches)


def test_a_plan_reads_an_entry_listed_twice_once() -> None:
    info = TensorInfo("a", F32, (4,), 0, 0, 16)
    assert [len(f.entries) for f in plan.plan_fetches([info, info], plan.LOCAL)] == [1]


def counting_opener() -> tuple[list[int], type[FileSource]]:
    """A FileSource recording the size of every read of a data file, and that list."""
    reads: list[int] = []

    class Counting(FileSource):
        def readinto_at(self, offset: int, buffer: memoryview) -> None:
            if ".data-" in self.name:
                reads.append(buffer.nbytes)
            super().readinto_at(offset, buffer)

    return reads, Counting


def mixed_tensors() -> dict[str, object]:
    rng = np.random.default_rng(1)
    return {
        "a_int8_odd": np.arange(7, dtype=np.int8),  # leaves the next tensor misaligned
        "b_float64": rng.standard_normal(5),
        "c_scalar": np.float32(2.5),
        "d_empty": np.zeros((0, 3), np.float32),
        "e_strings": np.array([b"", b"x" * 200, b"\x00z"], dtype=object),
        "f_bf16": np.arange(6, dtype=np.float32).reshape(2, 3).astype(tfckpt.as_dtype("bfloat16").as_numpy_dtype),
        "g_complex": np.array([1 + 2j, 3 - 4j], np.complex64),
        "h_bool": np.array([True, False, True]),
        "i_big": rng.standard_normal(3 << 20, dtype=np.float32),  # larger than a local fetch: read alone
        "j_after_big": np.arange(3, dtype=np.int64),
    }


@pytest.mark.parametrize("workers", [1, 4])
def test_bulk_reads_equal_one_by_one_reads(tmp_path: Path, workers: int) -> None:
    prefix = tfckpt.save(mixed_tensors(), tmp_path / "ck")
    with tfckpt.load_checkpoint(prefix) as reader:
        names = [*reader, "b_float64"]  # a name twice is fine
        bulk = list(reader.read_arrays(names, max_workers=workers))
        assert [name for name, _ in bulk] == names
        for name, value in bulk:
            single = reader.read_array(name)
            assert value.dtype == single.dtype and value.shape == single.shape
            if value.dtype == object:
                assert value.tolist() == single.tolist()
            else:
                np.testing.assert_array_equal(value, single)
            assert value.flags.writeable and value.flags.aligned


def test_small_tensors_come_from_few_reads_as_views_of_one_buffer(tmp_path: Path) -> None:
    tensors = {f"t{i:04d}": np.full(16, i, np.float32) for i in range(2000)}
    prefix = tfckpt.save(tensors, tmp_path / "ck")
    reads, opener = counting_opener()
    with CheckpointReader(prefix, opener=opener) as reader:
        values = dict(reader.read_arrays(reader))
    assert len(reads) == 1 and reads[0] == 2000 * 64  # one read of the whole data file
    assert all(values[name].base is not None for name in tensors)  # views, not copies
    for name, value in tensors.items():
        np.testing.assert_array_equal(values[name], value)
    values["t0001"][0] = 7  # writable views of a private buffer; the next read is fresh
    assert tfckpt.load(prefix)["t0001"][0] == 1


@pytest.mark.parametrize("victim", ["t0000", "t0999", "t1999", "names"])
def test_a_damaged_tensor_inside_a_coalesced_read_is_named(tmp_path: Path, victim: str) -> None:
    tensors: dict[str, object] = {f"t{i:04d}": np.full(16, i, np.float32) for i in range(2000)}
    tensors["names"] = np.array([b"abc", b"de"], dtype=object)
    prefix = tfckpt.save(tensors, tmp_path / "ck")
    info = tfckpt.load_checkpoint(prefix).tensor_info(victim)
    data = Path(prefix + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[info.offset + info.size - 1] ^= 0x40
    data.write_bytes(bytes(raw))
    with pytest.raises(tfckpt.ChecksumError, match=f"key '{victim}'.*(checksum|length)"):
        tfckpt.load(prefix)
    assert len(tfckpt.load(prefix, verify_checksums=False)) == 2001  # unverified: still reads


def test_partitioned_tensors_are_read_in_the_same_plan(tmp_path: Path) -> None:
    full = np.arange(1000 * 4, dtype=np.float32).reshape(1000, 4)
    with tfckpt.CheckpointWriter(str(tmp_path / "ck")) as writer:
        for start in range(0, 1000, 10):
            writer.add_slice("emb", full.shape, f"{start},10:-", full[start:start + 10])
        writer.add("other", np.arange(3))
    reads, opener = counting_opener()
    with CheckpointReader(str(tmp_path / "ck"), opener=opener) as reader:
        values = dict(reader.read_arrays(["emb", "other"]))
    np.testing.assert_array_equal(values["emb"], full)
    np.testing.assert_array_equal(values["other"], np.arange(3))
    # The 100 slices: one read. The small plain tensor goes through the record-free bulk path
    # (read_quick), which makes its own read.
    assert sorted(reads) == [24, 16000]


def test_bulk_reads_hold_about_one_batch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    prefix = tfckpt.save({f"t{i:02d}": rng.standard_normal(1 << 18, dtype=np.float32) for i in range(48)},
                         tmp_path / "ck")  # 48 MiB in 1 MiB tensors
    with tfckpt.load_checkpoint(prefix) as reader:
        tracemalloc.start()
        try:
            total = 0.0
            for _, value in reader.read_arrays(reader, batch_bytes=4 << 20):
                total += float(value[0])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 3 * (8 << 20), f"peak {peak / 2**20:.1f} MiB"  # a batch plus one fetch, not 48 MiB


def test_verify_checks_coalesced_entries_one_by_one(tmp_path: Path) -> None:
    """verify reads neighbours together but still reports every damaged tensor, each once,
    with the others counted as checked."""
    tensors = {f"t{i:04d}": np.full(16, i, np.float32) for i in range(2000)}
    prefix = tfckpt.save(tensors, tmp_path / "ck")
    reader = tfckpt.load_checkpoint(prefix)
    victims = ["t0003", "t1000", "t1999"]
    data = Path(prefix + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    for name in victims:
        raw[reader.tensor_info(name).offset] ^= 1
    data.write_bytes(bytes(raw))
    report = tfckpt.verify_checkpoint(prefix)
    assert [p.key for p in report.problems] == victims
    assert all("checksum mismatch" in p.message for p in report.problems)
    assert report.tensors_checked == 2000 and report.bytes_checked == (2000 - 3) * 64


def test_nested_views_read_through_one_plan(tmp_path: Path) -> None:
    """``nested()`` builds the tree first and reads every leaf in one plan, for object-based
    checkpoints (a variable reachable twice read once) and name-based ones."""
    weights = {f"layer_{i:03d}": {"kernel": np.full((4, 4), i, np.float32), "bias": np.full(4, i, np.float32)}
               for i in range(300)}
    path = tfckpt.Checkpoint(model=weights, alias=weights["layer_007"]).save(str(tmp_path / "obj" / "ckpt"))
    name_based = tfckpt.save({f"net/{name}/{part}": value for name, parts in weights.items()
                              for part, value in parts.items()}, tmp_path / "names" / "ck")
    for prefix, root in ((path, "model"), (name_based, "net")):
        reads, opener = counting_opener()
        with CheckpointReader(prefix, opener=opener) as reader:
            tree = reader.nested(save_counter=False)
        assert len(reads) == 1, reads  # not 600 reads
        assert sorted(tree[root]) == sorted(weights)
        for name, parts in weights.items():
            for part, value in parts.items():
                np.testing.assert_array_equal(tree[root][name][part], value)
    assert sorted(tree["net"]["layer_007"]) == ["bias", "kernel"]


def test_small_tensors_are_read_without_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``load`` of 3,000 small tensors decodes no per-tensor record (the entries are decoded
    with numpy), reads the data file once, and still verifies every checksum: a flipped byte
    in any one of them is named. Tensors after a string (odd offsets) come back as aligned
    copies, scalars as 0-d arrays, every dtype exactly."""
    rng = np.random.default_rng(5)
    tensors: dict[str, object] = {f"t/{i:04d}": rng.standard_normal(i % 7 + 1).astype(np.float32) for i in range(3000)}
    tensors.update({"a/text": np.array([b"odd", b"length"], dtype=object), "b/after_text": np.arange(5, dtype=np.int64),
                    "b/scalar": np.float64(2.5), "b/bool": np.array([True, False]), "b/c64": np.array([1 + 2j], np.complex64),
                    "b/bf16": np.array([1.5], dtype=tfckpt.as_dtype("bfloat16").as_numpy_dtype),
                    "b/empty": np.zeros((0, 3), np.float32)})
    prefix = str(tmp_path / "ck")
    tfckpt.save(tensors, prefix)
    decoded: list[str] = []
    original = TensorInfo.decode.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(TensorInfo, "decode", classmethod(lambda cls, name, value, where: (decoded.append(name),
                                                                                           original(cls, name, value, where))[1]))
    reads, opener = counting_opener()
    with CheckpointReader(prefix, opener=opener) as reader:
        loaded = dict(reader.read_arrays(reader))
    assert decoded == ["a/text"]  # the string goes through its record; nothing else does
    assert len(reads) == 1 and reads[0] > 3000 * 4  # one read for all 3,006 small tensors
    assert list(loaded) == sorted(tensors)
    for name, value in tensors.items():
        got, want = loaded[name], np.asarray(value)
        assert got.dtype == want.dtype and got.shape == want.shape and got.flags.aligned, name
        np.testing.assert_array_equal(got, want)
    data = next(tmp_path.glob("ck.data-*"))
    info = tfckpt.load_checkpoint(prefix).tensor_info("t/1234")
    raw = bytearray(data.read_bytes())
    raw[info.offset + 2] ^= 0x10
    data.write_bytes(bytes(raw))
    with pytest.raises(tfckpt.ChecksumError, match=r"key 't/1234'.*checksum mismatch.*file offset"):
        tfckpt.load(prefix)
    assert not np.array_equal(tfckpt.load(prefix, verify_checksums=False)["t/1234"], tensors["t/1234"])
