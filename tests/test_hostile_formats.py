"""Hostile safetensors and .npz files given to convert (and to the commands that read them):
each a TfckptError naming the file and what was wrong, nothing allocated beyond the bytes
present; safetensors headers checked as strictly as the safetensors library checks them."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfckpt
from tfckpt.convert import convert
from tfckpt.errors import CorruptionError, InvalidArgumentError, TfckptError, UnsupportedError
from tfckpt.formats.npz import DTYPES_MEMBER, STRUCTURE_MEMBER


def safetensors_bytes(header: Any, data: bytes = b"", raw_header: bytes | None = None) -> bytes:
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


F32x2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}

# Headers the safetensors library refuses (each checked below against the library itself).
REFUSED_HEADERS: dict[str, tuple[Any, bytes]] = {
    "shape Infinity": (None, b'{"w": {"dtype": "F32", "shape": [Infinity], "data_offsets": [0, 8]}}'),
    "shape NaN": (None, b'{"w": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 8]}}'),
    "float dim": ({"w": {**F32x2, "shape": [2.0]}}, b""),
    "bool dim": ({"w": {**F32x2, "shape": [True, 2]}}, b""),
    "string dim": ({"w": {**F32x2, "shape": ["2"]}}, b""),
    "negative dim": ({"w": {**F32x2, "shape": [-2]}}, b""),
    "shape not a list": ({"w": {**F32x2, "shape": 2}}, b""),
    "unknown dtype": ({"w": {**F32x2, "dtype": "F31"}}, b""),
    "dtype not a string": ({"w": {**F32x2, "dtype": 1}}, b""),
    "three offsets": ({"w": {**F32x2, "data_offsets": [0, 4, 8]}}, b""),
    "offsets reversed": ({"w": {**F32x2, "data_offsets": [8, 0]}}, b""),
    "entry not an object": ({"w": [1, 2]}, b""),
    "missing field": ({"w": {"dtype": "F32", "shape": [2]}}, b""),
    "bytes do not fit the shape": ({"w": {**F32x2, "shape": [3]}}, b""),
    "past the end": ({"w": {**F32x2, "shape": [4], "data_offsets": [0, 16]}}, b""),
    "gap before": ({"w": {**F32x2, "data_offsets": [4, 12]}}, b"\0" * 4),
    "overlap": ({"a": F32x2, "b": {**F32x2, "data_offsets": [4, 12]}}, b"\0" * 4),
    "same bytes twice": ({"a": F32x2, "b": F32x2}, b""),
    "bytes left over": ({"w": F32x2}, b"\0" * 4),
    "metadata not strings": ({"__metadata__": {"format": 1}, "w": F32x2}, b""),
    "header a list": ([1, 2], b""),
}


def hostile_safetensors(tmp_path: Path, case: str) -> Path:
    """The case's header, then 8 data bytes (what F32x2 needs), then its extra bytes."""
    header, extra = REFUSED_HEADERS[case]
    path = tmp_path / "hostile.safetensors"
    if header is None:  # written by hand: JSON's dumps cannot write these
        path.write_bytes(safetensors_bytes(None, b"\0" * 8, raw_header=extra))
    else:
        path.write_bytes(safetensors_bytes(header, b"\0" * 8 + extra))
    return path


@pytest.mark.parametrize("case", sorted(REFUSED_HEADERS))
def test_safetensors_headers_refused_as_the_library_refuses_them(tmp_path: Path, case: str) -> None:
    from safetensors import safe_open

    path = hostile_safetensors(tmp_path, case)
    with pytest.raises(Exception), safe_open(str(path), framework="numpy") as f:  # noqa: B017 - the library's own kinds
        for key in f.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
            f.get_tensor(key)
    with pytest.raises(CorruptionError) as caught:
        convert(path, tmp_path / "out")
    assert str(path) in str(caught.value)
    assert not (tmp_path / "out.index").exists()
    with pytest.raises(CorruptionError):
        tfckpt.formats.open_reader(path)


def test_a_deeply_nested_header_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "deep.safetensors"
    path.write_bytes(safetensors_bytes(None, raw_header=b'{"w": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"))
    with pytest.raises(CorruptionError, match=r"deep\.safetensors: header at offset 8 nests 100001 levels"):
        convert(path, tmp_path / "out")


def test_brackets_inside_names_are_not_nesting(tmp_path: Path) -> None:
    name = 'a[[[[{{{{"\\]]'
    path = tmp_path / "names.safetensors"
    path.write_bytes(safetensors_bytes({name: F32x2}, b"\0" * 8))
    assert convert(path, tmp_path / "out").written == [(name, name)]


def test_a_shape_numpy_cannot_make_is_unsupported(tmp_path: Path) -> None:
    for shape in ([0] * 70, [0, 1 << 62]):
        path = tmp_path / "wide.safetensors"
        path.write_bytes(safetensors_bytes({"w": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}))
        with pytest.raises(UnsupportedError, match="wide.safetensors: tensor 'w'"):
            convert(path, tmp_path / "out")


# -- npz -------------------------------------------------------------------------------------


def npz_with(tmp_path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    path = tmp_path / "hostile.npz"
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def npy(value: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, value, allow_pickle=True)
    return out.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue()


@pytest.mark.parametrize(("dtypes", "message"), [
    (np.array("not json {"), "is not JSON"),
    (np.array(json.dumps(["w", "bfloat16"])), "should map member names to dtype names, not list"),
    (np.array("[" * 100_000 + "]" * 100_000), "nested 100000 deep"),
    (np.array([1, 2]), "should hold one string"),
    (np.array(json.dumps({"w": "float128x"})), "names 'float128x'"),
    (np.array(json.dumps({"w": "bfloat16"})), "stored as uint32 but __tfckpt_dtypes__ says bfloat16"),
])
def test_a_bad_dtype_list_in_an_npz(tmp_path: Path, dtypes: np.ndarray, message: str) -> None:
    path = npz_with(tmp_path, {"w.npy": npy(np.zeros(3, np.uint32)), DTYPES_MEMBER + ".npy": npy(dtypes)})
    with pytest.raises(CorruptionError, match=message) as caught:
        convert(path, tmp_path / "out")
    assert str(path) in str(caught.value)


def test_a_dtype_list_naming_a_members_own_type_is_accepted(tmp_path: Path) -> None:
    dtypes = np.array(json.dumps({"w": "float32"}))
    path = npz_with(tmp_path, {"w.npy": npy(np.ones(2, np.float32)), DTYPES_MEMBER + ".npy": npy(dtypes)})
    assert convert(path, tmp_path / "out").written == [("w", "w")]


def test_npz_members_that_claim_more_than_they_hold(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        for shape in ((1 << 37,), (1 << 20, 1 << 20)):  # 1 TiB, 8 TiB claimed by a few bytes
            path = npz_with(tmp_path, {"w.npy": npy_header(shape) + b"\0" * 8})
            with pytest.raises(CorruptionError, match=r"member 'w' claims float64\[.*\] .* but holds 8 bytes"):
                convert(path, tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_an_npz_member_whose_size_its_compressed_bytes_cannot_reach(tmp_path: Path) -> None:
    count = 1 << 27  # 1 GiB of float64 claimed
    path = npz_with(tmp_path, {"w.npy": npy_header((count,)) + b"\0" * 8}, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")  # the member's central directory record: sizes at +20, +24
    struct.pack_into("<I", data, central + 24, 128 + count * 8)
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        with pytest.raises(CorruptionError, match=r"member 'w.npy' claims \d+ bytes from \d+ compressed bytes"):
            convert(path, tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_pickled_npz_members_are_named(tmp_path: Path) -> None:
    path = npz_with(tmp_path, {"w.npy": npy(np.array([{"a": 1}], dtype=object))})
    with pytest.raises(CorruptionError, match=r"hostile.npz: member 'w' holds Python objects"):
        convert(path, tmp_path / "out")


def test_a_damaged_npz_member_is_a_corruption_error_when_read(tmp_path: Path) -> None:
    path = npz_with(tmp_path, {"w.npy": npy(np.arange(1000, dtype=np.float64))}, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF  # inside the deflated data
    path.write_bytes(bytes(data))
    with pytest.raises(TfckptError, match="hostile.npz"):
        convert(path, tmp_path / "out")


# -- names the destination cannot store ----------------------------------------------------------


def test_names_that_are_not_utf8_are_refused_for_npz_and_safetensors(tmp_path: Path) -> None:
    prefix = tfckpt.save({"w\udcff": np.ones(2, np.float32)}, tmp_path / "ck")
    assert list(tfckpt.load(prefix)) == ["w\udcff"]  # a checkpoint key may be any bytes
    for name in ("out.npz", "out.safetensors"):
        with pytest.raises(InvalidArgumentError, match=r"'w\\udcff'.* not UTF-8 text .* --rename") as caught:
            convert(prefix, tmp_path / name)
        assert str(tmp_path / name) in str(caught.value)
        assert not (tmp_path / name).exists()
    assert convert(prefix, tmp_path / "ok.npz", rename=[("\udcff", "_")]).written == [("w\udcff", "w_")]


def test_a_tensor_named_like_the_dtype_list_is_refused_for_npz(tmp_path: Path) -> None:
    prefix = tfckpt.save({DTYPES_MEMBER: np.ones(2), "b": np.zeros(1, np.float32)}, tmp_path / "ck")
    with pytest.raises(InvalidArgumentError, match="the member where .npz files of tfckpt list dtypes"):
        convert(prefix, tmp_path / "out.npz")
    prefix = tfckpt.save({STRUCTURE_MEMBER: np.ones(2)}, tmp_path / "ck2")
    with pytest.raises(InvalidArgumentError, match="the member where .npz files of tfckpt keep the TF2 structure"):
        convert(prefix, tmp_path / "out2.npz")


# -- SavedModels and MetaGraphs ----------------------------------------------------------------


def saved_model_with(tmp_path: Path, signature: Any, text: bool = False) -> Path:
    """A SavedModel (binary, or text) whose root has one function 'f' with one concrete
    function traced with ``signature`` (a StructuredValue)."""
    from tfckpt._proto import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    meta_graph = proto.meta_graphs.add()
    meta_graph.meta_info_def.tags.append("serve")
    graph = meta_graph.object_graph_def
    child = graph.nodes.add().children.add()
    child.node_id, child.local_name = 1, "f"
    graph.nodes.add().function.concrete_functions.append("cf")
    graph.concrete_functions["cf"].canonicalized_input_signature.CopyFrom(signature)
    directory = tmp_path / "model"
    directory.mkdir(exist_ok=True)
    if text:
        from google.protobuf import text_format
        (directory / "saved_model.pbtxt").write_text(text_format.MessageToString(proto))
    else:
        (directory / "saved_model.pb").write_bytes(proto.SerializeToString())
    return directory


def traced(*args: Any, **kwargs: Any) -> Any:
    """The StructuredValue of an (args, kwargs) input signature of StructuredValues."""
    from tfckpt._proto import struct_pb2

    value = struct_pb2.StructuredValue()
    arguments = value.tuple_value.values.add().tuple_value
    for arg in args:
        arguments.values.add().CopyFrom(arg)
    keywords = value.tuple_value.values.add().dict_value
    keywords.SetInParent()  # an empty dict is still a dict
    fields = keywords.fields
    for key, arg in kwargs.items():
        fields[key].CopyFrom(arg)
    return value


def bounded(shape: list[int], dtype: int = 1, content: bytes = b"", **values: list[Any]) -> Any:
    """A BoundedTensorSpec StructuredValue of shape [2] whose minimum has ``shape`` and the
    given values; its maximum is a scalar 1."""
    from tfckpt._proto import struct_pb2

    value = struct_pb2.StructuredValue()
    spec = value.bounded_tensor_spec_value
    spec.name, spec.dtype = "action", dtype
    spec.shape.dim.add().size = 2
    spec.minimum.dtype = spec.maximum.dtype = dtype
    for size in shape:
        spec.minimum.tensor_shape.dim.add().size = size
    spec.minimum.tensor_content = content
    for field, items in values.items():
        getattr(spec.minimum, field).extend(items)
    spec.maximum.float_val.append(1.0) if dtype == 1 else spec.maximum.double_val.append(1.0)
    return value


def show_all(directory: Path) -> str:
    from tfckpt import savedmodel

    return savedmodel.show_all(savedmodel.read_saved_model(directory))


def test_a_broadcast_bound_is_printed_without_being_made(tmp_path: Path) -> None:
    show_all(saved_model_with(tmp_path, traced(bounded([2], dtype=2, double_val=[1.5]))))  # imports, caches
    peaks = []
    for exponent in (10, 20, 30):  # 8 KiB, 8 MiB, 8 GiB of float64 if made
        directory = saved_model_with(tmp_path, traced(bounded([1 << exponent], dtype=2, double_val=[1.5])))
        tracemalloc.start()
        try:
            text = show_all(directory)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert "minimum=array([1.5, 1.5, 1.5, ..., 1.5, 1.5, 1.5]" in text
    assert max(peaks) < 1 << 20 and peaks[2] < 2 * peaks[0] + (64 << 10), peaks
    directory = saved_model_with(tmp_path, traced(bounded([1 << 30, 1 << 30], float_val=[0.0])))  # 4 EiB
    assert "minimum=array([[0., 0., 0., ..., 0., 0., 0.]," in show_all(directory)
    assert len(show_all(directory)) < 2000
    directory = saved_model_with(tmp_path, traced(bounded([1 << 31, 1 << 31], float_val=[0.0])))  # 2^64 bytes
    with pytest.raises(CorruptionError, match=r"shape \[2147483648, 2147483648\]: larger than any array numpy"):
        show_all(directory)


def test_a_small_bound_prints_as_tensorflow_pads_it(tmp_path: Path) -> None:
    directory = saved_model_with(tmp_path, traced(bounded([4], float_val=[1.0, 2.0])))
    assert "minimum=array([1., 2., 2., 2.], dtype=float32)" in show_all(directory)
    directory = saved_model_with(tmp_path, traced(bounded([2, 2])))
    assert "minimum=array([[0., 0.],\n       [0., 0.]], dtype=float32)" in show_all(directory)


@pytest.mark.parametrize(("signature", "message"), [
    (lambda: traced(bounded([-3], float_val=[0.0])), r"float32 tensor of shape \[-3\]: negative dimension"),
    (lambda: traced(bounded([7] * 20, float_val=[0.0])), r"1 stored values would print as 3656158440062976"),
    (lambda: traced(bounded([10**9], float_val=[0.0, 1.0])), "2 stored values would be repeated to 1000000000"),
    (lambda: traced(bounded([3], float_val=[0.0] * 4)), "4 values in float_val"),
    (lambda: traced(bounded([3], content=b"\0" * 5)), "5 bytes of tensor_content"),
    (lambda: traced(bounded([1 << 40] * 3, float_val=[0.0])), "larger than any array numpy can make"),
    (lambda: traced(bounded([1] * 65, float_val=[0.0])), "larger than any array numpy can make"),
])
def test_malformed_bounds_are_corruption_errors(tmp_path: Path, signature: Any, message: str) -> None:
    directory = saved_model_with(tmp_path, signature())
    with pytest.raises(CorruptionError, match=message) as caught:
        show_all(directory)
    assert str(directory) in str(caught.value) and "concrete function 'cf'" in str(caught.value)


def structured(text: str) -> Any:
    from google.protobuf import text_format

    from tfckpt._proto import struct_pb2

    return text_format.Parse(text, struct_pb2.StructuredValue())


@pytest.mark.parametrize(("signature", "message"), [
    ('tuple_value { values { none_value {} } values { dict_value {} } values { none_value {} } }',
     r"not an \(args, kwargs\) pair but tuple"),
    ('tensor_spec_value { name: "x" dtype: DT_FLOAT }', r"not an \(args, kwargs\) pair but TensorSpec"),
    ('tuple_value { values { int64_value: 1 } values { dict_value {} } }', "not an .args, kwargs. pair"),
    (('tuple_value { values { tuple_value { values { named_tuple_value { name: "1 bad" } } } } '
     'values { dict_value {} } }'), "named tuple '1 bad'"),
    (('tuple_value { values { tuple_value { values { named_tuple_value { name: "class" } } } } '
     'values { dict_value {} } }'), "named tuple 'class'"),
    (('tuple_value { values { tuple_value { values { tensor_spec_value { shape { dim { size: -5 } } } } } } '
     'values { dict_value {} } }'), r"shape \[-5\]: negative dimension"),
])
def test_malformed_signatures_are_corruption_errors(tmp_path: Path, signature: str, message: str) -> None:
    directory = saved_model_with(tmp_path, structured(signature))
    with pytest.raises(CorruptionError, match=message):
        show_all(directory)


def test_the_cli_says_what_is_wrong_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tfckpt.cli import main

    directory = saved_model_with(tmp_path, traced(bounded([-1], float_val=[0.0])))
    assert main(["savedmodel", "show", "--dir", str(directory), "--all"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tfckpt: error: ") and "negative dimension" in err and err.count("\n") == 1


def test_deeply_nested_text_protos_are_refused_before_parsing(tmp_path: Path) -> None:
    from tfckpt import savedmodel

    directory = tmp_path / "deep"
    directory.mkdir()
    deep = b"meta_graphs { object_graph_def { concrete_functions { key: 'cf' value { canonicalized_input_signature " \
           + b"{ list_value { values " * 1500 + b"{ }" + b" }" * 3000 + b" } } } }"
    (directory / "saved_model.pbtxt").write_bytes(deep)
    with pytest.raises(CorruptionError, match=r"saved_model.pbtxt: text protobuf nests 3005 levels deep"):
        savedmodel.read_saved_model(directory)
    meta = tmp_path / "model.meta"
    meta.write_bytes(b"meta_info_def { tags: 'x' } " + b"graph_def { " * 3000 + b"}" * 3000)
    with pytest.raises(CorruptionError, match=r"model.meta: text protobuf nests 3000 levels deep"):
        savedmodel.read_meta_graph_file(meta)


def test_brackets_in_text_strings_and_comments_are_not_nesting(tmp_path: Path) -> None:
    from tfckpt import savedmodel

    meta = tmp_path / "model.meta"
    meta.write_bytes(b"# {{{{ <<<< [[[[\nmeta_info_def { tags: '{{{{\\'[[' tags: \"<<<}\\\"\" }\n")
    assert savedmodel.read_meta_graph_file(meta).tags == ("{{{{'[[", '<<<}"')


def test_an_unknown_saver_version_is_printed_as_its_number(tmp_path: Path) -> None:
    from tfckpt import savedmodel
    from tfckpt._proto import saved_model_pb2

    proto = saved_model_pb2.MetaGraphDef()
    proto.saver_def.version = 7
    (tmp_path / "m.meta").write_bytes(proto.SerializeToString())
    assert "SaverDef: version 7," in savedmodel.show_meta_graph_file(savedmodel.read_meta_graph_file(tmp_path / "m.meta"))


def test_nesting_is_measured_in_memory_linear_in_the_text() -> None:
    """The depth scans (safetensors JSON, text protos) before parsing: memory grows like the
    text (one stripped copy), not eight bytes of counters per byte of it."""
    from tfckpt.formats.safetensors import json_depth
    from tfckpt.savedmodel import text_depth

    for depth_of in (json_depth, text_depth):
        peaks = []
        for size in (1 << 18, 1 << 20, 1 << 22):
            text = b"[" * (size // 2) + b"]" * (size // 2)
            tracemalloc.start()
            try:
                assert depth_of(text) == size // 2
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
        assert peaks[2] < 1.5 * (1 << 22) + (2 << 20) and peaks[2] < 4.5 * peaks[1], (depth_of.__name__, peaks)
