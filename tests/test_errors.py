"""Error kinds decided by type, not by searching a message's text."""

from __future__ import annotations

from pathlib import Path

import pytest

import tfckpt
from tfckpt.errors import NoLatestCheckpointError


def test_a_state_file_naming_no_latest_checkpoint_raises_its_own_kind(tmp_path: Path) -> None:
    (tmp_path / "checkpoint").write_text('all_model_checkpoint_paths: "x"\n')
    with pytest.raises(NoLatestCheckpointError, match="no model_checkpoint_path"):
        tfckpt.get_checkpoint_state(tmp_path)


def test_an_unparsable_state_file_is_ignored_whatever_its_path_says(tmp_path: Path) -> None:
    # The directory's name holds the words the old code searched the message for: it decided
    # by text and raised instead of warning.
    directory = tmp_path / "no model_checkpoint_path"
    directory.mkdir()
    (directory / "checkpoint").write_text("{{{ not a state file\n")
    with pytest.warns(RuntimeWarning, match="checkpoint state ignored"):
        assert tfckpt.get_checkpoint_state(directory) is None
