"""Round-3 audit findings on the file formats: each test rebuilds the hostile input it needs
(growth properties are swept by ``test_contracts.py`` through the families of
``contract_sweep.FAMILIES``; these tests check the error raised and its message)."""

from __future__ import annotations

import math
from pathlib import Path

import hostile_builders as hb
import numpy as np
import pytest
from timing import confirmed, cpu_seconds

import tfckpt
from tfckpt import cli
from tfckpt._proto import saved_model_pb2
from tfckpt.formats import open_reader
from tfckpt.table import parse_block, scan_blocks


def test_npz_member_claiming_bytes_past_the_archive_is_refused_before_reading(tmp_path: Path) -> None:
    source = hb.npz_lying_sizes(tmp_path / "in", 10**6)
    with pytest.raises(tfckpt.CorruptionError, match=r"m\.npz: member 'a\.npy' claims 4000\d+ compressed "
                                                     r"bytes at offset \d+, past the end of the \d+-byte archive"):
        tfckpt.convert_checkpoint(source, str(tmp_path / "out.safetensors"))


HUGE_INTEGER = "9" * 5000  # past CPython's 4,300-digit int string conversion limit


def test_safetensors_header_with_a_huge_integer_literal_is_a_corruption_error(tmp_path: Path) -> None:
    text = b'{"t": {"dtype": "F32", "shape": [' + HUGE_INTEGER.encode() + b'], "data_offsets": [0, 0]}}'
    source = hb.safetensors_file(tmp_path / "m.safetensors", text)
    with pytest.raises(tfckpt.CorruptionError, match=r"m\.safetensors: header is not JSON .*4300"):
        tfckpt.convert_checkpoint(source, str(tmp_path / "out.npz"))
    with pytest.raises(tfckpt.CorruptionError, match=r"m\.safetensors: header is not JSON"):
        open_reader(source)  # what ls, stats and diff read a safetensors file through


def test_npz_dtypes_member_with_a_huge_integer_literal_is_a_corruption_error(tmp_path: Path) -> None:
    source = hb.npz_dtypes_text(tmp_path / "in", '{"a": ' + HUGE_INTEGER + "}")
    with pytest.raises(tfckpt.CorruptionError, match=r"m\.npz: member '__tfckpt_dtypes__' is not JSON .*4300"):
        tfckpt.convert_checkpoint(source, str(tmp_path / "out.safetensors"))


def _open_seconds(path: str, repeats: int) -> float:
    return cpu_seconds(lambda: tfckpt.load_checkpoint(path).close(), repeats)


def test_v1_metadata_listing_one_name_many_times_opens_in_linear_time(tmp_path: Path) -> None:
    """Each listing of the name appended its slice to a copy of the slices so far (quadratic).
    The copies are cheap next to each record's own work, so the quadratic term shows only past
    ~10k records: the sweep reaches 32k, and the bound is tighter than the sweep's 1.3 (linear
    code measures ~1.0 here, the quadratic one ~1.4)."""
    small, large = 2048, 32768
    paths = {n: hb.v1_repeated_name(tmp_path / str(n), n) for n in (small, large)}

    def exponent_of(seconds: list[float]) -> float:
        return math.log(seconds[1] / seconds[0]) / math.log(large / small)
    seconds = confirmed(lambda: [_open_seconds(paths[small], 3), _open_seconds(paths[large], 1)],
                        lambda seconds: exponent_of(seconds) <= 1.2)
    exponent = exponent_of(seconds)
    assert exponent <= 1.2, f"open of {small} and {large} listings took {seconds} s CPU (exponent {exponent:.2f})"


@pytest.mark.parametrize(("build", "n"), [(hb.v1_high_rank, 70), (hb.v1_empty_huge_dim, 62)],
                         ids=["rank 70", "float32[0, 2**62]"])
def test_v1_tensor_numpy_cannot_hold_is_verified_and_refused_on_read(tmp_path: Path, build: hb.Builder,
                                                                     n: int) -> None:
    """The rule V2 bundles follow (``validate.array_problem``): such a tensor is verified (its
    values decoded flat, none missing) and reading it is an UnsupportedError."""
    path = build(tmp_path, n)
    report = tfckpt.verify_checkpoint(path)
    assert (report.ok, report.tensors_checked, report.problems) == (True, 1, [])
    with tfckpt.load_checkpoint(path) as reader, pytest.raises(tfckpt.UnsupportedError, match="numpy"):
        reader["x"]


def test_v1_verify_still_finds_missing_values_of_a_tensor_numpy_cannot_hold(tmp_path: Path) -> None:
    path = hb.v1_tensor(tmp_path, (1,) * 70, 0)  # one element listed, no value stored
    report = tfckpt.verify_checkpoint(path)
    assert [p.message for p in report.problems] == [
        f"{path}: slice 'x[{':'.join(['0,1'] * 70)}]': 0 values in float_val for float32{[1] * 70} (expected 1)"]


def _usual_block(runs: int = 8, per_run: int = 40, key_length: int = 120) -> bytes:
    """Block contents as TF lays them out (a whole key at each restart, one-byte lengths),
    each later key sharing all but its last byte with the previous: ~17x key bytes per byte."""
    entries, restarts, offset = [], [], 0
    for run in range(runs):
        restarts.append(offset)
        entries.append((0, bytes([65 + run]) * key_length, b""))
        offset += 3 + key_length
        for i in range(per_run):
            entries.append((key_length - 1, bytes([66 + i]), b""))
            offset += 4
    return hb.raw_block(entries, restarts)


@pytest.mark.parametrize("vectorised", [True, False], ids=["scan", "parse"])
def test_key_budget_is_taken_against_the_bytes_in_the_file(vectorised: bool) -> None:
    """A compressed block's contents are larger than its bytes in the file: the 32x key budget
    is the file's bytes' (both the vectorised scan and the entry parser)."""
    contents = _usual_block()
    if vectorised:
        assert len(scan_blocks([contents], ["b"]).texts) == 8 * 41  # as stored: within budget
        with pytest.raises(tfckpt.CorruptionError, match=r"b: entry at .* 32 times its \d+ bytes in the file"):
            scan_blocks([contents], ["b"], [len(contents) // 2])
    else:
        assert len(parse_block(contents, "b")) == 8 * 41
        with pytest.raises(tfckpt.CorruptionError, match=r"b: entry at .* 32 times its \d+ bytes in the file"):
            parse_block(contents, "b", len(contents) // 2)


ESC = "\x1b]52;c;ZXZpbA==\x07\x1b[2J"  # an OSC 52 clipboard write, BEL, clear screen
ESCAPED = repr(ESC)[1:-1]


def _hostile_saved_model(directory: Path) -> tuple[str, str, str]:
    """A SavedModel, a .meta file and a checkpoint whose names all carry terminal controls;
    returns (SavedModel directory, .meta path, checkpoint prefix)."""
    proto = saved_model_pb2.SavedModel()
    meta_graph = proto.meta_graphs.add()
    meta_graph.meta_info_def.tags.extend(["serve", "t" + ESC])
    signature = meta_graph.signature_def["serving" + ESC]
    signature.inputs["in" + ESC].name = "x:0" + ESC
    signature.method_name = "m" + ESC
    meta_graph.graph_def.node.add(name="n", op="Op" + ESC)
    graph = meta_graph.object_graph_def
    graph.nodes.add().children.add(node_id=1, local_name="f" + ESC)
    graph.nodes.add().function.concrete_functions.append("f_1" + ESC)
    arguments = graph.concrete_functions["f_1" + ESC].canonicalized_input_signature
    positional = arguments.tuple_value.values.add().tuple_value
    spec = positional.values.add().tensor_spec_value
    spec.name, spec.dtype = "x" + ESC, 1
    positional.values.add().string_value = "s" + ESC
    arguments.tuple_value.values.add().dict_value.fields["k" + ESC].string_value = "v" + ESC
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "saved_model.pb").write_bytes(proto.SerializeToString())
    (directory / "model.meta").write_bytes(meta_graph.SerializeToString())
    prefix = tfckpt.save({"w" + ESC: np.ones(3, np.float32)}, str(directory / "ck"))
    return str(directory), str(directory / "model.meta"), prefix


@pytest.mark.parametrize("command", [
    ["savedmodel", "show", "--dir", "{dir}", "--all"],
    ["savedmodel", "show", "--dir", "{dir}", "--tag_set", "serve,t" + ESC],
    ["savedmodel", "show", "--dir", "{dir}", "--tag_set", "serve,t" + ESC, "--signature_def", "serving" + ESC],
    ["meta", "show", "{meta}"],
    ["inspect", "--file_name", "{prefix}"],
], ids=["show --all", "show --tag_set", "show --signature_def", "meta show", "inspect"])
def test_savedmodel_meta_and_inspect_output_escapes_control_characters(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    directory, meta, prefix = _hostile_saved_model(tmp_path)
    assert cli.main([part.format(dir=directory, meta=meta, prefix=prefix) for part in command]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert ESCAPED in out  # the names are shown, escaped
