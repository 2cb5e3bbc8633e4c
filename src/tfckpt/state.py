"""The ``checkpoint`` state file that names a directory's latest and kept checkpoints.

Text-format ``CheckpointState`` (``protos/tfckpt/_proto/checkpoint_state.proto``)::

    model_checkpoint_path: "ckpt-3"                  the latest checkpoint prefix
    all_model_checkpoint_paths: "ckpt-2"             every kept prefix, oldest first
    all_model_checkpoint_paths: "ckpt-3"
    all_model_checkpoint_timestamps: 1795314744.77   (optional) save time of each, seconds
    last_preserved_timestamp: 1795314700.5           (optional) CheckpointManager bookkeeping

Relative paths are relative to the state file's directory. The file is replaced atomically
(written to a temporary name, then renamed).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

from google.protobuf import text_format

from ._proto import checkpoint_state_pb2
from .bundle.naming import index_filename
from .errors import CorruptionError, InvalidArgumentError
from .io import PathLike

STATE_FILENAME = "checkpoint"


@dataclass
class CheckpointState:
    """Contents of a ``checkpoint`` file, with the same field names as TensorFlow's proto."""

    model_checkpoint_path: str
    all_model_checkpoint_paths: list[str] = field(default_factory=list)
    all_model_checkpoint_timestamps: list[float] = field(default_factory=list)
    last_preserved_timestamp: float = 0.0


def state_path(directory: PathLike, latest_filename: str | None = None) -> str:
    return os.path.join(os.fspath(directory), latest_filename or STATE_FILENAME)


def encode_state(state: CheckpointState) -> str:
    proto = checkpoint_state_pb2.CheckpointState(
        model_checkpoint_path=state.model_checkpoint_path,
        all_model_checkpoint_paths=state.all_model_checkpoint_paths,
        all_model_checkpoint_timestamps=state.all_model_checkpoint_timestamps,
        last_preserved_timestamp=state.last_preserved_timestamp)
    return text_format.MessageToString(proto)


def decode_state(text: str, where: str) -> CheckpointState:
    proto = checkpoint_state_pb2.CheckpointState()
    try:
        text_format.Merge(text, proto)
    except text_format.ParseError as exc:
        raise CorruptionError(f"{where}: unparsable checkpoint state file: {exc}") from exc
    if not proto.model_checkpoint_path:
        raise CorruptionError(f"{where}: invalid checkpoint state (no model_checkpoint_path)")
    return CheckpointState(proto.model_checkpoint_path, list(proto.all_model_checkpoint_paths),
                           list(proto.all_model_checkpoint_timestamps), proto.last_preserved_timestamp)


def _resolve(directory: str, path: str) -> str:
    """A stored path as a usable prefix: relative to the state file's directory; an absolute
    path that no longer exists falls back to its basename next to the state file, because
    users move checkpoint folders."""
    if not os.path.isabs(path):
        return os.path.join(directory, path)
    if not _exists(path):
        moved = os.path.join(directory, os.path.basename(path))
        if _exists(moved):
            return moved
    return path


def _exists(prefix: str) -> bool:
    return os.path.exists(index_filename(prefix)) or os.path.isfile(prefix)


def read_state(directory: PathLike, latest_filename: str | None = None) -> CheckpointState | None:
    """The directory's state with paths resolved, or ``None`` if there is no state file.

    Raises :class:`CorruptionError` if the file exists but cannot be parsed.
    """
    directory = os.fspath(directory)
    path = state_path(directory, latest_filename)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except UnicodeDecodeError as exc:
        raise CorruptionError(f"{path}: checkpoint state file is not UTF-8 text: {exc}") from None
    state = decode_state(text, path)
    state.model_checkpoint_path = _resolve(directory, state.model_checkpoint_path)
    state.all_model_checkpoint_paths = [_resolve(directory, p) for p in state.all_model_checkpoint_paths]
    return state


def write_state(directory: PathLike, state: CheckpointState, latest_filename: str | None = None,
                *, sync: bool = True) -> str:
    """Atomically replace the state file; return its path."""
    path = state_path(directory, latest_filename)
    if os.path.abspath(path) == os.path.abspath(state.model_checkpoint_path):
        raise InvalidArgumentError(f"the state file {path} would overwrite the checkpoint it names")
    temp = f"{path}.tmp{uuid.uuid4().hex}"
    try:
        with open(temp, "x", encoding="utf-8") as f:
            f.write(encode_state(state))
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.remove(temp)
        except FileNotFoundError:
            pass
        raise
    return path


def latest_checkpoint(checkpoint_dir: PathLike, latest_filename: str | None = None) -> str | None:
    """The prefix of the directory's latest checkpoint, or ``None`` (as TF's function).

    ``None`` also when the state file names a checkpoint whose files are gone. A state file
    that exists but is unparsable raises :class:`CorruptionError`.

    Examples
    --------
    >>> latest_checkpoint("no/such/dir") is None
    True
    """
    state = read_state(checkpoint_dir, latest_filename)
    if state is None:
        return None
    prefix = state.model_checkpoint_path
    return prefix if _exists(prefix) else None
