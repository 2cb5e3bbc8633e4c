"""Merging into a prefix that is one of the sources, and what a merge deletes.

TensorFlow's ``MergeV2Checkpoints`` with the destination among the sources returns success and
leaves no checkpoint at all (it deletes the sources' indexes after writing the merged one,
which has the destination's name; checked against TF 2.21). tfckpt makes that merge work: the
merged checkpoint is at the destination, the other sources are consumed. On object storage it
is refused before anything is touched.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import optional

import tfckpt
from tfckpt.errors import InvalidArgumentError
from tfckpt.verify import verify_checkpoint


def _two(tmp_path: Path) -> tuple[str, str]:
    a = tfckpt.save({"a": np.arange(3), "c": np.ones(2)}, tmp_path / "a")
    b = tfckpt.save({"b": np.arange(4.0)}, tmp_path / "b")
    return a, b


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("order", ["dest-first", "dest-last"])
def test_merging_into_one_of_the_sources_keeps_everything(tmp_path: Path, order: str) -> None:
    a, b = _two(tmp_path)
    sources = [a, b] if order == "dest-first" else [b, a]
    assert tfckpt.merge_checkpoints(sources, a) == a
    loaded = tfckpt.load(a)
    assert sorted(loaded) == ["a", "b", "c"]
    assert loaded["a"].tolist() == [0, 1, 2] and loaded["b"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert verify_checkpoint(a).ok
    assert _names(tmp_path) == ["a.data-00000-of-00002", "a.data-00001-of-00002", "a.index"]  # b consumed


def test_merging_a_checkpoint_into_itself_with_its_shards_renumbered(tmp_path: Path) -> None:
    """The merge numbers data files in order of first use: here shard 1 comes first, so the
    new shard 0 is the old shard 1, under the same names."""
    prefix = str(tmp_path / "a")
    with tfckpt.CheckpointWriter(prefix) as writer:
        writer.add("x", np.full(3, 7.0), shard=1)
        writer.add("y", np.full(5, 9.0), shard=0)
    for spelling in [prefix, str(tmp_path / "." / "a")]:
        tfckpt.merge_checkpoints([spelling], prefix)
        loaded = tfckpt.load(prefix)
        assert loaded["x"].tolist() == [7.0] * 3 and loaded["y"].tolist() == [9.0] * 5
        assert verify_checkpoint(prefix).ok
        assert _names(tmp_path) == ["a.data-00000-of-00002", "a.data-00001-of-00002", "a.index"]


def test_merging_into_a_source_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    a, b = _two(tmp_path)
    monkeypatch.setattr(os, "link", no_links)
    tfckpt.merge_checkpoints([a, b], a)
    assert sorted(tfckpt.load(a)) == ["a", "b", "c"] and verify_checkpoint(a).ok
    assert _names(tmp_path) == ["a.data-00000-of-00002", "a.data-00001-of-00002", "a.index"]


def test_a_failed_merge_into_a_source_leaves_both_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _two(tmp_path)
    before = _names(tmp_path)
    real_replace = os.replace

    def failing_commit(source: Any, target: Any) -> None:
        if str(target).endswith(".index"):
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_commit)
    with pytest.raises(OSError, match="injected"):
        tfckpt.merge_checkpoints([a, b], a)
    monkeypatch.undo()
    assert _names(tmp_path) == before  # no temporaries, nothing moved
    assert sorted(tfckpt.load(a)) == ["a", "c"] and sorted(tfckpt.load(b)) == ["b"]


def test_merging_into_a_source_on_object_storage_is_refused(tmp_path: Path) -> None:
    optional("fsspec")
    base = f"memory://merge-safety-{os.getpid()}"
    a = tfckpt.save({"a": np.arange(3)}, f"{base}/a")
    b = tfckpt.save({"b": np.arange(2)}, f"{base}/b")
    with pytest.raises(InvalidArgumentError, match="also one of the sources"):
        tfckpt.merge_checkpoints([a, b], f"{base}/./a")
    assert sorted(tfckpt.load(a)) == ["a"] and sorted(tfckpt.load(b)) == ["b"]


# -- issue 28.13: the sources' directories ---------------------------------------------------------

@pytest.mark.parametrize("delete_old_dirs", [True, False])
def test_a_merge_deletes_emptied_source_directories_unless_told_not_to(tmp_path: Path, delete_old_dirs: bool) -> None:
    a = tfckpt.save({"a": [1]}, tmp_path / "parts" / "part-0")
    b = tfckpt.save({"b": [2]}, tmp_path / "parts" / "part-1")
    tfckpt.merge_checkpoints([a, b], tmp_path / "merged", delete_old_dirs=delete_old_dirs)
    assert sorted(tfckpt.load(tmp_path / "merged")) == ["a", "b"]
    assert (tmp_path / "parts").exists() is not delete_old_dirs
    if not delete_old_dirs:
        assert list((tmp_path / "parts").iterdir()) == []


def test_merge_checkpoints_documents_what_it_deletes() -> None:
    doc = tfckpt.merge_checkpoints.__doc__ or ""
    for said in ["delete_old_dirs", "allow_missing_files", "empty", "directory"]:
        assert said in doc, said
