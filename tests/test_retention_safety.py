"""Deleting checkpoints deletes checkpoint files only, and retention only inside its directory.

``remove_checkpoint`` removes the files TensorFlow's removal names (``P.index``,
``P.data-NNNNN-of-NNNNN``, ``P.meta``) and a V1 checkpoint's table files, nothing else at the
prefix. ``Saver`` and ``CheckpointManager`` take the paths they prune from a state file that
anyone may have edited (or that TF1's ``recover_last_checkpoints`` idiom reads back): whatever
it names outside the directory they manage, by ``..``, an absolute path or a symlinked
directory, is left alone with a warning.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES

import tfckpt
from tfckpt.state import get_checkpoint_state, prune_checkpoint


def _checkpoint(prefix: Path, value: float = 1.0) -> str:
    return tfckpt.save({"w": np.full(3, value, np.float32)}, prefix)


def _write_state(directory: Path, paths: list[str], timestamps: list[float] | None = None) -> None:
    lines = [f'model_checkpoint_path: "{paths[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{p}"' for p in paths]
    lines += [f"all_model_checkpoint_timestamps: {t}" for t in timestamps or []]
    (directory / "checkpoint").write_text("\n".join(lines) + "\n")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the managed one, holding a user's file and a whole checkpoint."""
    elsewhere = tmp_path / "outside"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("precious")
    _checkpoint(elsewhere / "ck-1")
    return elsewhere


def _untouched(elsewhere: Path) -> None:
    assert (elsewhere / "notes.txt").read_text() == "precious"
    assert tfckpt.load(elsewhere / "ck-1")["w"].tolist() == [1.0, 1.0, 1.0]


# -- remove_checkpoint: checkpoint files only ----------------------------------------------------

def test_remove_checkpoint_does_not_delete_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("precious")
    tfckpt.remove_checkpoint(notes)
    assert notes.read_text() == "precious"


def test_remove_checkpoint_deletes_the_v2_files_and_nothing_named_like_them(tmp_path: Path) -> None:
    prefix = tmp_path / "ck"
    with tfckpt.CheckpointWriter(prefix) as writer:
        writer.add("a", np.zeros(2), shard=0)
        writer.add("b", np.zeros(2), shard=1)
    (tmp_path / "ck.meta").write_bytes(b"")
    keep = ["ck.data-0000a-of-00002", "ck.data-00000-of-00002.bak", "ck.indexes", "ck"]
    for name in keep:
        (tmp_path / name).write_text("mine")
    (tmp_path / "ck.data-00009-of-00010").mkdir()  # a directory is not a checkpoint file either
    tfckpt.remove_checkpoint(prefix)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, "ck.data-00009-of-00010"])


@pytest.mark.parametrize(("fixture", "prefix"), [("v1_single", "model.ckpt-5"),
                                                 ("v1_sharded", "model.ckpt-5-?????-of-00003")])
def test_remove_checkpoint_deletes_v1_table_files(tmp_path: Path, fixture: str, prefix: str) -> None:
    directory = tmp_path / fixture
    shutil.copytree(FIXTURES / fixture, directory)
    (directory / "model.ckpt-5-0000a-of-00003").write_text("mine")  # matches TF's glob, not a table
    tfckpt.remove_checkpoint(directory / prefix)
    assert sorted(p.name for p in directory.iterdir()) == ["checkpoint", "model.ckpt-5-0000a-of-00003"]


# -- the retention deleter -------------------------------------------------------------------------

def test_prune_checkpoint_deletes_inside_and_refuses_outside(tmp_path: Path, outside: Path) -> None:
    managed = tmp_path / "run"
    inside = _checkpoint(managed / "ck-1")
    nested = _checkpoint(managed / "sub" / "ck-1")
    assert prune_checkpoint(inside, str(managed))
    assert prune_checkpoint(nested, str(managed))
    assert not os.listdir(managed / "sub") and sorted(os.listdir(managed)) == ["sub"]
    (managed / "link").symlink_to(outside, target_is_directory=True)
    for hostile in [str(outside / "ck-1"), str(managed / ".." / "outside" / "ck-1"), str(managed / "link" / "ck-1"),
                    str(managed / ".." / "outside" / "notes.txt")]:
        with pytest.warns(RuntimeWarning, match="outside"):
            assert prune_checkpoint(hostile, str(managed)) == []
    _untouched(outside)


def test_a_symlinked_checkpoint_file_loses_its_link_not_its_target(tmp_path: Path, outside: Path) -> None:
    managed = tmp_path / "run"
    managed.mkdir()
    (managed / "ck-1.index").symlink_to(outside / "ck-1.index")
    (managed / "ck-1.data-00000-of-00001").symlink_to(outside / "ck-1.data-00000-of-00001")
    prune_checkpoint(str(managed / "ck-1"), str(managed))
    assert os.listdir(managed) == []
    _untouched(outside)


# -- Saver and CheckpointManager over hostile state files -------------------------------------------

def _skipped(caught: list[warnings.WarningMessage]) -> int:
    return sum(w.category is RuntimeWarning and "outside" in str(w.message) for w in caught)


def _hostile_paths(managed: Path, outside: Path) -> list[str]:
    (managed / "link").symlink_to(outside, target_is_directory=True)
    return ["../outside/notes.txt", str(outside / "ck-1"), "../outside/ck-1", "link/ck-1"]


def test_saver_retention_never_deletes_outside_its_directory(tmp_path: Path, outside: Path) -> None:
    managed = tmp_path / "run"
    managed.mkdir()
    _write_state(managed, _hostile_paths(managed, outside))
    saver = tfckpt.Saver({"w": np.zeros(3, np.float32)}, max_to_keep=1)
    # TF1's idiom after a restart: take the kept checkpoints back from the state file.
    state = get_checkpoint_state(managed)
    assert state is not None
    saver.recover_last_checkpoints(state.all_model_checkpoint_paths)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(6):
            saver.save(str(managed / "model"), global_step=step)
    assert _skipped(caught) == 4
    _untouched(outside)
    # One queued checkpoint is handled per save (as TF's Saver): the four hostile ones, then its own.
    assert sorted(p.name for p in managed.glob("model-*.index")) == [f"model-{s}.index" for s in range(2, 6)]


def test_manager_retention_never_deletes_outside_its_directory(tmp_path: Path, outside: Path) -> None:
    managed = tmp_path / "run"
    managed.mkdir()
    hostile = _hostile_paths(managed, outside)
    _write_state(managed, hostile, [tfckpt.state.now()] * len(hostile))
    manager = tfckpt.CheckpointManager(tfckpt.Checkpoint(w=tfckpt.Variable(np.zeros(3))), managed, max_to_keep=1)
    assert len(manager.checkpoints) == len(hostile)  # taken over from the state file, as TF does
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            manager.save()
    assert _skipped(caught) == 4
    _untouched(outside)
    assert sorted(p.name for p in managed.glob("ckpt-*.index")) == ["ckpt-3.index"]
