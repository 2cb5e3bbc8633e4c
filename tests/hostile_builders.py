"""Builders of *valid-looking* hostile inputs for the resource-contract sweeps.

Each builder writes the files of one input into a directory from a few parameters and returns
the path an entry point is given. The bytes are made with tfckpt's own table encoding and
protobuf messages (so checksums, framing and key order are right and the input reaches the
code under test), but every number may be hostile: shared-prefix lengths, block handles,
``num_shards``, offsets near 2**63, ranks up to 254, object-graph shapes, JSON depth.

``FAMILIES`` maps each swept parameter family to its builder; ``tests/test_contracts.py`` and
``fuzz/sweep_contracts.py`` sweep them geometrically.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfckpt._proto import (
    saved_model_pb2,
    saved_object_graph_pb2,
    saved_tensor_slice_pb2,
    struct_pb2,
    tensor_bundle_pb2,
    tensor_slice_pb2,
    trackable_object_graph_pb2,
)
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.slices import TensorSlice, encode_slice_key
from tfckpt.coding import crc32c, encode_varint, mask
from tfckpt.table import BlockHandle, Footer, TableBuilder

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
DT_FLOAT, DT_STRING, DT_INT32 = 1, 7, 3
Builder = Callable[[Path, int], str]


# ---- bytes of an index ---------------------------------------------------------------------

def raw_block(entries: Sequence[tuple[int, bytes, bytes]], restarts: Sequence[int] = (0,)) -> bytes:
    """Block contents from ``(shared, non_shared key bytes, value)`` triples, restarts as given:
    no check that ``shared`` fits the previous key (that is for the reader to find)."""
    out = bytearray()
    for shared, rest, value in entries:
        out += encode_varint(shared) + encode_varint(len(rest)) + encode_varint(len(value)) + rest + value
    for offset in restarts:
        out += struct.pack("<I", offset)
    return bytes(out) + struct.pack("<I", len(restarts))


def raw_table(data_blocks: Sequence[bytes], index: Sequence[tuple[bytes, int]]) -> bytes:
    """A table whose index block maps each separator key to ``data_blocks[i]`` (any ``i``,
    repeated or out of order); every block has a correct trailer."""
    out = bytearray()
    handles = []

    def put(contents: bytes) -> BlockHandle:
        handle = BlockHandle(len(out), len(contents))
        kind = b"\0"
        out.extend(contents + kind + struct.pack("<I", mask(crc32c(kind, crc32c(contents)))))
        return handle

    for contents in data_blocks:
        handles.append(put(contents))
    metaindex = put(raw_block([], (0,)))
    index_block = put(_index_block([(key, handles[i].encode()) for key, i in index]))
    return bytes(out) + Footer(metaindex, index_block).encode()


def _index_block(items: Sequence[tuple[bytes, bytes]]) -> bytes:
    """An index block (restart interval 1: every key whole)."""
    out = bytearray()
    restarts = []
    for key, value in items:
        restarts.append(len(out))
        out += encode_varint(0) + encode_varint(len(key)) + encode_varint(len(value)) + key + value
    return bytes(out) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def table(items: Sequence[tuple[bytes, bytes]], block_size: int = 256 * 1024) -> bytes:
    """A well-formed table of sorted ``items`` written by tfckpt's own TableBuilder."""
    sink = io.BytesIO()
    builder = TableBuilder(sink, block_size=block_size)
    builder.add_many(list(items))
    builder.finish()
    return sink.getvalue()


def header(num_shards: int = 1) -> bytes:
    proto = tensor_bundle_pb2.BundleHeaderProto(num_shards=num_shards)
    proto.version.producer = 1
    return proto.SerializeToString()


def entry(dtype: int = DT_FLOAT, shape: Sequence[int] = (), *, shard_id: int = 0, offset: int = 0, size: int = 0,
          crc: int | None = None, data: bytes = b"", slices: Sequence[Sequence[tuple[int, int]]] = ()) -> bytes:
    """A BundleEntryProto; ``crc`` defaults to the masked CRC32C of ``data``; each slice is
    ``[(start, length), ...]`` per dimension, length -1 meaning the whole dimension."""
    proto = tensor_bundle_pb2.BundleEntryProto(dtype=dtype, shard_id=shard_id, offset=offset, size=size,
                                                crc32c=mask(crc32c(data)) if crc is None else crc)
    for dim in shape:
        proto.shape.dim.add(size=dim)
    for piece in slices:
        out = proto.slices.add()
        for start, length in piece:
            extent = out.extent.add(start=start)
            if length >= 0:
                extent.length = length
    return proto.SerializeToString()


def write_prefix(directory: Path, index: bytes, shards: Sequence[bytes] = (b"",), num_shards: int | None = None) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    prefix = str(directory / "ck")
    Path(index_filename(prefix)).write_bytes(index)
    total = len(shards) if num_shards is None else num_shards
    for i, data in enumerate(shards):
        Path(data_filename(prefix, i, total)).write_bytes(data)
    return prefix


def checkpoint(directory: Path, entries: dict[bytes, bytes], data: bytes = b"", num_shards: int = 1,
               block_size: int = 256 * 1024) -> str:
    """A checkpoint with the header and ``entries`` (key -> BundleEntryProto bytes)."""
    items = sorted({b"": header(num_shards), **entries}.items())
    return write_prefix(directory, table(items, block_size), [data], num_shards)


def input_bytes(path: str | Path) -> int:
    """Bytes of every file an input consists of (a prefix's files, or a file or directory)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    if path.exists():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.parent.iterdir() if p.name.startswith(path.name + "."))


# ---- index families ------------------------------------------------------------------------

def float_tensors(directory: Path, n: int) -> str:
    """Baseline: ``n`` small float tensors (4 floats each) in one data file."""
    value = np.arange(4, dtype=np.float32).tobytes()
    entries = {f"layer_{i:07d}/kernel".encode(): entry(DT_FLOAT, (4,), offset=4 * 4 * i, size=16, data=value)
               for i in range(n)}
    return checkpoint(directory, entries, value * n, block_size=4096)


def shared_prefix_keys(directory: Path, n: int, first: int = 16 * 1024) -> str:
    """Issue 24 item 1: a ``first``-byte key, then ``n`` keys each sharing the whole previous key
    plus one byte (a few bytes each on disk, ``first + i`` bytes each when materialised)."""
    value = entry(DT_FLOAT, (0,))
    key = b"k" * first
    block = [(0, b"", header()), (0, key, value)]
    for i in range(n):
        block.append((len(key), b"x", value))
        key += b"x"
    return write_prefix(directory, raw_table([raw_block(block)], [(key + b"\xff", 0)]))


def snappy_literal(data: bytes) -> bytes:
    """Raw Snappy literal elements holding ``data`` (60 bytes per element at most)."""
    out = bytearray()
    for start in range(0, len(data), 60):
        chunk = data[start:start + 60]
        out += bytes([(len(chunk) - 1) << 2]) + chunk
    return bytes(out)


def snappy_repeat(head: bytes, unit: bytes, count: int, tail: bytes) -> bytes:
    """Raw Snappy for ``head + unit * count + tail`` (``count`` >= 1): the repeats as copies of
    up to 64 bytes ``len(unit)`` back, 3 bytes each (Snappy's best ratio, ~21x)."""
    out = bytearray(encode_varint(len(head) + len(unit) * count + len(tail)))
    out += snappy_literal(head + unit)
    left = len(unit) * (count - 1)
    while left:
        size = min(left, 64)
        out += bytes([((size - 1) << 2) | 2]) + struct.pack("<H", len(unit))
        left -= size
    return bytes(out + snappy_literal(tail))


def snappy_shared_prefix_keys(directory: Path, n: int, first: int = 180) -> str:
    """A snappy-compressed data block (block type 1, which TF reads) of a ``first``-byte key,
    then ``n`` keys each sharing all but one byte of the previous one and adding one: a
    prefix-compression bomb whose repeated entries compress ~21x."""
    entry_bytes = tensor_bundle_pb2.BundleEntryProto(dtype=DT_FLOAT).SerializeToString()
    head = (encode_varint(0) + encode_varint(0) + encode_varint(len(header())) + header()
            + encode_varint(0) + encode_varint(first) + encode_varint(len(entry_bytes)) + b"k" * first + entry_bytes)
    unit = encode_varint(first - 1) + encode_varint(1) + encode_varint(0) + b"l"
    contents = snappy_repeat(head, unit, n, struct.pack("<II", 0, 1))
    out = bytearray()

    def put(block: bytes, kind: bytes) -> BlockHandle:
        handle = BlockHandle(len(out), len(block))
        out.extend(block + kind + struct.pack("<I", mask(crc32c(kind, crc32c(block)))))
        return handle

    data = put(contents, b"\1")
    metaindex = put(raw_block([], (0,)), b"\0")
    index = put(_index_block([(b"l", data.encode())]), b"\0")
    return write_prefix(directory, bytes(out) + Footer(metaindex, index).encode())


def repeated_block_handles(directory: Path, n: int, keys: int = 128) -> str:
    """Issue 24 item 2: an index block whose ``n`` entries all point at one data block."""
    value = entry(DT_FLOAT, (0,))
    block = [(0, b"", header())] + [(0, f"w{i:06d}".encode() + b"p" * 20, value) for i in range(keys)]
    index = [(f"w{999999:06d}".encode() + f"{i:08d}".encode(), 0) for i in range(n)]
    return write_prefix(directory, raw_table([raw_block(block)], index))


def string_payload(values: Sequence[bytes]) -> tuple[bytes, int]:
    """A DT_STRING tensor's data bytes and entry CRC (varint lengths, masked CRC of the lengths
    as fixed-width integers, bodies), built independently of tfckpt's writer."""
    lengths = b"".join(encode_varint(len(v)) for v in values)
    length_crc = crc32c(b"".join(struct.pack("<I" if len(v) <= 0xFFFFFFFF else "<Q", len(v)) for v in values))
    stored = struct.pack("<I", mask(length_crc))
    bodies = b"".join(values)
    return lengths + stored + bodies, mask(crc32c(bodies, crc32c(stored, length_crc)))


def empty_strings(directory: Path, n: int) -> str:
    """Issue 24 item 3: one DT_STRING tensor of ``n`` empty strings (one length byte each)."""
    data, crc = string_payload([b""] * n)
    return checkpoint(directory, {b"s": entry(DT_STRING, (n,), size=len(data), crc=crc)}, data)


def num_shards(directory: Path, n: int) -> str:
    """Issue 24 item 10: a header claiming ``n`` data files, one present."""
    return checkpoint(directory, {b"w": entry(DT_FLOAT, (0,))}, num_shards=n)


def huge_offset(directory: Path, n: int) -> str:
    """Issue 24 item 12: a plain entry ``n`` bytes below 2**63 with a sane size."""
    data = b"\0" * 16
    return checkpoint(directory, {b"w": entry(DT_FLOAT, (4,), offset=2**63 - n, size=16, data=data)}, data)


def high_rank(directory: Path, n: int) -> str:
    """Issue 24 item 13: a rank-``n`` float tensor of one element (dims all 1)."""
    data = b"\0" * 4
    return checkpoint(directory, {b"w": entry(DT_FLOAT, (1,) * n, size=4, data=data)}, data)


def empty_huge_dim(directory: Path, n: int) -> str:
    """Issue 24 item 13: ``float32[0, 2**n]`` (no bytes, a dimension numpy cannot build)."""
    return checkpoint(directory, {b"w": entry(DT_FLOAT, (0, 2**n))})


def grid_slices(directory: Path, n: int, rank: int = 8) -> str:
    """Baseline partitioned tensor: ``n`` one-row slices of a ``[n, 1, ...]`` rank-``rank`` float tensor."""
    shape = (n,) + (1,) * (rank - 1)
    row = np.float32(1).tobytes()
    entries = {b"p": entry(DT_FLOAT, shape, slices=[[(i, 1)] + [(0, -1)] * (rank - 1) for i in range(n)])}
    slices = tensor_bundle_pb2.BundleEntryProto.FromString(entries[b"p"]).slices
    for i, piece in enumerate(slices):
        entries[_slice_key(b"p", piece)] = entry(DT_FLOAT, (1,) + (1,) * (rank - 1), offset=4 * i, size=4, data=row)
    return checkpoint(directory, entries, row * n, block_size=4096)


def pinwheel_slices(directory: Path, n: int, rank: int = 64) -> str:
    """Issue 24 item 9: ``n`` nested pinwheels (4 slices each, no straight cut divides them)
    around a centre cell, in the first two dimensions of a rank-``rank`` float tensor."""
    side = 2 * n + 1
    pieces: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for level in range(n):
        lo, hi = level, side - level  # the square [lo, hi)^2, ring of width one
        pieces += [((lo, hi - lo - 1), (lo, 1)), ((hi - 1, 1), (lo, hi - lo - 1)),
                   ((lo + 1, hi - lo - 1), (hi - 1, 1)), ((lo, 1), (lo + 1, hi - lo - 1))]
    pieces.append(((n, 1), (n, 1)))
    shape = (side, side) + (1,) * (rank - 2)
    entries = {b"p": entry(DT_FLOAT, shape, slices=[[a, b] + [(0, -1)] * (rank - 2) for a, b in pieces])}
    data = bytearray()
    slices = tensor_bundle_pb2.BundleEntryProto.FromString(entries[b"p"]).slices
    for (a, b), piece in zip(pieces, slices):
        values = b"\0" * (4 * a[1] * b[1])
        entries[_slice_key(b"p", piece)] = entry(DT_FLOAT, (a[1], b[1]) + (1,) * (rank - 2), offset=len(data),
                                                 size=len(values), data=values)
        data += values
    return checkpoint(directory, entries, bytes(data))


def nested_slice_entries(directory: Path, n: int) -> str:
    """Issue 24 item 11: a partitioned tensor whose ``n`` slice entries carry slices of their own."""
    full = entry(DT_FLOAT, (n,), slices=[[(i, 1)] for i in range(n)])
    entries = {b"p": full}
    for i, piece in enumerate(tensor_bundle_pb2.BundleEntryProto.FromString(full).slices):
        entries[_slice_key(b"p", piece)] = entry(DT_FLOAT, (1,), offset=4 * i, size=4, data=b"\0" * 4,
                                                 slices=[[(0, 1), (0, 1)]])
    return checkpoint(directory, entries, b"\0" * 4 * n)


def _slice_key(name: bytes, piece: tensor_slice_pb2.TensorSliceProto) -> bytes:
    """The index key of one slice of ``name`` (TF's ordered-code encoding, tfckpt's encoder)."""
    bounds = tuple((e.start, e.length if e.HasField("length") else -1) for e in piece.extent)
    return encode_slice_key(name.decode(), TensorSlice(bounds))


# ---- legacy V1 checkpoints (one table of SavedTensorSlices records) -------------------------

def v1_checkpoint(directory: Path, record: saved_tensor_slice_pb2.SavedTensorSlices,
                  data: Sequence[saved_tensor_slice_pb2.SavedTensorSlices] = ()) -> str:
    """A one-file V1 checkpoint: metadata ``record`` under the empty key, each data record
    under the slice key of its ``data.name`` and ``data.slice``."""
    items = [(b"", record.SerializeToString())]
    for value in data:
        items.append((_slice_key(value.data.name.encode(), value.data.slice), value.SerializeToString()))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.ckpt"
    path.write_bytes(table(sorted(items)))
    return str(path)


def v1_repeated_name(directory: Path, n: int) -> str:
    """A V1 metadata record listing tensor ``x`` ``n`` times, one 1-element slice of
    ``float32[n]`` each (no data records: opening and listing read the metadata only)."""
    record = saved_tensor_slice_pb2.SavedTensorSlices()
    for i in range(n):
        meta = record.meta.tensor.add(name="x", type=DT_FLOAT)
        meta.shape.dim.add(size=n)
        meta.slice.add().extent.add(start=i, length=1)
    return v1_checkpoint(directory, record)


def v1_tensor(directory: Path, shape: Sequence[int], values: int) -> str:
    """A V1 float32 tensor of ``shape`` stored whole (one slice of full extents) with
    ``values`` values."""
    record = saved_tensor_slice_pb2.SavedTensorSlices()
    meta = record.meta.tensor.add(name="x", type=DT_FLOAT)
    piece = meta.slice.add()
    for dim in shape:
        meta.shape.dim.add(size=dim)
        piece.extent.add(start=0, length=dim)
    data = saved_tensor_slice_pb2.SavedTensorSlices()
    data.data.name = "x"
    data.data.slice.CopyFrom(piece)
    data.data.data.float_val.extend([1.0] * values)
    return v1_checkpoint(directory, record, [data])


def v1_high_rank(directory: Path, n: int) -> str:
    """A V1 rank-``n`` float tensor of one element (dims all 1)."""
    return v1_tensor(directory, (1,) * n, 1)


def v1_empty_huge_dim(directory: Path, n: int) -> str:
    """A V1 ``float32[0, 2**n]`` (no values, a dimension numpy cannot build)."""
    return v1_tensor(directory, (0, 2**n), 0)


# ---- object graphs -------------------------------------------------------------------------

def graph_checkpoint(directory: Path, graph: trackable_object_graph_pb2.TrackableObjectGraph,
                     keys: Sequence[str]) -> str:
    """A checkpoint of a float32 scalar under each key plus the object graph."""
    value = np.float32(1).tobytes()
    entries = {key.encode(): entry(DT_FLOAT, (), offset=4 * i, size=4, data=value) for i, key in enumerate(keys)}
    blob, crc = string_payload([graph.SerializeToString()])
    entries[OBJECT_GRAPH_KEY.encode()] = entry(DT_STRING, (), offset=4 * len(keys), size=len(blob), crc=crc)
    return checkpoint(directory, entries, value * len(keys) + blob, block_size=64 * 1024)


def _variable(graph: trackable_object_graph_pb2.TrackableObjectGraph, key: str) -> int:
    node = graph.nodes.add()
    node.attributes.add(name="VARIABLE_VALUE", full_name=key, checkpoint_key=key)
    return len(graph.nodes) - 1


def graph_chain(directory: Path, n: int) -> str:
    """Issue 24 item 5: root -> c -> c -> ... (``n`` nodes) -> a variable."""
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    for i in range(n):
        graph.nodes.add().children.add(node_id=i + 1, local_name="c")
    key = "c/" * n + "v/.ATTRIBUTES/VARIABLE_VALUE"
    graph.nodes[n - 1].children[0].local_name = "c"
    leaf = _variable(graph, key)
    assert leaf == n
    return graph_checkpoint(directory, graph, [key])


def graph_diamonds(directory: Path, n: int) -> str:
    """Issue 24 item 4: ``n`` levels, each level's two children leading to the same next level."""
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    for i in range(n):
        node = graph.nodes.add()
        node.children.add(node_id=i + 1, local_name="a")
        node.children.add(node_id=i + 1, local_name="b")
    key = "a/" * n + ".ATTRIBUTES/VARIABLE_VALUE"
    _variable(graph, key)
    return graph_checkpoint(directory, graph, [key])


def graph_fanout(directory: Path, n: int) -> str:
    """Baseline: a root with ``n`` variable children."""
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    root = graph.nodes.add()
    keys = []
    for i in range(n):
        key = f"v{i}/.ATTRIBUTES/VARIABLE_VALUE"
        root.children.add(node_id=_variable(graph, key), local_name=f"v{i}")
        keys.append(key)
    return graph_checkpoint(directory, graph, keys)


def graph_unmatched_attributes(directory: Path, n: int) -> str:
    """Issue 24 item 6: ``n`` keys and ``n`` attributes whose checkpoint keys are not keys."""
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    root = graph.nodes.add()
    for i in range(n):
        root.children.add(node_id=_variable(graph, f"gone{i}/.ATTRIBUTES/VARIABLE_VALUE"), local_name=f"gone{i}")
    return graph_checkpoint(directory, graph, [f"kept{i}/.ATTRIBUTES/VARIABLE_VALUE" for i in range(n)])


def name_based(directory: Path, n: int) -> str:
    """Issue 24 item 7: ``n`` names ``block_<i>/w`` and no object graph (a TF1 checkpoint)."""
    value = np.float32(1).tobytes()
    entries = {f"block_{i}/w".encode(): entry(DT_FLOAT, (), offset=4 * i, size=4, data=value) for i in range(n)}
    return checkpoint(directory, entries, value * n, block_size=64 * 1024)


# ---- SavedModels, safetensors, npz ---------------------------------------------------------

def _field(message: Any, name: str, payload: bytes) -> bytes:
    """One length-delimited field of ``message``'s type, encoded by hand: nesting built this
    way costs no recursion (protobuf 4.21's ``CopyFrom`` crashes on 64 nested messages)."""
    number = message.DESCRIPTOR.fields_by_name[name].number
    return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload


def saved_model(directory: Path, signature: struct_pb2.StructuredValue | bytes) -> str:
    """A TF2-looking SavedModel whose one function's one trace has ``signature`` (a message or
    its bytes) as input; the messages around the signature are joined as bytes."""
    signature_bytes = signature if isinstance(signature, bytes) else signature.SerializeToString()
    graph = saved_object_graph_pb2.SavedObjectGraph()
    root = graph.nodes.add()
    root.children.add(node_id=1, local_name="f")
    graph.nodes.add().function.concrete_functions.append("f_1")
    function = _field(saved_object_graph_pb2.SavedConcreteFunction, "canonicalized_input_signature",
                      signature_bytes)
    entry = encode_varint(1 << 3 | 2) + encode_varint(3) + b"f_1" + encode_varint(2 << 3 | 2) + encode_varint(len(function)) + function
    graph_bytes = graph.SerializeToString() + _field(graph, "concrete_functions", entry)
    meta = saved_model_pb2.MetaGraphDef()
    meta.meta_info_def.tags.append("serve")
    meta_bytes = meta.SerializeToString() + _field(meta, "object_graph_def", graph_bytes)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "saved_model.pb").write_bytes(_field(saved_model_pb2.SavedModel, "meta_graphs", meta_bytes))
    return str(directory)


def _args(*values: struct_pb2.StructuredValue) -> struct_pb2.StructuredValue:
    """``((values...), {})``: a canonicalized input signature."""
    out = struct_pb2.StructuredValue()
    args = out.tuple_value.values.add().tuple_value
    for value in values:
        args.values.add().CopyFrom(value)
    out.tuple_value.values.add().dict_value.SetInParent()
    return out


def savedmodel_nesting(directory: Path, n: int) -> str:
    """A signature argument nested ``n`` lists deep around one TensorSpec (built as bytes)."""
    value = struct_pb2.StructuredValue()
    value.tensor_spec_value.name = "x"
    value.tensor_spec_value.dtype = DT_FLOAT
    nested = value.SerializeToString()
    for _ in range(n):
        nested = _field(value, "list_value", _field(struct_pb2.ListValue, "values", nested))
    args = _field(value, "tuple_value", _field(struct_pb2.TupleValue, "values", nested))
    signature = _field(value, "tuple_value", _field(struct_pb2.TupleValue, "values", args)
                       + _field(struct_pb2.TupleValue, "values", _field(value, "dict_value", b"")))
    return saved_model(directory, signature)


def savedmodel_bounded_spec(directory: Path, n: int) -> str:
    """Issue 24 item 14: a BoundedTensorSpec whose minimum claims ``float64[n]`` with one value."""
    value = struct_pb2.StructuredValue()
    spec = value.bounded_tensor_spec_value
    spec.name, spec.dtype = "x", 2
    spec.minimum.dtype = 2
    spec.minimum.tensor_shape.dim.add(size=n)
    spec.minimum.double_val.append(0.0)
    spec.maximum.dtype = 2
    spec.maximum.double_val.append(1.0)
    return saved_model(directory, _args(value))


def savedmodel_pbtxt_nesting(directory: Path, n: int) -> str:
    """Issue 24 item 14: a text SavedModel whose signature is nested ``n`` lists deep."""
    text = ("meta_graphs { meta_info_def { tags: 'serve' } object_graph_def { "
            "nodes { children { node_id: 1 local_name: 'f' } } nodes { function { concrete_functions: 'f_1' } } "
            "concrete_functions { key: 'f_1' value { canonicalized_input_signature { tuple_value { values { "
            "tuple_value { values { " + "list_value { values { " * n + "none_value {}" + " } }" * n
            + " } } } values { dict_value {} } } } } } } }")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "saved_model.pbtxt").write_text(text)
    return str(directory)


def safetensors_file(path: Path, header_obj: object, data: bytes = b"") -> str:
    text = json.dumps(header_obj).encode() if not isinstance(header_obj, bytes) else header_obj
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return str(path)


def safetensors_tensors(directory: Path, n: int) -> str:
    """Baseline: ``n`` small float32 tensors."""
    header_obj = {f"t{i}": {"dtype": "F32", "shape": [2], "data_offsets": [8 * i, 8 * i + 8]} for i in range(n)}
    return safetensors_file(directory / "m.safetensors", header_obj, b"\0" * 8 * n)


def safetensors_json_depth(directory: Path, n: int) -> str:
    """Issue 24 item 15: a header nesting ``n`` JSON lists under ``__metadata__``."""
    return safetensors_file(directory / "m.safetensors", b'{"__metadata__": ' + b"[" * n + b"]" * n + b"}")


def safetensors_shape(directory: Path, n: int) -> str:
    """A tensor claiming shape ``[2**n, 0]``, no bytes (a zero-size tensor with a dimension
    past int64 when ``n`` >= 63)."""
    return safetensors_file(directory / "m.safetensors",
                            {"t": {"dtype": "F32", "shape": [2**n, 0], "data_offsets": [0, 0]}})


def npz_members(directory: Path, n: int) -> str:
    """Baseline: an .npz of ``n`` small float32 members."""
    path = directory / "m.npz"
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"a{i}": np.zeros(2, np.float32) for i in range(n)})
    return str(path)


def npz_dtypes_member(directory: Path, n: int) -> str:
    """Issue 24 item 15: ``__tfckpt_dtypes__`` holding a JSON list of ``n`` items, not an object."""
    return npz_dtypes_text(directory, json.dumps(list(range(n))))


def npz_dtypes_text(directory: Path, text: str) -> str:
    """An .npz of one float32 member ``a`` and a ``__tfckpt_dtypes__`` member holding ``text``."""
    path = directory / "m.npz"
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        buffer = io.BytesIO()
        np.save(buffer, np.zeros(2, np.float32))
        archive.writestr("a.npy", buffer.getvalue())
        buffer = io.BytesIO()
        np.save(buffer, np.array(text))
        archive.writestr("__tfckpt_dtypes__.npy", buffer.getvalue())
    return str(path)


def npz_lying_sizes(directory: Path, n: int) -> str:
    """An .npz of a few hundred bytes whose zip headers claim a stored member of ``float32[n]``
    (compressed size = size = the .npy header + 4n bytes, past the archive's end): the bytes
    present stay the same while the claim grows."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (n,)})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a.npy", header.getvalue() + b"\0" * 64)
    raw = bytearray(buffer.getvalue())
    claimed = struct.pack("<II", len(header.getvalue()) + 4 * n, len(header.getvalue()) + 4 * n)
    raw[18:26] = claimed  # the local header's compressed and uncompressed sizes
    central = raw.index(b"PK\x01\x02")
    raw[central + 20:central + 28] = claimed  # the central directory's
    path = directory / "m.npz"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(raw))
    return str(path)


def keras_h5_datasets(directory: Path, n: int) -> str:
    """Baseline: a Keras 3 style ``.weights.h5`` of ``n`` layers with two small datasets each."""
    import h5py

    path = directory / "m.weights.h5"
    directory.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        for i in range(n):
            file[f"layers/dense_{i}/vars/0"] = np.zeros((2, 2), np.float32)
            file[f"layers/dense_{i}/vars/1"] = np.zeros(2, np.float32)
    return str(path)


def keras_h5_nesting(directory: Path, n: int) -> str:
    """A ``.weights.h5`` whose one dataset sits under ``n`` nested groups (HDF5's own
    ``visititems`` resolves each from the root: quadratic in ``n``)."""
    import h5py

    path = directory / "m.weights.h5"
    directory.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        file["/".join(["g"] * n) + "/vars/0"] = np.zeros(2, np.float32)
    return str(path)


def keras_h5_huge_dataset(directory: Path, n: int) -> str:
    """A ``.weights.h5`` declaring a chunked, compressed ``float32[2**n]`` dataset with no
    chunk written (HDF5 reads it as fill values)."""
    import h5py

    path = directory / "m.weights.h5"
    directory.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        file.create_dataset("layers/d/vars/0", shape=(2**n,), dtype=np.float32, chunks=(1024,),
                            compression="gzip", fillvalue=1.0)
    return str(path)


def keras_archive_bomb(directory: Path, n: int) -> str:
    """A ``.keras`` zip whose ``model.weights.h5`` member deflates ``n`` MiB of zeros (no HDF5
    signature anywhere: every probe of the superblock decompresses from the start)."""
    path = directory / "m.keras"
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\0" * (n << 20))
    return str(path)


def savedmodel_functions(directory: Path, n: int) -> str:
    """A SavedModel with ``n`` functions in its graph's function library and ``n`` concrete
    functions of one restored function in its object graph."""
    meta = saved_model_pb2.MetaGraphDef()
    meta.meta_info_def.tags.append("serve")
    graph = meta.object_graph_def
    root = graph.nodes.add()
    root.children.add(node_id=1, local_name="f")
    node = graph.nodes.add().function
    for i in range(n):
        name = f"__inference_f_{i}"
        meta.graph_def.library.function.add().signature.name = name
        node.concrete_functions.append(name)
        graph.concrete_functions[name].canonicalized_input_signature.CopyFrom(_args())
    model = saved_model_pb2.SavedModel()
    model.meta_graphs.append(meta)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "saved_model.pb").write_bytes(model.SerializeToString())
    return str(directory)


def meta_graph_functions(directory: Path, n: int) -> str:
    """A TF1 ``.meta`` file (a MetaGraphDef) whose graph has ``n`` library functions and ``n``
    nodes."""
    meta = saved_model_pb2.MetaGraphDef()
    meta.meta_info_def.tags.append("train")
    for i in range(n):
        meta.graph_def.library.function.add().signature.name = f"f_{i}"
        node = meta.graph_def.node.add()
        node.name, node.op = f"v_{i}", f"Op{i % 7}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.ckpt.meta"
    path.write_bytes(meta.SerializeToString())
    return str(path)


def tmp_output(directory: Path, suffix: str) -> str:
    """A fresh output path next to an input (convert's destination)."""
    out = directory.parent / f"{directory.name}-out{suffix}"
    if out.exists():
        os.remove(out)
    return str(out)


def saved_model_meta_graph_functions(directory: Path, n: int) -> str:
    """A SavedModel's ``saved_model.pb`` whose one MetaGraphDef is :func:`meta_graph_functions`'
    (``meta show`` reads a SavedModel's meta graph too)."""
    meta = saved_model_pb2.MetaGraphDef()
    meta.ParseFromString(Path(meta_graph_functions(directory / "meta", n)).read_bytes())
    model = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    model.meta_graphs.append(meta)
    path = directory / "saved_model.pb"
    path.write_bytes(model.SerializeToString())
    return str(path)


def saved_model_meta_graphs(directory: Path, n: int) -> str:
    """A ``saved_model.pb`` with ``n`` meta graphs, each tagged differently (``meta show``
    without ``--tag_set`` must name the choices, not pick one)."""
    model = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    for i in range(n):
        model.meta_graphs.add().meta_info_def.tags.append(f"tag_{i}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "saved_model.pb"
    path.write_bytes(model.SerializeToString())
    return str(path)
