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
import re
import time
import warnings
from dataclasses import dataclass, field

from google.protobuf import text_format

from . import storage
from ._proto import checkpoint_state_pb2
from .arguments import path_argument
from .bundle.naming import DATA_SUFFIX_RE, index_filename
from .bundle.publish import publish_file
from .bundle.v1 import is_v1, sharded_pattern_files
from .coding import FIXED64
from .errors import CorruptionError, InvalidArgumentError, NoLatestCheckpointError, TfckptError
from .storage import LOCAL, PathLike
from .table.format import FOOTER_LENGTH, TABLE_MAGIC

__all__ = [
    "SECONDS_PER_HOUR",
    "STATE_FILENAME",
    "CheckpointState",
    "checkpoint_exists",
    "checkpoint_files",
    "decode_state",
    "encode_state",
    "generate_checkpoint_state",
    "get_checkpoint_mtimes",
    "get_checkpoint_state",
    "latest_checkpoint",
    "lies_within",
    "meta_graph_filename",
    "now",
    "prune_checkpoint",
    "read_state",
    "remove_checkpoint",
    "state_path",
    "update_checkpoint_state",
    "write_state",
]

STATE_FILENAME = "checkpoint"
SECONDS_PER_HOUR = 3600.0  # for keep_checkpoint_every_n_hours


def now() -> float:
    """The clock retention decisions use (one seam, so tests can move it)."""
    return time.time()


@dataclass
class CheckpointState:
    """Contents of a ``checkpoint`` file, with the same field names as TensorFlow's proto.

    Examples
    --------
    >>> get_checkpoint_state("examples/keras_mlp").model_checkpoint_path
    'examples/keras_mlp/ckpt-1'
    """

    model_checkpoint_path: str
    all_model_checkpoint_paths: list[str] = field(default_factory=list)
    all_model_checkpoint_timestamps: list[float] = field(default_factory=list)
    last_preserved_timestamp: float = 0.0


def state_path(directory: PathLike, latest_filename: str | None = None) -> str:
    return storage.join(os.fspath(directory), latest_filename or STATE_FILENAME)


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
        raise NoLatestCheckpointError(f"{where}: invalid checkpoint state (no model_checkpoint_path)")
    return CheckpointState(proto.model_checkpoint_path, list(proto.all_model_checkpoint_paths),
                           list(proto.all_model_checkpoint_timestamps), proto.last_preserved_timestamp)


def _resolve(directory: str, path: str) -> str:
    """A stored path as a usable prefix: relative to the state file's directory; an absolute
    path that no longer exists falls back to its basename next to the state file, because
    users move checkpoint folders.

    The path is resolved on the state file's own filesystem, never on another: a URL of
    another filesystem (in a local state file: any URL) is a relative path, as TensorFlow
    joins every non-absolute path onto the directory (so no other host is ever contacted),
    and an absolute local path in a remote state file (written before an upload) means its
    basename beside the state file, not a file on this machine's disk."""
    fs = storage.filesystem_for(directory)
    if fs.is_remote:
        if storage.same_filesystem(path, directory):
            return path  # a URL of the state file's own store
        if path.startswith("/") or LOCAL.isabs(path):
            return fs.join(directory, LOCAL.basename(path))
        return fs.join(directory, path)
    if not LOCAL.isabs(path):  # a URL is not absolute here either: joined, as TensorFlow does
        joined = LOCAL.join(directory, path)
        # `directory` was "": a URL-looking name stays a local relative path
        return joined if storage.same_filesystem(joined, ".") else LOCAL.join(".", joined)
    if not _exists(path):
        moved = LOCAL.join(directory, LOCAL.basename(path))
        if _exists(moved):
            return moved
    return path


def _exists(prefix: str) -> bool:
    """A V2 checkpoint (its ``.index``) or a V1 one (the file, or files matching the
    ``prefix-?????-of-NNNNN`` pattern TF1 records for sharded V1 saves)."""
    fs = storage.filesystem_for(prefix)
    return fs.exists(index_filename(prefix)) or is_v1(prefix, fs)


def read_state(directory: PathLike, latest_filename: str | None = None) -> CheckpointState | None:
    """The directory's state with paths resolved, or ``None`` if there is no state file.

    Strict: raises :class:`CorruptionError` if the file exists but cannot be parsed (see
    :func:`get_checkpoint_state` for TensorFlow's lenient behaviour).
    """
    directory = os.fspath(directory)
    path = state_path(directory, latest_filename)
    raw = storage.filesystem_for(path).read_bytes(path)
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptionError(f"{path}: checkpoint state file is not UTF-8 text: {exc}") from None
    state = decode_state(text, path)
    state.model_checkpoint_path = _resolve(directory, state.model_checkpoint_path)
    state.all_model_checkpoint_paths = [_resolve(directory, p) for p in state.all_model_checkpoint_paths]
    return state


def get_checkpoint_state(checkpoint_dir: PathLike, latest_filename: str | None = None) -> CheckpointState | None:
    """The ``checkpoint`` file of ``checkpoint_dir``, like ``tf.train.get_checkpoint_state``.

    Relative paths are joined onto ``checkpoint_dir``; an absolute path that no longer
    exists but whose basename does exist next to the state file (the directory was moved)
    is redirected there. Paths are resolved on the state file's filesystem only: a URL in a
    local state file is joined like a relative path (as TensorFlow does), and an absolute
    local path in a remote one means its basename beside it. Returns ``None`` when there is no state file, or (with a warning,
    as TensorFlow does) when it cannot be parsed. A file without ``model_checkpoint_path``
    raises :class:`CorruptionError` (a ``ValueError``, as TF's).

    Examples
    --------
    >>> get_checkpoint_state("no/such/dir") is None
    True
    """
    checkpoint_dir = path_argument(checkpoint_dir, "checkpoint_dir")
    try:
        return read_state(checkpoint_dir, latest_filename)
    except NoLatestCheckpointError:
        raise
    except CorruptionError as exc:
        warnings.warn(f"{exc}; checkpoint state ignored", RuntimeWarning, stacklevel=2)
        return None


def generate_checkpoint_state(save_dir: str, model_checkpoint_path: str,
                              all_model_checkpoint_paths: list[str] | None = None,
                              all_model_checkpoint_timestamps: list[float] | None = None,
                              last_preserved_timestamp: float | None = None) -> CheckpointState:
    """A state record as TensorFlow writes it: the latest path is last in the list, and
    relative paths are made relative to a relative ``save_dir``."""
    paths = list(all_model_checkpoint_paths or [])
    if not paths or paths[-1] != model_checkpoint_path:
        paths.append(model_checkpoint_path)
    timestamps = list(all_model_checkpoint_timestamps or [])
    if timestamps and len(timestamps) != len(paths):
        raise InvalidArgumentError(f"checkpoint timestamps must match checkpoint paths (got paths "
                                   f"{paths} and timestamps {timestamps})")
    fs = storage.filesystem_for(save_dir)
    if not fs.isabs(save_dir):
        base = save_dir or "."
        if not fs.isabs(model_checkpoint_path):
            model_checkpoint_path = fs.relpath(model_checkpoint_path, base)
        paths = [p if fs.isabs(p) else fs.relpath(p, base) for p in paths]
    return CheckpointState(model_checkpoint_path, paths, timestamps, last_preserved_timestamp or 0.0)


def update_checkpoint_state(save_dir: PathLike, model_checkpoint_path: str,
                            all_model_checkpoint_paths: list[str] | None = None,
                            latest_filename: str | None = None,
                            all_model_checkpoint_timestamps: list[float] | None = None,
                            last_preserved_timestamp: float | None = None,
                            *, save_relative_paths: bool = False) -> str:
    """Atomically rewrite ``save_dir``'s state file, like ``tf.train.update_checkpoint_state``.

    With ``save_relative_paths`` absolute paths are first made relative to ``save_dir`` (what
    TF2 and ``Saver(save_relative_paths=True)`` do). Returns the state file's path.

    Examples
    --------
    >>> import tfckpt, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> _ = tfckpt.save({"x": [1]}, os.path.join(d, "ckpt-1"))
    >>> _ = update_checkpoint_state(d, os.path.join(d, "ckpt-1"), save_relative_paths=True)
    >>> print(open(os.path.join(d, "checkpoint")).read(), end="")
    model_checkpoint_path: "ckpt-1"
    all_model_checkpoint_paths: "ckpt-1"
    """
    save_dir = path_argument(save_dir, "save_dir")
    model_checkpoint_path = path_argument(model_checkpoint_path, "model_checkpoint_path")
    paths = list(all_model_checkpoint_paths or [])
    if save_relative_paths:
        fs = storage.filesystem_for(save_dir)
        base = save_dir or "."
        if fs.isabs(model_checkpoint_path):
            model_checkpoint_path = fs.relpath(model_checkpoint_path, base)
        paths = [fs.relpath(p, base) if fs.isabs(p) else p for p in paths]
    state = generate_checkpoint_state(save_dir, model_checkpoint_path, paths,
                                      all_model_checkpoint_timestamps, last_preserved_timestamp)
    return write_state(save_dir, state, latest_filename)


def write_state(directory: PathLike, state: CheckpointState, latest_filename: str | None = None,
                *, sync: bool = True) -> str:
    """Atomically replace the state file with ``state`` as given; return its path.

    Remote stores get the file in one request, which object stores apply atomically.
    """
    path = state_path(directory, latest_filename)
    fs = storage.filesystem_for(path)
    if not fs.is_remote:
        if fs.normpath(path) == fs.normpath(fs.join(os.fspath(directory), state.model_checkpoint_path)):
            raise InvalidArgumentError(f"save path {state.model_checkpoint_path!r} conflicts with the path used "
                                       f"for the checkpoint state ({path}); use a different save path")
        fs.makedirs(fs.dirname(path) or ".")
    encoded = encode_state(state).encode("utf-8")
    publish_file(path, lambda out: out.write(encoded), sync=sync, fs=fs)
    return path


def checkpoint_exists(checkpoint_prefix: PathLike) -> bool:
    """Whether a checkpoint exists at the prefix (V2: its ``.index``; V1: the file itself).

    Examples
    --------
    >>> checkpoint_exists("examples/keras_mlp/ckpt-1"), checkpoint_exists("examples/keras_mlp/ckpt-2")
    (True, False)
    """
    return _exists(path_argument(checkpoint_prefix, "checkpoint_prefix"))


def checkpoint_files(checkpoint_prefix: str, meta_graph_suffix: str | None = "meta") -> list[str]:
    """Every existing file of a checkpoint, and nothing else: ``P.index``, the
    ``P.data-NNNNN-of-NNNNN`` shards, ``P.meta`` (unless ``meta_graph_suffix`` is ``None``), and
    for V1 the table file ``P`` (or, for TF1's sharded pattern ``P-?????-of-NNNNN``, the table
    files it matches). Only regular files count, and a V1 candidate only if it ends with the
    table magic number: a prefix that names some other file yields nothing."""
    fs = storage.filesystem_for(checkpoint_prefix)
    escaped = storage.glob_escape(checkpoint_prefix)
    base = _basename(checkpoint_prefix)
    data = [path for path in fs.glob(escaped + ".data-*-of-*")
            if DATA_SUFFIX_RE.fullmatch(_basename(path)[len(base):])]
    found = [index_filename(checkpoint_prefix), *sorted(data)]
    if meta_graph_suffix is not None:
        found.append(meta_graph_filename(checkpoint_prefix, meta_graph_suffix))
    found = [path for path in found if fs.isfile(path)]
    return found + [path for path in _v1_candidates(checkpoint_prefix, fs) if _is_table_file(path, fs)]


def _v1_candidates(checkpoint_prefix: str, fs: storage.Filesystem) -> list[str]:
    """What TF's V1 removal matches: the prefix itself, read as a glob (TF1 records a sharded V1
    save as ``P-?????-of-NNNNN``); only that one pattern is expanded here."""
    files = sharded_pattern_files(checkpoint_prefix, fs)
    return [checkpoint_prefix] if files is None else files


def _is_table_file(path: str, fs: storage.Filesystem) -> bool:
    """A regular file ending with the table footer's magic number (a V1 checkpoint file)."""
    if not fs.isfile(path):
        return False
    try:
        source = fs.open_source(path)
        try:
            size = source.size()
            return size >= FOOTER_LENGTH and source.read_at(size - FIXED64.size, FIXED64.size) == FIXED64.pack(
                TABLE_MAGIC)
        finally:
            source.close()
    except (OSError, TfckptError):
        return False


def meta_graph_filename(checkpoint_prefix: str, meta_graph_suffix: str = "meta") -> str:
    """``P.meta`` for prefix ``P``, a trailing V1 ``-?????-of-NNNNN`` shard spec removed."""
    return re.sub(r"-[\d\?]+-of-\d+$", "", checkpoint_prefix) + "." + meta_graph_suffix


def remove_checkpoint(checkpoint_prefix: PathLike, meta_graph_suffix: str = "meta") -> None:
    """Delete every file of a checkpoint, like ``tf.compat.v1.train.remove_checkpoint``.

    Deletes only what :func:`checkpoint_files` lists: a prefix naming a file that is not a
    checkpoint (``remove_checkpoint("notes.txt")``) deletes nothing but ``notes.txt.index``,
    ``.data-NNNNN-of-NNNNN`` and ``.meta`` files beside it, if there are any.

    Examples
    --------
    >>> import tfckpt, tempfile, os
    >>> prefix = tfckpt.save({"x": [1]}, os.path.join(tempfile.mkdtemp(), "ck"))
    >>> remove_checkpoint(prefix); checkpoint_exists(prefix)
    False
    """
    checkpoint_prefix = path_argument(checkpoint_prefix, "checkpoint_prefix")
    fs = storage.filesystem_for(checkpoint_prefix)
    for path in checkpoint_files(checkpoint_prefix, meta_graph_suffix):
        fs.remove(path)


def prune_checkpoint(checkpoint_prefix: str, directory: str, *, meta_graph_suffix: str | None = "meta") -> list[str]:
    """Retention's one deleter (``Saver``, ``CheckpointManager``): delete the checkpoint files
    of ``checkpoint_prefix`` (:func:`checkpoint_files`) if it lies in ``directory`` or below it,
    and return them. A prefix elsewhere (an absolute path, ``..``, a symlinked directory: the
    state file it came from may have been edited) is left alone with a ``RuntimeWarning``."""
    if not lies_within(checkpoint_prefix, directory):
        warnings.warn(f"not deleting old checkpoint {checkpoint_prefix}: it lies outside {directory or '.'}, "
                      f"the directory whose checkpoints are kept (check its state file)", RuntimeWarning,
                      stacklevel=3)
        return []
    files = checkpoint_files(checkpoint_prefix, meta_graph_suffix)
    fs = storage.filesystem_for(checkpoint_prefix)
    for path in files:
        fs.remove(path)
    return files


def lies_within(checkpoint_prefix: str, directory: str) -> bool:
    """Whether the directory entries of ``checkpoint_prefix``'s files are in ``directory`` or
    below it: the one rule for a prefix read from ``directory``'s state file, which may have
    been edited or come from elsewhere (retention deletes, ``convert`` writes, only what
    passes). Locally symlinks are resolved (deleting a symlinked file removes the link, in
    its directory; a symlinked directory leads elsewhere); URLs are compared by path."""
    parent = storage.dirname(checkpoint_prefix)
    if not storage.same_filesystem(checkpoint_prefix, directory or "."):
        return False
    fs = storage.filesystem_for(checkpoint_prefix)
    if not fs.is_remote:
        root, inner = fs.realpath(directory or "."), fs.realpath(parent or ".")
        return fs.commonpath([root, inner]) == root
    scheme, _, root = directory.partition("://")
    other, _, inner = parent.partition("://")
    root, inner = fs.normpath("/" + root), fs.normpath("/" + inner)
    return scheme == other and fs.commonpath([root, inner]) == root


def _basename(path: str) -> str:
    return storage.basename(path)


def get_checkpoint_mtimes(checkpoint_prefixes: list[str]) -> list[float]:
    """Modification times of the checkpoints that exist (of their ``.index`` for V2).

    Examples
    --------
    >>> len(get_checkpoint_mtimes(["examples/keras_mlp/ckpt-1", "examples/keras_mlp/gone"]))
    1
    """
    times = []
    for prefix in (path_argument(p, "checkpoint_prefixes") for p in checkpoint_prefixes):
        fs = storage.filesystem_for(prefix)
        for path in (index_filename(prefix), prefix):
            mtime = fs.mtime(path)
            if mtime is not None:
                times.append(mtime)
                break
    return times


def latest_checkpoint(checkpoint_dir: PathLike, latest_filename: str | None = None) -> str | None:
    """The prefix of the directory's latest checkpoint, or ``None`` (as TF's function).

    ``None`` also when the state file names a checkpoint whose files are gone, or when the
    state file cannot be parsed (with a warning).

    Examples
    --------
    >>> latest_checkpoint("no/such/dir") is None
    True
    """
    state = get_checkpoint_state(checkpoint_dir, latest_filename)
    if state is None:
        return None
    prefix = state.model_checkpoint_path
    return prefix if _exists(prefix) else None
