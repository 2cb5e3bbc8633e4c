"""Hostile and broken input: the committed corpus, random mutations, bounded allocation.

Every malformed input must end in a tfckpt error (with file/key/offset in the message); never
a crash, a hang, a huge allocation, or a raw IndexError/struct.error/DecodeError/...
"""

from __future__ import annotations

import json
import shutil
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfckpt
from tfckpt.bundle.graph import ObjectGraph, ObjectReference, SerializedTensor, TrackableObject
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.errors import TfckptError

CORPUS = Path(__file__).parent / "corpus"


def read_everything(path: str | Path) -> int:
    """Open, list, read and verify every tensor; return the number read."""
    count = 0
    with tfckpt.load_checkpoint(path) as reader:
        reader.get_variable_to_shape_map()
        reader.get_variable_to_dtype_map()
        reader.debug_string()
        for info in reader.infos():
            try:
                reader[info.name]
            except tfckpt.UnsupportedError:
                pass  # variant/resource values: listed, never decoded
            count += 1
        if reader.object_graph is not None:
            reader.nested()
    return count


def source_checkpoint(directory: Path) -> str:
    """A small checkpoint with most format features: strings, slices, scalars, empty tensors,
    several index blocks' worth of keys in a tiny table, an object graph."""
    prefix = str(directory / "ck")
    with tfckpt.CheckpointWriter(prefix) as writer:
        writer.add("a/float", np.arange(12, dtype=np.float32).reshape(3, 4))
        writer.add("b/strings", np.array([b"", b"hello", b"x" * 200], dtype=object))
        writer.add("c/scalar", np.int64(7))
        writer.add("d/empty", np.zeros((0, 3), np.float16))
        writer.add("e/bf16", np.ones(5, np.float32), dtype="bfloat16")
        writer.add_slice("f/part", (4, 2), "0,2:-", np.zeros((2, 2)))
        writer.add_slice("f/part", (4, 2), "2,2:-", np.ones((2, 2)))
        graph = ObjectGraph((
            TrackableObject(children=(ObjectReference(1, "a"),), has_checkpoint_values=True),
            TrackableObject(attributes=(SerializedTensor("VARIABLE_VALUE", "", "a/float"),),
                            has_checkpoint_values=True)))
        writer.add("_CHECKPOINTABLE_OBJECT_GRAPH", np.array(graph.encode(), dtype=object))
    return prefix


MUTATIONS = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("set"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 16)),
)


def mutate(data: bytes, operations: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, position, value in operations:
        if not out:
            break
        at = position % len(out)
        if kind == "flip":
            out[at] ^= value
        elif kind == "set":
            out[at] = value
        elif kind == "truncate":
            del out[at:]
        elif kind == "insert":
            out[at:at] = bytes([value])
        else:
            del out[at:at + value]
    return bytes(out)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    prefix = source_checkpoint(tmp_path_factory.mktemp("pristine"))
    return {"index": Path(index_filename(prefix)).read_bytes(),
            "data": Path(data_filename(prefix, 0, 1)).read_bytes(), "prefix": prefix.encode()}


def _attempt(directory: Path, index: bytes, data: bytes, pristine: dict[str, bytes] | None = None) -> str:
    """Read and verify a (damaged) checkpoint; return ``ok``, ``reported`` (verify found it) or
    the error class. With ``pristine``, an ``ok`` must read exactly the pristine values."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    prefix = str(directory / "ck")
    Path(index_filename(prefix)).write_bytes(index)
    Path(data_filename(prefix, 0, 1)).write_bytes(data)
    try:
        read_everything(prefix)
        report = tfckpt.verify.verify_checkpoint(prefix)
    except TfckptError as exc:
        assert str(exc), "errors must say what went wrong"
        return type(exc).__name__
    if report.ok and pristine is not None:
        assert_same_values(prefix, pristine)
    return "ok" if report.ok else "reported"


def assert_same_values(prefix: str, pristine: dict[str, bytes]) -> None:
    """An undetected change must not change anything a reader gets."""
    original = pristine["prefix"].decode()
    got, want = tfckpt.load(prefix), tfckpt.load(original)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape, name
        assert got[name].tobytes() == want[name].tobytes() if want[name].dtype != object else \
            got[name].tolist() == want[name].tolist(), name


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(["index", "data"]), operations=st.lists(MUTATIONS, min_size=1, max_size=4))
def test_random_mutations_end_in_tfckpt_errors(tmp_path: Path, pristine: dict[str, bytes], target: str,
                                                operations: list[tuple[str, int, int]]) -> None:
    files = dict(pristine)
    files[target] = mutate(files[target], operations)
    outcome = _attempt(tmp_path / "m", files["index"], files["data"], pristine)
    if target == "data" and files["data"] != pristine["data"]:
        # Every data byte belongs to a checksummed tensor, and bytes past the last tensor are
        # reported: no change to the data file may pass.
        assert outcome != "ok", operations


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.binary(max_size=400))
def test_arbitrary_index_bytes(tmp_path: Path, index: bytes) -> None:
    _attempt(tmp_path / "r", index, b"")


def test_every_truncation_and_byte_flip_of_the_index(tmp_path: Path, pristine: dict[str, bytes]) -> None:
    index, data = pristine["index"], pristine["data"]
    outcomes: dict[str, int] = {}
    for cut in range(len(index)):
        outcome = _attempt(tmp_path / "t", index[:cut], data, pristine)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    for position in range(len(index)):
        broken = bytearray(index)
        broken[position] ^= 0xFF
        outcome = _attempt(tmp_path / "f", bytes(broken), data, pristine)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("ok", 0) < len(index) // 4, outcomes  # the footer padding is all that may pass


def test_every_data_byte_flip_is_caught(tmp_path: Path, pristine: dict[str, bytes]) -> None:
    index, data = pristine["index"], pristine["data"]
    for position in range(len(data)):
        broken = bytearray(data)
        broken[position] ^= 0x01
        assert _attempt(tmp_path / "d", index, bytes(broken)) != "ok", position


# ---- the committed corpus ------------------------------------------------------------------

def corpus_cases() -> list[dict[str, Any]]:
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    return list(manifest["cases"])


@pytest.mark.parametrize("case", corpus_cases(), ids=lambda case: case["name"])
def test_corpus(case: dict[str, Any]) -> None:
    prefix = CORPUS / case["name"] / "ck"
    expected = case["expect"]
    if expected == "ok":
        assert read_everything(prefix) == case["tensors"]
        return
    with pytest.raises(TfckptError) as info:
        read_everything(prefix)
    assert type(info.value).__name__ == expected, str(info.value)
    for fragment in case.get("message", []):
        assert fragment in str(info.value)


@pytest.mark.parametrize("case", corpus_cases(), ids=lambda case: case["name"])
def test_no_read_allocates_more_than_the_bytes_present(case: dict[str, Any]) -> None:
    """Reading (and verifying) each case allocates at most twice its data bytes, a fixed factor
    of its index bytes (Python records per entry) and a small constant, whatever its index
    claims (e.g. a 2**40-element partitioned tensor)."""
    directory = CORPUS / case["name"]
    index = sum(p.stat().st_size for p in directory.iterdir() if p.name.endswith(".index"))
    data = sum(p.stat().st_size for p in directory.iterdir() if not p.name.endswith(".index"))
    present = 2 * data + 64 * index
    tracemalloc.start()
    try:
        try:
            read_everything(directory / "ck")
        except TfckptError:
            pass
        tfckpt.verify_checkpoint(directory / "ck")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < present + (4 << 20), f"peak {peak} bytes for {index} index and {data} data bytes on disk"


@pytest.mark.parametrize(("dtype", "shape", "size"), [
    ("complex128", (1 << 61,), 8),      # its byte size needs 67 bits
    ("float32", (1 << 40, 1 << 20), 4),  # 2^60 elements: 2^62 bytes
    ("float32", (4,), 1 << 16),          # a small shape whose stored size is too large
    ("int8", (1 << 16,), 1 << 16),       # at the bulk path's limit, but the bytes are not there
])
def test_bulk_reads_of_hostile_small_entries_are_tfckpt_errors(tmp_path: Path, dtype: str, shape: tuple[int, ...],
                                                                 size: int) -> None:
    """Entries the record-free bulk path (read_quick) screens with numpy: an absurd shape, a
    size that disagrees with it, bytes that are not in the data file. Each ends in a tfckpt
    error naming the index and the key, never an OverflowError or a huge allocation."""
    from tfckpt.bundle.entry import BundleHeader, TensorInfo
    from tfckpt.bundle.writer import write_index
    prefix = tmp_path / "ck"
    tfckpt.save({"a": np.ones(2, np.float32), "b": np.ones(3, np.float32)}, prefix)
    entries = [TensorInfo.of_data("a", tfckpt.as_dtype(dtype), shape, 0, 0, size, 0),
               TensorInfo.of_data("b", tfckpt.as_dtype("float32"), (3,), 0, 8, 12, 0)]
    with open(index_filename(str(prefix)), "wb") as out:
        write_index(out, BundleHeader(), entries)
    tracemalloc.start()
    try:
        with pytest.raises(tfckpt.CorruptionError, match=r"ck\.index: key 'a'"):
            tfckpt.load(prefix, verify_checksums=False)
        assert tracemalloc.get_traced_memory()[1] < 16 << 20
    finally:
        tracemalloc.stop()
