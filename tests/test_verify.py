"""`verify` on files TensorFlow wrote: every one passes (what TF writes and reads is never BAD),
and each rule still catches the damage it is for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, FIXTURES

import tfckpt
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.cli import main

TF_WRITTEN = sorted(str(p)[: -len(".index")] for p in [*FIXTURES.rglob("*.index"), *EXAMPLES.rglob("*.index")])
V1_WRITTEN = [str(FIXTURES / "v1_single" / "model.ckpt-5"), str(FIXTURES / "v1_sharded" / "model.ckpt-5-?????-of-00003")]


def short(prefix: str) -> str:
    return str(Path(prefix).relative_to(Path(prefix).parents[1]))


@pytest.mark.parametrize("prefix", TF_WRITTEN + V1_WRITTEN, ids=short)
def test_every_checkpoint_tensorflow_wrote_verifies_clean(prefix: str) -> None:
    report = tfckpt.verify_checkpoint(prefix)
    assert report.ok, report.problems
    assert report.tensors_checked == len(tfckpt.load_checkpoint(prefix))


def test_an_object_graph_key_without_a_tensor_is_a_note_not_a_problem() -> None:
    """TensorFlow's UninitializedVariable: the graph names the key, SaveV2 wrote no tensor."""
    report = tfckpt.verify_checkpoint(FIXTURES / "uninitialized")
    assert report.ok
    assert [(n.key, "no tensor for it" in n.message) for n in report.notes] == [
        ("sub_module/uninitialized_variable/.ATTRIBUTES/VARIABLE_VALUE", True)]
    assert tfckpt.load(FIXTURES / "uninitialized")["v/.ATTRIBUTES/VARIABLE_VALUE"].tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("prefix", TF_WRITTEN, ids=short)
def test_damage_to_any_tensorflow_checkpoint_is_reported(tmp_path: Path, prefix: str) -> None:
    reader = tfckpt.load_checkpoint(prefix)
    stored = [info for _, info in reader.store.entries() if not info.slices and info.size]
    num_shards = reader.header.num_shards
    reader.close()
    copy = tmp_path / "ck"
    shutil.copy(index_filename(prefix), index_filename(str(copy)))
    for shard in range(num_shards):
        shutil.copy(data_filename(prefix, shard, num_shards), data_filename(str(copy), shard, num_shards))
    victim = stored[len(stored) // 2]
    data = Path(data_filename(str(copy), victim.shard_id, num_shards))
    raw = bytearray(data.read_bytes())
    raw[victim.offset + victim.size - 1] ^= 0x10  # the tensor's last byte
    data.write_bytes(bytes(raw))
    report = tfckpt.verify_checkpoint(copy)
    assert not report.ok
    assert [p.key for p in report.problems] == [victim.name]
    with data.open("ab") as out:
        out.write(b"\0")  # and bytes after the last tensor: another save's data file
    assert any("different saves" in p.message for p in tfckpt.verify_checkpoint(copy).problems)


def copy_of(source: Path, tmp_path: Path) -> Path:
    shutil.copytree(source, tmp_path / source.name)
    return tmp_path / source.name


def test_a_damaged_object_graph_is_one_problem_on_one_line(tmp_path: Path) -> None:
    directory = copy_of(EXAMPLES / "keras_mlp", tmp_path)
    reader = tfckpt.load_checkpoint(directory)
    graph = reader.tensor_info("_CHECKPOINTABLE_OBJECT_GRAPH")
    data = Path(data_filename(reader.prefix, 0, 1))
    reader.close()
    raw = bytearray(data.read_bytes())
    raw[graph.offset + 10] ^= 0x01
    data.write_bytes(bytes(raw))
    report = tfckpt.verify_checkpoint(directory)
    assert [p.key for p in report.problems] == ["_CHECKPOINTABLE_OBJECT_GRAPH"]
    line = str(report.problems[0])
    assert "checksum mismatch" in line
    for place in (str(data), "'_CHECKPOINTABLE_OBJECT_GRAPH'", f"offset {graph.offset}"):
        assert line.count(place) == 1, (place, line)  # each place named once


def test_a_missing_data_file_is_one_problem_naming_the_keys_it_held(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = str(tmp_path / "m")
    names = [f"layer{i}/w" for i in range(10)]
    tfckpt.save({name: np.full(3, i, np.float32) for i, name in enumerate(names)}, prefix)
    Path(data_filename(prefix, 0, 1)).unlink()
    report = tfckpt.verify_checkpoint(prefix)
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert problem.file == data_filename(prefix, 0, 1) and list(problem.keys) == names
    line = str(problem)
    assert "missing" in line and line.count(problem.file) == 1
    assert "10 keys affected: layer0/w, layer1/w" in line and "... and 5 more" in line
    assert "layer9/w" not in line  # a bounded list; `keys` has them all
    assert main(["verify", prefix]) == 1
    out = capsys.readouterr().out
    assert out.count("BAD") == 1 and "# 1 problem:" in out
    assert main(["verify", "--json", prefix]) == 1
    assert json.loads(capsys.readouterr().out)["problems"][0]["keys"] == names
