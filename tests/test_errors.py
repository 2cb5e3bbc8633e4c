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


def test_the_optimizer_filter_has_one_spelling(tmp_path: Path) -> None:
    """``optimizer=False`` leaves optimizer state out everywhere; convert's old
    ``drop_optimizer`` still works but warns."""
    import inspect
    import warnings

    examples = Path(__file__).resolve().parent.parent / "examples" / "keras_mlp"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = tfckpt.convert_checkpoint(examples, tmp_path / "a.npz", optimizer=False)
    with pytest.warns(DeprecationWarning, match="optimizer=False"):
        old = tfckpt.convert_checkpoint(examples, tmp_path / "b.npz", drop_optimizer=True)
    assert ("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE", "optimizer state") in report.skipped
    assert old.skipped == report.skipped and old.written == report.written
    for function in (tfckpt.convert_checkpoint, tfckpt.checkpoint_tree, tfckpt.CheckpointReader.nested):
        assert inspect.signature(function).parameters["optimizer"].default is True
