import os
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from conftest import FIXTURES
from fixtures.values import NUMERIC_DTYPES, _sample
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tfckpt
from tfckpt.bundle import payload
from tfckpt.bundle.entry import BundleHeader, TensorInfo
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.writer import BundleWriter, write_index
from tfckpt.dtypes import BY_NAME
from tfckpt.errors import (
    ChecksumError,
    CorruptionError,
    InvalidArgumentError,
    NotFoundError,
    TfckptError,
    UnsupportedError,
)

SHAPES = [(), (0,), (1,), (5,), (2, 3), (3, 0, 2), (1, 1, 1, 1, 1, 1, 1, 2)]


def assert_same(actual: Any, expected: np.ndarray) -> None:
    """Same shape, dtype and values; ``actual`` may be a scalar as get_tensor returns them."""
    actual = np.array(actual, dtype=object) if isinstance(actual, bytes) else np.asarray(actual)
    assert actual.shape == expected.shape
    if expected.dtype == object:
        assert actual.dtype == object
        assert actual.tolist() == expected.tolist()
    else:
        assert actual.dtype == expected.dtype
        assert actual.tobytes() == np.ascontiguousarray(expected).tobytes()


@pytest.mark.parametrize(("tf_name", "np_dtype"), NUMERIC_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_round_trip_every_dtype_and_shape(tmp_path: Path, tf_name: str, np_dtype: object, shape: tuple) -> None:
    value = _sample(np_dtype, shape)
    prefix = tfckpt.save({"x": value}, tmp_path / "ck")
    reader = tfckpt.load_checkpoint(prefix)
    # Quantized types have no numpy dtype of their own: ask for them explicitly.
    if BY_NAME[tf_name].is_quantized:
        prefix = str(tmp_path / "q")
        with BundleWriter(prefix) as writer:
            writer.add("x", value, dtype=tf_name)
        reader = tfckpt.load_checkpoint(prefix)
    assert reader.get_variable_to_dtype_map()["x"].name == tf_name
    assert reader.get_variable_to_shape_map() == {"x": list(shape)}
    assert_same(reader["x"], value)


def _object_array(items: list, shape: tuple) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(shape)


@pytest.mark.parametrize("value", [
    _object_array([b"hello"], ()),
    _object_array([], (0,)),
    _object_array([], (2, 0)),
    _object_array([b"", b"\x00\xff", b"x" * 300, b"y" * 70000], (2, 2)),
])
def test_round_trip_strings(tmp_path: Path, value: np.ndarray) -> None:
    prefix = tfckpt.save({"s": value}, tmp_path / "ck")
    assert_same(tfckpt.load(prefix)["s"], value)


def test_str_values_are_saved_as_utf8(tmp_path: Path) -> None:
    prefix = tfckpt.save({"u": ["h\u00e9", "\u2603"], "n": np.array(["ab", "c"])}, tmp_path / "ck")
    loaded = tfckpt.load(prefix)
    assert loaded["u"].tolist() == ["h\u00e9".encode(), "\u2603".encode()]
    assert loaded["n"].tolist() == [b"ab", b"c"]


def test_zero_element_string_payload_matches_tf_layout(tmp_path: Path) -> None:
    # Reference: an empty string tensor is the 4 bytes mask(0), entry crc 0x640cc1f6.
    prefix = tfckpt.save({"e": _object_array([], (0,))}, tmp_path / "ck")
    info = tfckpt.load_checkpoint(prefix).tensor_info("e")
    assert (info.size, info.masked_crc32c) == (4, 0x640CC1F6)
    assert Path(data_filename(prefix, 0, 1)).read_bytes() == bytes.fromhex("d8ea82a2")


@pytest.mark.parametrize("make", [
    lambda a: np.asfortranarray(a),
    lambda a: a[:, ::2],
    lambda a: a.T,
    lambda a: a.astype(a.dtype.newbyteorder(">")),
    lambda a: a[::-1, 1:],
])
def test_any_memory_layout_saves_row_major_little_endian(tmp_path: Path, make: object) -> None:
    base = np.arange(48, dtype=np.float64).reshape(6, 8)
    value = make(base)  # type: ignore[operator]
    prefix = tfckpt.save({"v": value}, tmp_path / "ck")
    loaded = tfckpt.load(prefix)["v"]
    assert loaded.dtype == np.dtype("<f8")
    np.testing.assert_array_equal(loaded, value)


def test_chunked_writes_match_direct_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value = np.arange(10_000, dtype=np.int32).reshape(100, 100)[:, ::3]
    direct = tfckpt.save({"v": np.ascontiguousarray(value)}, tmp_path / "a")
    monkeypatch.setattr(payload, "WRITE_CHUNK_BYTES", 64)
    chunked = tfckpt.save({"v": value}, tmp_path / "b")
    for suffix in (".index", ".data-00000-of-00001"):
        assert Path(direct + suffix).read_bytes() == Path(chunked + suffix).read_bytes()


def test_dtype_override_casts_values(tmp_path: Path) -> None:
    with BundleWriter(str(tmp_path / "ck")) as writer:
        writer.add("b", np.array([1.0, 2.5], np.float32), dtype="bfloat16")
    value = tfckpt.load(tmp_path / "ck")["b"]
    assert value.dtype == ml_dtypes.bfloat16
    assert value.astype(np.float32).tolist() == [1.0, 2.5]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(
    st.text(min_size=1, max_size=20).filter(lambda s: not s.startswith("\x00")),
    hnp.arrays(st.sampled_from([np.float32, np.int64, np.uint8, np.bool_, np.complex128, np.float16]),
               hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)),
    max_size=8))
def test_property_round_trip(tmp_path_factory: pytest.TempPathFactory, tensors: dict) -> None:
    prefix = tfckpt.save(tensors, tmp_path_factory.mktemp("p") / "ck")
    loaded = tfckpt.load(prefix)
    assert sorted(loaded) == sorted(tensors)
    for name, value in tensors.items():
        assert_same(loaded[name], value)


# ---- refusals, before anything is written --------------------------------------------------

@pytest.mark.parametrize(("tensors", "message"), [
    ({"": [1]}, "non-empty"),
    ({"ok": [1], "bad": np.array([object(), 1], dtype=object)}, "only bytes or str"),
    ({"ok": [1], "bad": np.array([1, 2], dtype="datetime64[s]")}, "no TensorFlow equivalent"),
    ({"ok": [1], "bad": np.zeros(2, dtype=[("a", "i4")])}, "cannot save|no TensorFlow"),
    ({"\x00slice": [1]}, "NUL"),
])
def test_bad_input_is_refused_before_writing(tmp_path: Path, tensors: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        tfckpt.save(tensors, tmp_path / "ck")
    assert list(tmp_path.iterdir()) == []


def test_duplicate_key_in_streaming_writer(tmp_path: Path) -> None:
    writer = BundleWriter(str(tmp_path / "ck"))
    writer.add("a", [1])
    with pytest.raises(InvalidArgumentError, match="duplicate key: a"):
        writer.add("a", [2])
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_add_many_writes_what_add_writes_and_refuses_duplicates(tmp_path: Path) -> None:
    """The batched path (small tensors in runs) gives the same files as one add() per tensor,
    mixed with tensors it leaves to add() (a string, a large array, a cast); a duplicate name,
    within a run or against an earlier tensor, is refused with nothing published."""
    from tfckpt.bundle.writer import prepare
    rng = np.random.default_rng(3)
    items = [(f"s{i:03d}", rng.standard_normal(i % 5 + 1).astype(np.float32)) for i in range(200)]
    items[50:50] = [("text", np.array([b"x"], dtype=object)), ("big", np.ones(1 << 19, np.float32)),
                    ("swapped", np.arange(4, dtype=">i4")), ("scalar", np.int64(7))]
    with BundleWriter(str(tmp_path / "one"), sync=False) as one:
        for name, value in items:
            one.add(name, value)
    with BundleWriter(str(tmp_path / "many"), sync=False) as many:
        many.add_many([prepare(name, value) for name, value in items])
    for suffix in (".index", ".data-00000-of-00001"):
        assert (tmp_path / f"one{suffix}").read_bytes() == (tmp_path / f"many{suffix}").read_bytes()
    for duplicated in ([("a", np.ones(2)), ("b", np.ones(2)), ("a", np.ones(3))],
                       [("a", np.ones(2)), ("t", np.array([b"x"], dtype=object)), ("a", np.ones(3))]):
        writer = BundleWriter(str(tmp_path / "dup" / "ck"))
        with pytest.raises(InvalidArgumentError, match="duplicate key: a"):
            writer.add_many([prepare(name, value) for name, value in duplicated])
        writer.abort()
        assert not (tmp_path / "dup").exists() or list((tmp_path / "dup").iterdir()) == []


def test_prepare_remembers_dtypes_not_names(tmp_path: Path) -> None:
    """prepare()'s shortcut for dtypes it has accepted still refuses bad names."""
    from tfckpt.bundle.writer import prepare
    assert prepare("ok", np.ones(2, np.float32))[2].name == "float32"
    for bad in ("", "\0slice", 5):
        with pytest.raises(InvalidArgumentError):
            prepare(bad, np.ones(2, np.float32))


# ---- atomic publication --------------------------------------------------------------------

def test_exception_mid_save_leaves_previous_checkpoint_intact(tmp_path: Path) -> None:
    prefix = tfckpt.save({"v": np.arange(3)}, tmp_path / "ck")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(RuntimeError), BundleWriter(prefix) as writer:
        writer.add("v", np.arange(100))
        raise RuntimeError("crash in the middle of a save")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    np.testing.assert_array_equal(tfckpt.load(prefix)["v"], np.arange(3))


def test_temporaries_until_finish(tmp_path: Path) -> None:
    writer = BundleWriter(str(tmp_path / "ck"))
    writer.add("v", np.ones(4))
    names = [p.name for p in tmp_path.iterdir()]
    assert len(names) == 1 and ".tempstate" in names[0]
    writer.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.data-00000-of-00001", "ck.index"]


def test_overwrite_replaces_consistently(tmp_path: Path) -> None:
    prefix = tfckpt.save({"v": np.arange(3)}, tmp_path / "ck")
    tfckpt.save({"w": np.arange(5.0)}, prefix)
    assert list(tfckpt.load(prefix)) == ["w"]


# ---- reading damaged bundles ---------------------------------------------------------------

def _saved(tmp_path: Path) -> str:
    return tfckpt.save({"a": np.arange(16, dtype=np.float32), "s": np.array([b"xy", b"z"])}, tmp_path / "ck")


def test_flipped_data_byte_raises_checksum_error_with_details(tmp_path: Path) -> None:
    prefix = _saved(tmp_path)
    data = Path(data_filename(prefix, 0, 1))
    raw = bytearray(data.read_bytes())
    raw[5] ^= 0x10
    data.write_bytes(bytes(raw))
    reader = tfckpt.load_checkpoint(prefix)
    with pytest.raises(ChecksumError) as info:
        reader["a"]
    message = str(info.value)
    assert "'a'" in message and data.name in message and "stored" in message and "computed" in message
    assert reader["s"].tolist() == [b"xy", b"z"]  # other tensors still readable
    unchecked = tfckpt.load_checkpoint(prefix, verify_checksums=False)
    assert unchecked["a"][1] != 1.0  # opt-out returns the damaged bytes


def test_flipped_string_length_checksum(tmp_path: Path) -> None:
    prefix = _saved(tmp_path)
    info = tfckpt.load_checkpoint(prefix).tensor_info("s")
    data = Path(data_filename(prefix, 0, 1))
    raw = bytearray(data.read_bytes())
    raw[info.offset + 2] ^= 0x01  # first byte of the length checksum (after 2 varints)
    data.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="length checksum"):
        tfckpt.load_checkpoint(prefix)["s"]


def test_truncated_data_file(tmp_path: Path) -> None:
    prefix = _saved(tmp_path)
    data = Path(data_filename(prefix, 0, 1))
    data.write_bytes(data.read_bytes()[:10])
    with pytest.raises(CorruptionError, match="past the end of the data file"):
        tfckpt.load_checkpoint(prefix)["a"]


def test_missing_data_file(tmp_path: Path) -> None:
    prefix = _saved(tmp_path)
    os.remove(data_filename(prefix, 0, 1))
    reader = tfckpt.load_checkpoint(prefix)  # opening needs the index only
    assert sorted(reader) == ["a", "s"]
    with pytest.raises(NotFoundError, match="data-00000-of-00001"):
        reader["a"]


def test_missing_key_is_a_key_error(tmp_path: Path) -> None:
    reader = tfckpt.load_checkpoint(_saved(tmp_path))
    with pytest.raises(KeyError, match="nope"):
        reader["nope"]
    assert "nope" not in reader and reader.get("nope") is None


def _write_raw_index(prefix: str, header: BundleHeader, entries: list[TensorInfo]) -> None:
    with open(index_filename(prefix), "wb") as sink:
        write_index(sink, header, entries)


def test_size_inconsistent_with_shape(tmp_path: Path) -> None:
    prefix = str(tmp_path / "ck")
    Path(data_filename(prefix, 0, 1)).write_bytes(bytes(64))
    _write_raw_index(prefix, BundleHeader(), [TensorInfo("x", BY_NAME["float32"], (4,), size=12)])
    with pytest.raises(CorruptionError, match="stored size 12; expected 16"):
        tfckpt.load_checkpoint(prefix)["x"]


def test_huge_shape_never_allocates(tmp_path: Path) -> None:
    prefix = str(tmp_path / "ck")
    Path(data_filename(prefix, 0, 1)).write_bytes(bytes(8))
    _write_raw_index(prefix, BundleHeader(), [
        TensorInfo("big", BY_NAME["float32"], (2**31, 2**20), size=8),
        TensorInfo("strs", BY_NAME["string"], (2**40,), size=8)])
    reader = tfckpt.load_checkpoint(prefix)
    assert reader.get_variable_to_shape_map()["big"] == [2**31, 2**20]
    with pytest.raises(CorruptionError, match="stored size 8"):
        reader["big"]
    with pytest.raises(CorruptionError, match="at least"):
        reader["strs"]


def test_shard_id_beyond_header_is_rejected(tmp_path: Path) -> None:
    prefix = str(tmp_path / "ck")
    _write_raw_index(prefix, BundleHeader(num_shards=1), [TensorInfo("x", BY_NAME["int8"], (1,), shard_id=3, size=1)])
    reader = tfckpt.load_checkpoint(prefix)  # entries are decoded on use; listing needs no shard
    assert reader.get_variable_to_shape_map() == {"x": [1]}
    with pytest.raises(CorruptionError, match="shard 3"):
        reader["x"]
    with pytest.raises(CorruptionError, match="shard 3"):
        reader.infos()


def test_missing_header_is_rejected(tmp_path: Path) -> None:
    from tfckpt.table import TableBuilder
    prefix = str(tmp_path / "ck")
    with open(index_filename(prefix), "wb") as sink:
        table = TableBuilder(sink)
        table.add(b"x", TensorInfo("x", BY_NAME["int8"], (1,), size=1).encode())
        table.finish()
    with pytest.raises(CorruptionError, match="missing bundle header"):
        tfckpt.load_checkpoint(prefix)


def test_newer_format_version_is_unsupported(tmp_path: Path) -> None:
    prefix = str(tmp_path / "ck")
    _write_raw_index(prefix, BundleHeader(min_consumer=7), [])
    with pytest.raises(UnsupportedError, match="min_consumer 7"):
        tfckpt.load_checkpoint(prefix)


def test_unknown_dtype_enum(tmp_path: Path) -> None:
    from tfckpt._proto import tensor_bundle_pb2
    from tfckpt.table import TableBuilder
    prefix = str(tmp_path / "ck")
    entry = tensor_bundle_pb2.BundleEntryProto(dtype=99)
    with open(index_filename(prefix), "wb") as sink:
        table = TableBuilder(sink)
        table.add(b"", BundleHeader().encode())
        table.add(b"x", entry.SerializeToString())
        table.finish()
    with pytest.raises(UnsupportedError, match="unknown DataType enum value 99"):
        tfckpt.list_variables(prefix)


def test_garbage_entry_is_corruption(tmp_path: Path) -> None:
    from tfckpt.table import TableBuilder
    prefix = str(tmp_path / "ck")
    with open(index_filename(prefix), "wb") as sink:
        table = TableBuilder(sink)
        table.add(b"", BundleHeader().encode())
        table.add(b"x", b"\xff\xff\xff")
        table.finish()
    with pytest.raises(CorruptionError, match="'x' not parseable"):
        tfckpt.list_variables(prefix)


def test_negative_dimension(tmp_path: Path) -> None:
    prefix = str(tmp_path / "ck")
    _write_raw_index(prefix, BundleHeader(), [TensorInfo("x", BY_NAME["int8"], (-1, 2))])
    with pytest.raises(CorruptionError, match="negative dimension"):
        tfckpt.list_variables(prefix)


def test_resource_and_variant_are_listed_but_not_read(tmp_path: Path) -> None:
    prefix = str(tmp_path / "ck")
    Path(data_filename(prefix, 0, 1)).write_bytes(bytes(8))
    _write_raw_index(prefix, BundleHeader(), [TensorInfo("h", BY_NAME["resource"], (2,), size=8),
                                              TensorInfo("v", BY_NAME["variant"], (), size=8)])
    reader = tfckpt.load_checkpoint(prefix)
    assert {k: d.name for k, d in reader.get_variable_to_dtype_map().items()} == {"h": "resource", "v": "variant"}
    for key in ("h", "v"):
        with pytest.raises(UnsupportedError, match=f"'{key}'"):
            reader[key]


def test_big_endian_bundle_is_byte_swapped(tmp_path: Path) -> None:
    # Build what a big-endian host would write: BIG header, big-endian payloads and string CRC.
    from tfckpt.coding import FIXED32, crc32c, encode_varint, mask
    prefix = str(tmp_path / "ck")
    values = {"f": np.array([1.5, -2.0], ">f4"), "c": np.array([1 + 2j], ">c8"), "b": np.array([3], ">i8")}
    blob, infos = bytearray(), []
    for name, value in values.items():
        raw = value.tobytes()
        infos.append(TensorInfo(name, tfckpt.as_dtype(value.dtype), value.shape, 0, len(blob), len(raw), mask(crc32c(raw))))
        blob += raw
    bodies = [b"ab", b"cde"]
    length_crc = crc32c(np.array([2, 3], ">u4").tobytes())
    stored = FIXED32.pack(mask(length_crc))
    crc = crc32c(b"cde", crc32c(b"ab", crc32c(stored, length_crc)))
    raw = encode_varint(2) + encode_varint(3) + stored + b"abcde"
    infos.append(TensorInfo("s", BY_NAME["string"], (2,), 0, len(blob), len(raw), mask(crc)))
    blob += raw
    Path(data_filename(prefix, 0, 1)).write_bytes(bytes(blob))
    _write_raw_index(prefix, BundleHeader(endianness="big"), infos)
    loaded = tfckpt.load(prefix)
    for name, value in values.items():
        np.testing.assert_array_equal(loaded[name], value)
        assert loaded[name].dtype.byteorder in "<=|"
    assert loaded["s"].tolist() == bodies


def test_consistent_but_absent_size_never_allocates(tmp_path: Path) -> None:
    prefix = str(tmp_path / "ck")
    Path(data_filename(prefix, 0, 1)).write_bytes(bytes(8))
    _write_raw_index(prefix, BundleHeader(), [TensorInfo("x", BY_NAME["float64"], (2**40,), size=2**43)])
    with pytest.raises(CorruptionError, match="run past the end"):
        tfckpt.load_checkpoint(prefix)["x"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(BY_NAME)), st.lists(st.integers(0, 2**40), max_size=6))
def test_fast_listing_path_agrees_with_the_full_decoder(dtype_name: str, shape: list[int]) -> None:
    from tfckpt.bundle.entry import peek_dtype_shape
    info = TensorInfo("x", BY_NAME[dtype_name], tuple(shape), 0, 123, 456, 789)
    encoded = info.encode()
    peeked = peek_dtype_shape(encoded)
    try:
        decoded = TensorInfo.decode("x", encoded, "t")
    except CorruptionError:
        assert peeked is None  # invalid shapes (overflow) must go to the full decoder's error
        return
    assert peeked is None or peeked == (decoded.dtype.as_datatype_enum, decoded.shape)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40))
def test_fast_listing_path_never_guesses_on_garbage(data: bytes) -> None:
    from tfckpt.bundle.entry import peek_dtype_shape
    peeked = peek_dtype_shape(data)
    if peeked is None:
        return
    try:
        decoded = TensorInfo.decode("x", data, "t")
    except TfckptError:
        return  # the fast path saw a plain shape in bytes protobuf rejects: the reader decodes on use
    assert peeked == (decoded.dtype.as_datatype_enum, decoded.shape)


VARINT_EDGES = [0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**28, 2**35, 2**63 - 1]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(n for n in BY_NAME if not BY_NAME[n].is_ref)),
       st.lists(st.integers(0, 2**15), max_size=4),  # element counts within int64
       st.one_of(st.sampled_from([0, 1, 127, 128, 2**31 - 1]), st.integers(0, 2**31 - 1)),
       st.one_of(st.sampled_from(VARINT_EDGES), st.integers(0, 2**63 - 1)),
       st.one_of(st.sampled_from(VARINT_EDGES), st.integers(0, 2**63 - 1)),
       st.integers(0, 2**32 - 1))
def test_hand_coded_entries_are_protobufs_bytes_both_ways(dtype_name: str, shape: list[int], shard: int, offset: int,
                                                         size: int, crc: int) -> None:
    from tfckpt._proto import tensor_bundle_pb2
    info = TensorInfo("x", BY_NAME[dtype_name], tuple(shape), shard, offset, size, crc)
    proto = tensor_bundle_pb2.BundleEntryProto(dtype=BY_NAME[dtype_name].as_datatype_enum, shard_id=shard,
                                               offset=offset, size=size, crc32c=crc)
    proto.shape.SetInParent()
    for dim in shape:
        proto.shape.dim.add(size=dim)
    assert info.encode() == proto.SerializeToString()  # byte identity with protobuf (and so TF)
    decoded = TensorInfo.decode("x", info.encode(), "t")
    assert decoded == info and type(decoded.shape) is tuple


@settings(max_examples=800, deadline=None)
@given(st.binary(max_size=24))
def test_hand_decoder_agrees_with_protobuf_on_any_tail(tail: bytes) -> None:
    """A valid head followed by arbitrary bytes: whenever both decoders accept, they agree."""
    from google.protobuf.message import DecodeError

    from tfckpt._proto import tensor_bundle_pb2
    data = TensorInfo("x", BY_NAME["float32"], (3,)).encode() + tail
    try:
        ours = TensorInfo.decode("x", data, "t")
    except TfckptError:
        return
    try:
        proto = tensor_bundle_pb2.BundleEntryProto.FromString(data)
    except DecodeError:
        pytest.fail(f"tfckpt accepted an entry protobuf rejects: {data!r}")
    assert (ours.dtype.as_datatype_enum, ours.shape, ours.shard_id, ours.offset, ours.size, ours.masked_crc32c) == (
        proto.dtype, tuple(d.size for d in proto.shape.dim), proto.shard_id, proto.offset, proto.size, proto.crc32c)


@pytest.mark.parametrize("fixture", ["tf2_module", "many_keys", "tf1_sharded"])
def test_the_header_is_found_without_parsing_its_block(fixture: str) -> None:
    """``first_value`` (used when re-pointing) on indexes TensorFlow wrote equals the first
    entry a full parse finds; on damaged tables it declines rather than guessing."""
    from tfckpt.storage import FileSource
    from tfckpt.table import TableReader, first_value, replace_first_value
    index = next((FIXTURES / fixture).glob("*.index"))
    data = index.read_bytes()
    source = FileSource(index)
    try:
        key, value = next(iter(TableReader(source)))
    finally:
        source.close()
    assert key == b"" and first_value(data) == value
    assert BundleHeader.decode(value, "t").num_shards >= 1
    for broken in (b"", data[:-1], b"\x00" * 100, data[:-48] + b"\xff" * 48):
        assert first_value(broken) is None
    # A damaged first block (a byte flipped after the header entry): neither read nor patched,
    # since re-checksumming it would make the damage pass for data.
    damaged = bytearray(data)
    damaged[len(value) + 8] ^= 0x40
    assert first_value(bytes(damaged)) is None
    assert replace_first_value(bytes(damaged), value) is None
    assert replace_first_value(data, value) == data


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=12), st.text(max_size=8).map(lambda t: t.encode("utf-8"))),
                max_size=20))
def test_names_from_key_texts_are_each_keys_own_decoding(keys: list[bytes]) -> None:
    """The listing's names (keys held as latin-1 texts, decoded in one go) are each key's own
    decode_key: ASCII, UTF-8 names, invalid bytes (surrogate-escaped one by one) and keys
    holding newlines alike."""
    from tfckpt.bundle.slices import decode_key, decode_key_texts
    texts = [key.decode("latin-1") for key in keys]
    assert decode_key_texts(texts) == [decode_key(key) for key in keys]
    assert decode_key_texts(texts + ["\n"]) == [decode_key(key) for key in keys] + ["\n"]


def test_large_tensors_are_written_from_their_own_memory(tmp_path: Path) -> None:
    """A tensor of several MiB goes to the file without passing through the write buffer:
    nothing of its size is allocated (a buffer that large would hold a copy of each one)."""
    import tracemalloc
    value = np.arange(1 << 20, dtype=np.float32)  # 4 MiB
    tfckpt.save({"warm": np.ones(1)}, str(tmp_path / "warm"), sync=False)  # imports, caches
    tracemalloc.start()
    try:
        tfckpt.save({"big": value}, str(tmp_path / "ck"), sync=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, f"saving a 4 MiB tensor allocated {peak >> 10} KiB"
    np.testing.assert_array_equal(tfckpt.load(str(tmp_path / "ck"))["big"], value)


def _collector_visits() -> int:
    """References the cyclic garbage collector follows in a full collection (every tracked
    object's referents, as its traversal sees them), modules left out: CPython 3.12.0-3.12.4
    hand out freed objects of the ``_asyncio`` module's free list to ``gc.get_referents``,
    which corrupts that list so that the next full collection never ends (CPython
    gh-122695; CI's CPython 3.12.1 hung here once fsspec's event loop had run)."""
    import gc
    import types
    gc.collect()
    return sum(len(gc.get_referents(obj)) for obj in gc.get_objects() if not isinstance(obj, types.ModuleType))


def test_an_open_reader_and_its_listing_add_no_per_name_work_to_the_collector(tmp_path: Path) -> None:
    """An open reader holds its names once, and out of the collector's sight (a tuple of
    strings is untracked), and so does a listing: while a caller builds 10^6 shape lists from
    it, each full collection would otherwise traverse the 10^6 names again (twice, for the
    table's copy), which made listing 10^6 tensors grow faster than linearly."""
    count = 5000
    value = np.zeros(4, np.float32)
    tfckpt.save({f"model/layer_{i:05d}/kernel": value for i in range(count)}, str(tmp_path / "ck"), sync=False)
    tfckpt.load_checkpoint(str(tmp_path / "ck")).store.peek_all()  # imports, caches
    before = _collector_visits()
    reader = tfckpt.load_checkpoint(str(tmp_path / "ck"))
    listing = reader.store.peek_all()
    added = _collector_visits() - before
    assert len(listing.names) == count
    assert added < count // 10, f"an open reader of {count} names and its listing add {added} references to traverse"
    shapes = reader.get_variable_to_shape_map()
    assert len(shapes) == count and shapes[f"model/layer_{count - 1:05d}/kernel"] == [4]
