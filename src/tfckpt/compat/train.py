"""``tf.train`` (and ``tf.compat.v1.train``) for :mod:`tfckpt.compat`: the checkpoint-reading
functions, with TensorFlow's return types and errors.

A directory is resolved the way TensorFlow resolves it: through its ``checkpoint`` state file
(:func:`latest_checkpoint`); a directory without one raises :class:`NoCheckpointError`, a
``ValueError`` as TF's is. Anything else is a checkpoint prefix. Failures come as
``tf.errors`` classes (see :mod:`tfckpt.compat.errors`).
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

from .. import storage
from ..api import load_checkpoint as tfckpt_load_checkpoint
from ..bundle.reader import CheckpointReader as TfckptReader
from ..errors import NoCheckpointError
from ..state import CheckpointState
from ..state import checkpoint_exists as tfckpt_checkpoint_exists
from ..state import get_checkpoint_state as tfckpt_get_checkpoint_state
from ..state import latest_checkpoint as tfckpt_latest_checkpoint
from ..storage import PathLike
from .dtypes import DType, as_dtype
from .errors import translated
from .namespace import missing

__all__ = [
    "CheckpointReader",
    "NewCheckpointReader",
    "NoCheckpointError",
    "checkpoint_exists",
    "get_checkpoint_state",
    "latest_checkpoint",
    "list_variables",
    "load_checkpoint",
    "load_variable",
]


class CheckpointReader:
    """TensorFlow's ``CheckpointReader`` (what ``tf.train.load_checkpoint`` returns): its five
    methods over a :class:`tfckpt.CheckpointReader`, dtypes as :class:`tfckpt.compat.dtypes.DType`.

    Examples
    --------
    >>> from tfckpt.compat import tf
    >>> reader = tf.train.load_checkpoint("examples/keras_mlp")
    >>> reader.get_variable_to_dtype_map()["save_counter/.ATTRIBUTES/VARIABLE_VALUE"]
    tf.int64
    """

    def __init__(self, reader: TfckptReader) -> None:
        self._reader = reader

    def get_tensor(self, tensor_str: str) -> Any:
        with translated():
            return self._reader.get_tensor(tensor_str)

    def has_tensor(self, tensor_str: str) -> bool:
        return self._reader.has_tensor(tensor_str)

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        with translated():
            return self._reader.get_variable_to_shape_map()

    def get_variable_to_dtype_map(self) -> dict[str, DType]:
        with translated():
            return {name: as_dtype(dtype) for name, dtype in self._reader.get_variable_to_dtype_map().items()}

    def debug_string(self) -> bytes:
        with translated():
            return self._reader.debug_string()

    def close(self) -> None:
        """Close the checkpoint's files (TensorFlow's reader has no such method; tfckpt's does)."""
        self._reader.close()


def _checkpoint_filename(ckpt_dir_or_file: PathLike) -> str:
    path = os.fspath(ckpt_dir_or_file)
    if storage.filesystem_for(path).isdir(path):
        found = latest_checkpoint(path)
        if found is None:
            raise NoCheckpointError(f"Couldn't find 'checkpoint' file or checkpoints in given directory {path}")
        return found
    return path


def NewCheckpointReader(filepattern: PathLike) -> CheckpointReader:
    """``tf.compat.v1.train.NewCheckpointReader``: a reader for a checkpoint prefix."""
    with translated():
        return CheckpointReader(tfckpt_load_checkpoint(os.fspath(filepattern)))


def load_checkpoint(ckpt_dir_or_file: PathLike) -> CheckpointReader:
    """``tf.train.load_checkpoint``: a reader for a prefix, or for a directory's latest checkpoint."""
    return NewCheckpointReader(_checkpoint_filename(ckpt_dir_or_file))


def list_variables(ckpt_dir_or_file: PathLike) -> list[tuple[str, list[int]]]:
    """``tf.train.list_variables``: sorted ``(name, shape)`` pairs."""
    reader = load_checkpoint(ckpt_dir_or_file)
    try:
        return sorted(reader.get_variable_to_shape_map().items())
    finally:
        reader.close()


def load_variable(ckpt_dir_or_file: PathLike, name: str) -> Any:
    """``tf.train.load_variable``: one tensor's value (a trailing ``:0`` is ignored)."""
    reader = load_checkpoint(ckpt_dir_or_file)
    try:
        return reader.get_tensor(name.removesuffix(":0"))
    finally:
        reader.close()


def latest_checkpoint(checkpoint_dir: PathLike, latest_filename: str | None = None) -> str | None:
    """``tf.train.latest_checkpoint``: the prefix the state file names, if it exists; else ``None``."""
    with translated():
        return tfckpt_latest_checkpoint(checkpoint_dir, latest_filename)


def get_checkpoint_state(checkpoint_dir: PathLike, latest_filename: str | None = None) -> CheckpointState | None:
    """``tf.train.get_checkpoint_state``: the parsed state file (``model_checkpoint_path``,
    ``all_model_checkpoint_paths``), or ``None`` if there is none."""
    with translated():
        return tfckpt_get_checkpoint_state(checkpoint_dir, latest_filename)


def checkpoint_exists(checkpoint_prefix: PathLike) -> bool:
    """``tf.compat.v1.train.checkpoint_exists``: whether a checkpoint (V2 or V1) has this prefix."""
    with translated():
        return tfckpt_checkpoint_exists(checkpoint_prefix)


def __getattr__(name: str) -> NoReturn:
    missing("tf.train", name)
