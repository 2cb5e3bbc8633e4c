"""Write the malformed-checkpoint corpus under tests/corpus/ and its manifest.json.

    python tests/corpus/make_corpus.py

Each case is a directory holding a checkpoint ``ck`` (``ck.index``, ``ck.data-*``) and an
entry in manifest.json: the error class reading it must raise (``ok`` for the valid controls)
and fragments its message must contain. The files are made with tfckpt's own table and entry
encoders plus byte surgery, so each case breaks exactly one rule.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
from pathlib import Path

import numpy as np

import tfckpt
import tfckpt.bundle.slices
from tfckpt.bundle.entry import BundleHeader, TensorInfo
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.slices import TensorSlice
from tfckpt.bundle.writer import write_index
from tfckpt.coding import FIXED32, crc32c, encode_varint, mask
from tfckpt.dtypes import BY_NAME
from tfckpt.table import BlockBuilder, BlockHandle, Footer, TableBuilder

ROOT = Path(__file__).resolve().parent
CASES: list[dict[str, object]] = []


def case(name: str, expect: str, message: list[str] | None = None, tensors: int | None = None) -> Path:
    directory = ROOT / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    entry: dict[str, object] = {"name": name, "expect": expect}
    if message:
        entry["message"] = message
    if tensors is not None:
        entry["tensors"] = tensors
    CASES.append(entry)
    return directory / "ck"


def valid(prefix: Path) -> None:
    tfckpt.save({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.array([b"ab", b"c"], dtype=object),
                 "n": np.int64(3)}, prefix)


def raw_index(prefix: Path, entries: list[TensorInfo], header: BundleHeader | None = None) -> None:
    with open(index_filename(str(prefix)), "wb") as sink:
        write_index(sink, header or BundleHeader(), entries)


def table_bytes(items: list[tuple[bytes, bytes]]) -> bytes:
    sink = io.BytesIO()
    builder = TableBuilder(sink)
    for key, value in items:
        builder.add(key, value)
    builder.finish()
    return sink.getvalue()


def handcrafted_table(block: bytes, kind: int = 0) -> bytes:
    """One data block stored as given (any contents, any type byte) plus metaindex, index, footer."""
    out = bytearray()

    def put(contents: bytes, block_kind: int) -> BlockHandle:
        handle = BlockHandle(len(out), len(contents))
        out.extend(contents + bytes([block_kind]) + FIXED32.pack(mask(crc32c(bytes([block_kind]), crc32c(contents)))))
        return handle

    data = put(block, kind)
    meta = put(BlockBuilder(16).finish(), 0)
    index = BlockBuilder(1)
    index.add(b"\xff", data.encode())
    index_handle = put(index.finish(), 0)
    out += Footer(meta, index_handle).encode()
    return bytes(out)


def data_file(prefix: Path, content: bytes, shard: int = 0, shards: int = 1) -> None:
    Path(data_filename(str(prefix), shard, shards)).write_bytes(content)


def f32(name: str, shape: tuple[int, ...], **fields: int) -> TensorInfo:
    return TensorInfo(name, BY_NAME["float32"], shape, **fields)


def main() -> None:
    valid(case("valid", "ok", tensors=3))
    prefix = case("valid_big_endian", "ok", tensors=2)
    values = {"f": np.array([1.5, -2.0], ">f4"), "c": np.array([1 + 2j], ">c8")}
    blob, infos = b"", []
    for name, value in values.items():
        infos.append(TensorInfo(name, tfckpt.as_dtype(value.dtype), value.shape, 0, len(blob), value.nbytes,
                                mask(crc32c(value.tobytes()))))
        blob += value.tobytes()
    data_file(prefix, blob)
    raw_index(prefix, infos, BundleHeader(endianness="big"))

    # -- the table --------------------------------------------------------------------------
    prefix = case("bad_magic", "CorruptionError", ["bad magic number"])
    valid(prefix)
    index = bytearray(Path(index_filename(str(prefix))).read_bytes())
    index[-1] ^= 0xFF
    Path(index_filename(str(prefix))).write_bytes(bytes(index))

    prefix = case("empty_index", "CorruptionError", ["too short to be an sstable"])
    valid(prefix)
    Path(index_filename(str(prefix))).write_bytes(b"")

    prefix = case("index_cut_in_a_block", "CorruptionError")
    valid(prefix)
    index = Path(index_filename(str(prefix))).read_bytes()
    Path(index_filename(str(prefix))).write_bytes(index[:20] + index[-48:])

    prefix = case("block_checksum", "ChecksumError", ["block checksum mismatch", "offset 0"])
    valid(prefix)
    index = bytearray(Path(index_filename(str(prefix))).read_bytes())
    index[8] ^= 0x01
    Path(index_filename(str(prefix))).write_bytes(bytes(index))

    prefix = case("handle_past_end_of_file", "CorruptionError", ["runs past"])
    valid(prefix)
    Path(index_filename(str(prefix))).write_bytes(
        bytes(100) + Footer(BlockHandle(0, 8), BlockHandle(50, 1 << 40)).encode())

    prefix = case("varint_longer_than_10_bytes", "CorruptionError", ["longer than"])
    valid(prefix)
    block = b"\xff" * 11 + b"\x01" + FIXED32.pack(0) + FIXED32.pack(1)
    Path(index_filename(str(prefix))).write_bytes(handcrafted_table(block))

    prefix = case("restart_count_too_large", "CorruptionError", ["bad block contents"])
    valid(prefix)
    Path(index_filename(str(prefix))).write_bytes(handcrafted_table(FIXED32.pack(0) + FIXED32.pack(10**6)))

    prefix = case("bad_block_type", "UnsupportedError", ["bad block type 9"])
    valid(prefix)
    Path(index_filename(str(prefix))).write_bytes(handcrafted_table(BlockBuilder(16).finish(), kind=9))

    prefix = case("corrupt_snappy_block", "CorruptionError", ["corrupted compressed block contents"])
    valid(prefix)
    Path(index_filename(str(prefix))).write_bytes(handcrafted_table(b"\x40\x00abc", kind=1))

    header = BundleHeader().encode()
    entry = f32("a", (1,), size=4).encode()
    prefix = case("keys_out_of_order", "CorruptionError", ["out of order"])
    block = BlockBuilder(16)
    for key, value in ((b"", header), (b"b", entry), (b"a", entry)):
        block.add(key, value)
    Path(index_filename(str(prefix))).write_bytes(handcrafted_table(block.finish()))
    data_file(prefix, bytes(4))

    prefix = case("duplicate_keys", "CorruptionError", ["out of order"])
    block = BlockBuilder(16)
    for key, value in ((b"", header), (b"a", entry), (b"a", entry)):
        block.add(key, value)
    Path(index_filename(str(prefix))).write_bytes(handcrafted_table(block.finish()))
    data_file(prefix, bytes(4))

    # -- header and entries -----------------------------------------------------------------
    prefix = case("missing_header", "CorruptionError", ["missing bundle header"])
    Path(index_filename(str(prefix))).write_bytes(table_bytes([(b"a", entry)]))

    prefix = case("newer_format_version", "UnsupportedError", ["min_consumer 5"])
    raw_index(prefix, [], BundleHeader(min_consumer=5))

    prefix = case("entry_not_a_protobuf", "CorruptionError", ["'a' not parseable"])
    Path(index_filename(str(prefix))).write_bytes(table_bytes([(b"", header), (b"a", b"\xff\xff\xff")]))

    prefix = case("unknown_dtype", "UnsupportedError", ["unknown DataType enum value 77", "'a'"])
    Path(index_filename(str(prefix))).write_bytes(table_bytes([(b"", header), (b"a", b"\x08\x4d\x12\x00")]))

    prefix = case("negative_dimension", "CorruptionError", ["negative dimension", "'a'"])
    raw_index(prefix, [f32("a", (2, -3))])

    prefix = case("shape_overflows_int64", "CorruptionError", ["overflows int64", "'a'"])
    raw_index(prefix, [f32("a", (1 << 40, 1 << 40))])

    prefix = case("size_inconsistent_with_shape", "CorruptionError", ["stored size 12; expected 16", "'a'"])
    raw_index(prefix, [f32("a", (4,), size=12)])
    data_file(prefix, bytes(16))

    prefix = case("huge_tensor_tiny_file", "CorruptionError", ["past the end of the data file", "'a'"])
    raw_index(prefix, [f32("a", (1 << 31, 1 << 10), size=1 << 43)])
    data_file(prefix, bytes(16))

    prefix = case("string_count_overrun", "CorruptionError", ["at least", "'s'"])
    raw_index(prefix, [TensorInfo("s", BY_NAME["string"], (10**12,), size=8)])
    data_file(prefix, bytes(8))

    prefix = case("string_length_overrun", "CorruptionError", ["string bodies take", "'s'"])
    body = encode_varint(10**6) + FIXED32.pack(mask(crc32c(struct.pack("<I", 10**6)))) + b"abc"
    raw_index(prefix, [TensorInfo("s", BY_NAME["string"], (1,), size=len(body), masked_crc32c=0)])
    data_file(prefix, body)

    prefix = case("shard_id_beyond_header", "CorruptionError", ["shard 2", "'a'"])
    raw_index(prefix, [f32("a", (1,), shard_id=2, size=4)])
    data_file(prefix, bytes(4))

    prefix = case("missing_shard_file", "NotFoundError", ["data-00001-of-00002"])
    raw_index(prefix, [f32("a", (1,), size=4, masked_crc32c=mask(crc32c(bytes(4)))), f32("b", (1,), shard_id=1, size=4)],
              BundleHeader(num_shards=2))
    data_file(prefix, bytes(4), 0, 2)

    prefix = case("missing_data_file", "NotFoundError", ["data-00000-of-00001"])
    raw_index(prefix, [f32("a", (1,), size=4)])

    # -- data -------------------------------------------------------------------------------
    prefix = case("tensor_checksum", "ChecksumError", ["'w'", "stored", "computed", "file offset 0"])
    valid(prefix)
    data = bytearray(Path(data_filename(str(prefix), 0, 1)).read_bytes())
    data[1] ^= 0x40
    Path(data_filename(str(prefix), 0, 1)).write_bytes(bytes(data))

    prefix = case("data_truncated", "CorruptionError", ["past the end"])
    valid(prefix)
    data = Path(data_filename(str(prefix), 0, 1)).read_bytes()
    Path(data_filename(str(prefix), 0, 1)).write_bytes(data[:10])

    prefix = case("index_and_data_from_different_saves", "ChecksumError", ["checksum"])
    valid(prefix)
    other = ROOT / "_other"
    tfckpt.save({"w": np.ones((2, 3), np.float32), "s": np.array([b"zz", b"y"], dtype=object), "n": np.int64(4)}, other / "ck")
    shutil.copy(data_filename(str(other / "ck"), 0, 1), data_filename(str(prefix), 0, 1))
    shutil.rmtree(other)

    # -- partitioned tensors and the object graph --------------------------------------------
    prefix = case("slice_data_missing", "CorruptionError", ["data entry is missing", "'p'"])
    raw_index(prefix, [TensorInfo("p", BY_NAME["float32"], (4,), slices=(TensorSlice(((0, 2),)), TensorSlice(((2, 2),))))])

    prefix = case("overlapping_slices", "CorruptionError", ["slices 0,3 and 2,2 overlap", "'p'"])
    raw_index(prefix, [TensorInfo("p", BY_NAME["float32"], (4,), slices=(TensorSlice(((0, 3),)), TensorSlice(((2, 2),))))])

    # A huge partitioned tensor with one tiny slice: refused before allocating the result.
    for name, shape in (("partitioned_16_gib_one_tiny_slice", (65536, 65536)),
                        ("partitioned_2_pow_40_elements_one_tiny_slice", (1 << 20, 1 << 20))):
        prefix = case(name, "CorruptionError", ["'x'", "is not covered by any stored slice", "only partly covers"])
        with tfckpt.CheckpointWriter(prefix) as writer:
            writer.add_slice("x", shape, TensorSlice(((0, 1), (0, 1))), np.zeros((1, 1), np.float32))

    # One slice covering a 16 GiB tensor, its entry claiming the right size, its bytes absent.
    prefix = case("partitioned_slice_bytes_absent", "CorruptionError", ["x[-:-]", "run past the end"])
    whole = TensorSlice(((0, -1), (0, -1)))
    slice_key = tfckpt.bundle.slices.encode_slice_key("x", whole).decode("utf-8", "surrogateescape")
    raw_index(prefix, [TensorInfo("x", BY_NAME["float32"], (65536, 65536), slices=(whole,)),
                       TensorInfo(slice_key, BY_NAME["float32"], (65536, 65536), size=4 << 30 << 2)])
    Path(data_filename(str(prefix), 0, 1)).write_bytes(b"\0" * 16)

    # 4,000 slices in a small index: overlapping (a staircase), and with one gap; answered at once.
    staircase = tuple(TensorSlice(((0, -1), (i, 2))) for i in range(4000))
    prefix = case("many_slices_overlapping", "CorruptionError", ["'p'", "overlap"])
    raw_index(prefix, [TensorInfo("p", BY_NAME["float32"], (2, 4001), slices=staircase)])
    gappy = tuple(TensorSlice(((i, 1),)) for i in range(4001) if i != 2500)
    prefix = case("many_slices_one_gap", "CorruptionError", ["'p'", "region 2500,1 is not covered"])
    raw_index(prefix, [TensorInfo("p", BY_NAME["float32"], (4001,), slices=gappy)])

    prefix = case("many_slices_valid", "ok", tensors=1)
    with tfckpt.CheckpointWriter(prefix) as writer:
        for i in range(3000):
            writer.add_slice("p", (3000, 2), TensorSlice(((i, 1), (0, -1))), np.full((1, 2), i, np.float32))

    prefix = case("object_graph_garbage", "CorruptionError", ["TrackableObjectGraph"])
    tfckpt.save({"_CHECKPOINTABLE_OBJECT_GRAPH": np.array(b"\xff\xff\xff", dtype=object)}, prefix)

    (ROOT / "manifest.json").write_text(json.dumps({"cases": CASES}, indent=1) + "\n")
    print(f"{len(CASES)} cases written to {ROOT}")


if __name__ == "__main__":
    main()
