"""`verify` on files TensorFlow wrote: every one passes (what TF writes and reads is never BAD),
and each rule still catches the damage it is for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES, FIXTURES

import tfckpt
from tfckpt.bundle.naming import data_filename, index_filename

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
    stored = [info for _, info in reader.raw_entries() if not info.slices and info.size]
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
