"""Paths that come from somewhere else: a ``checkpoint`` state file's entries, a destination
directory's state file, caller-supplied paths and slice indices (audit findings 01, 02, 09, 10).

A path read from a state file is literal (never a glob pattern), is resolved on the state
file's own filesystem (never on another one) and, where tfckpt writes through it, must lie in
the directory it was read from.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import tfckpt
from tfckpt.cli import main
from tfckpt.errors import InvalidArgumentError


def _state_file(directory: Path, model_checkpoint_path: str) -> None:
    (directory / "checkpoint").write_text(f"model_checkpoint_path: {model_checkpoint_path!r}\n".replace("'", '"'))


def _tensors(prefix: str) -> dict[str, list[int]]:
    return dict(tfckpt.list_variables(prefix))


# -- convert SRC DIR: the destination directory's state file -----------------------------------

@pytest.fixture
def victim(tmp_path: Path) -> str:
    return tfckpt.save({"precious": np.arange(3, dtype=np.float32)}, str(tmp_path / "victim" / "model"))


@pytest.fixture
def source(tmp_path: Path) -> str:
    return tfckpt.save({"new": np.zeros(2, np.float32)}, str(tmp_path / "src" / "ck"))


@pytest.mark.parametrize("how", ["relative", "absolute", "symlinked"])
def test_convert_refuses_a_destination_state_file_naming_a_checkpoint_outside(
        tmp_path: Path, victim: str, source: str, how: str) -> None:
    destination = tmp_path / "downloaded"
    destination.mkdir()
    if how == "symlinked":
        (destination / "link").symlink_to(tmp_path / "victim", target_is_directory=True)
    named = {"relative": "../victim/model", "absolute": victim, "symlinked": "link/model"}[how]
    _state_file(destination, named)
    with pytest.raises(InvalidArgumentError, match="outside the destination directory") as caught:
        tfckpt.convert_checkpoint(source, str(destination))
    assert str(destination / "checkpoint") in str(caught.value)
    assert _tensors(victim) == {"precious": [3]}
    assert main(["convert", source, str(destination)]) != 0
    assert _tensors(victim) == {"precious": [3]}
    assert sorted(os.listdir(destination)) == sorted(["checkpoint", *(["link"] if how == "symlinked" else [])])


def test_convert_still_writes_the_checkpoint_a_destination_state_file_names_inside(
        tmp_path: Path, source: str) -> None:
    destination = tmp_path / "run"
    inside = tfckpt.save({"old": np.ones(1, np.float32)}, str(destination / "sub" / "ckpt-7"))
    _state_file(destination, "sub/ckpt-7")
    tfckpt.convert_checkpoint(source, str(destination))
    assert _tensors(inside) == {"new": [2]}
