"""The public functions: thin, eager wrappers over the lazy reader and streaming writer."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

import numpy as np

from . import storage
from .arguments import name_argument, path_argument
from .asyncsave import AsyncSave, is_async, save_in_background
from .bundle.merge import merge_bundles
from .bundle.naming import (
    INDEX_SUFFIX,
    SAVED_MODEL_FILENAMES,
    SAVED_MODEL_VARIABLES,
    index_filename,
    prefix_of,
)
from .bundle.reader import CheckpointReader
from .bundle.v1 import V1Store, v1_files
from .bundle.writer import check_mapping, save_mapping
from .errors import CheckpointReplacedError, CorruptionError, NotFoundError
from .filetypes import describe, sniff_format
from .rules import Rules
from .state import latest_checkpoint
from .storage import Filesystem, PathLike
from .values import check_framework, from_numpy

__all__ = ["REOPEN_ATTEMPTS", "SOURCE_READERS", "Resolved", "T", "list_variables", "load",
           "load_checkpoint", "load_variable", "merge_checkpoints", "read_consistently", "register_source_reader",
           "resolve",
           "resolve_prefix", "save"]

REOPEN_ATTEMPTS = 5  # a checkpoint re-saved this often during one read is being rewritten in a loop

T = TypeVar("T")

# Readers of the other source formats (safetensors, .npz, Keras HDF5) by format name, registered
# by tfckpt.formats, which sits beside this module and imports it (so it cannot be imported here).
SOURCE_READERS: dict[str, Callable[[str], CheckpointReader]] = {}


def register_source_reader(fmt: str, read: Callable[[str], CheckpointReader]) -> None:
    """Make :func:`load_checkpoint` (and so :func:`load`, :func:`list_variables`,
    :func:`load_variable`) open a file (local or a URL) whose first bytes say it is ``fmt`` with ``read``."""
    SOURCE_READERS[fmt] = read


def read_consistently(path: PathLike, read: Callable[[CheckpointReader], T], **options: Any) -> T:
    """``read(reader)`` on a freshly opened checkpoint, again from scratch if a concurrent save
    replaced the checkpoint meanwhile, so the result never mixes two saves."""
    for attempt in range(REOPEN_ATTEMPTS):
        try:
            with load_checkpoint(path, **options) as reader:
                return read(reader)
        except CheckpointReplacedError:
            if attempt == REOPEN_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Resolved:
    """What :func:`resolve` found: the checkpoint's ``kind`` (``"v2"``: its ``.index`` was
    seen; ``"v1"``: its table ``files`` were; ``"unknown"``: named by a state file or a
    SavedModel, not looked at), the filesystem it is on and its prefix."""

    kind: str
    fs: Filesystem
    prefix: str
    files: tuple[str, ...] = ()


def resolve_prefix(path: PathLike) -> str:
    """The checkpoint prefix that ``path`` designates (see :func:`resolve`).

    Examples
    --------
    >>> resolve_prefix("examples/keras_mlp"), resolve_prefix("examples/keras_mlp/ckpt-1.index")
    ('examples/keras_mlp/ckpt-1', 'examples/keras_mlp/ckpt-1')
    """
    return resolve(path).prefix


def resolve(path: PathLike, *, index_missing: bool = False) -> Resolved:
    """The checkpoint that ``path`` designates, with what was learnt finding it.

    ``path`` may be a prefix, its ``.index`` or a ``.data-*`` file, a directory with a
    ``checkpoint`` state file (its latest checkpoint) or without one but with exactly one
    checkpoint in it, or a SavedModel directory (its ``variables/variables`` bundle); local
    or a URL (with fsspec installed). ``index_missing``: the caller has just seen that
    ``path.index`` does not exist (it is not asked again).

    Examples
    --------
    >>> found = resolve("examples/keras_mlp/ckpt-1.index")
    >>> found.kind, found.prefix, found.fs.name
    ('v2', 'examples/keras_mlp/ckpt-1', 'local')
    """
    path = path_argument(path, "path")
    fs = storage.filesystem_for(path)
    if fs.is_remote:
        path = path.rstrip("/")
    # The same steps for local paths and URLs, cheapest and most specific first (object
    # stores have no cheap "is this a directory").
    stripped = prefix_of(path)
    if stripped is not None and fs.exists(index_filename(stripped)):
        return Resolved("v2", fs, stripped)
    if not index_missing and fs.exists(index_filename(path)):
        return Resolved("v2", fs, path)
    if any(fs.isfile(fs.join(path, name)) for name in SAVED_MODEL_FILENAMES):
        return Resolved("unknown", fs, fs.join(path, *SAVED_MODEL_VARIABLES))
    latest = latest_checkpoint(path)
    if latest is not None:
        return Resolved("unknown", fs, latest)
    files = v1_files(path)
    if files:
        return Resolved("v1", fs, path, tuple(files))
    # No state file (tfckpt.save writes none): a directory holding exactly one checkpoint
    # means that one; with several, name them.
    found = sorted(prefix_of(index) or index for index in fs.glob(fs.join(storage.glob_escape(path),
                                                                          "*" + INDEX_SUFFIX)))
    if len(found) == 1:
        return Resolved("v2", fs, found[0])
    if fs.isdir(path):
        names = ", ".join(fs.basename(p) for p in found[:5])
        listing = f"; it holds {len(found)} checkpoints, name one: {names}" if found else ""
        raise NotFoundError(f"Couldn't find 'checkpoint' file or checkpoints in given directory {path}{listing}")
    stem, dot, _ = path.rpartition(".")  # `model.ckpt-3.data`, `model.ckpt-3.idx`: a suffix mistyped
    near = f"; did you mean the checkpoint {stem!r}?" if dot and fs.exists(index_filename(stem)) else ""
    raise NotFoundError(f"no checkpoint at {path!r}: neither {index_filename(path)} nor a "
                        f"checkpoint directory exists{near}")


def load_checkpoint(path: PathLike, *, verify_checksums: bool = True,
                    mmap: bool | Literal["c"] = False) -> CheckpointReader:
    """Open a checkpoint for reading, like ``tf.train.load_checkpoint``.

    Returns a :class:`CheckpointReader`: a read-only ``Mapping[str, numpy.ndarray]`` whose
    keys, shapes and dtypes come from the index; tensor data is read when asked for.

    Parameters
    ----------
    path:
        A checkpoint prefix, its ``.index``/``.data-*`` file, a directory with a
        ``checkpoint`` state file, or a SavedModel directory; or a local file of another
        format ``convert`` reads, told by its first bytes: safetensors, ``.npz``, Keras 3
        ``.weights.h5`` / ``.keras`` (as :func:`tfckpt.formats.open_reader` reads them: no
        checksums to verify, values read when asked for, ``mmap`` not applied).
    verify_checksums:
        Check every tensor's CRC32C when it is read (default ``True``). The index's (and a V1
        file's) block checksums are checked always.
    mmap:
        Return fixed-size tensors as read-only, zero-copy views of the memory-mapped data
        files (little-endian, aligned tensors; others are read as usual). ``"c"`` (as numpy's
        ``mmap_mode="c"``): writable copy-on-write views; a write stays in this process (shared
        by every read of this reader: reading that tensor again verifies it and raises
        :class:`ChecksumError`) and never reaches the file. A remote or V1 checkpoint cannot be
        mapped: :class:`UnsupportedError` says so.

    Raises
    ------
    NotFoundError
        Nothing to open at ``path``.
    CorruptionError
        The index is damaged or not a checkpoint index.

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> prefix = tfckpt.save({"w": np.eye(2, dtype=np.float32)}, os.path.join(tempfile.mkdtemp(), "m"))
    >>> with tfckpt.load_checkpoint(prefix) as reader:
    ...     print(reader.get_variable_to_shape_map(), reader["w"].dtype)
    {'w': [2, 2]} float32
    """
    path = path_argument(path, "path")
    fs = storage.filesystem_for(path)
    index_missing = False
    # Every question asked of remote storage is a round trip: try the likeliest reading (a
    # prefix) by fetching its index, and resolve only if there is none.
    # (The path after the host or bucket, split by hand: urlsplit refuses `[` in a host.)
    if fs.is_remote and prefix_of(path) is None and path.partition("://")[2].partition("/")[2].strip("/"):
        try:
            return CheckpointReader(path, verify_checksums=verify_checksums, opener=fs.open_source, mmap=mmap)
        except NotFoundError:
            index_missing = path == path.rstrip("/")  # resolve() would ask again for this very name
    found = resolve(path, index_missing=index_missing)
    if found.kind == "v1":
        return _open_v1(path, found, verify_checksums, mmap)
    if fs.is_remote:
        try:
            return CheckpointReader(found.prefix, verify_checksums=verify_checksums, opener=fs.open_source,
                                    mmap=mmap)
        except NotFoundError:  # no .index: a legacy V1 checkpoint, as TF decides
            return _open_v1(path, found, verify_checksums, mmap)
    # no .index: a legacy V1 checkpoint, as TF decides
    if found.kind == "unknown" and not fs.exists(index_filename(found.prefix)):
        return _open_v1(path, found, verify_checksums, mmap)
    return CheckpointReader(found.prefix, verify_checksums=verify_checksums, opener=fs.open_source, mmap=mmap)


def _open_v1(path: str, found: Resolved, verify_checksums: bool, mmap: bool | Literal["c"]) -> CheckpointReader:
    """The V1 checkpoint at ``found.prefix``; a file that is not one is read by its format's
    reader (safetensors, ``.npz``, Keras HDF5: :data:`SOURCE_READERS`), or named for what it is
    (a state or .meta file given by mistake) rather than for its bad magic."""
    prefix = found.prefix
    try:
        return CheckpointReader(V1Store(prefix, verify_checksums=verify_checksums, files=found.files or None, mmap=mmap))
    except CorruptionError as exc:
        # Asked only once the path failed as a checkpoint: a real checkpoint is never sniffed
        # (and a URL pays the round trip only now).
        fmt = sniff_format(path, remote=True)
        if fmt in SOURCE_READERS:
            return SOURCE_READERS[fmt](path)
        stripped = prefix_of(path)
        if stripped is not None and not path.endswith(INDEX_SUFFIX):
            raise CorruptionError(f"{path} is a data file of the checkpoint {stripped!r}, whose index "
                                  f"{index_filename(stripped)} is missing: the index lists the tensors, so "
                                  f"copy it too") from exc
        what = describe(path, remote=True)
        if what is None:
            raise
        raise CorruptionError(f"{path} is {what}") from exc


def list_variables(path: PathLike, *, verify_checksums: bool = True, mmap: bool = False) -> list[tuple[str, list[int]]]:
    """Sorted ``(name, shape)`` pairs of every tensor, like ``tf.train.list_variables``.

    Examples
    --------
    >>> import tfckpt
    >>> tfckpt.list_variables("examples/keras_mlp")[1]
    ('optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE', [])
    """
    with load_checkpoint(path, verify_checksums=verify_checksums, mmap=mmap) as reader:
        return sorted(reader.get_variable_to_shape_map().items())


def load_variable(path: PathLike, name: str, *, verify_checksums: bool = True, mmap: bool = False) -> Any:
    """One tensor's value, like ``tf.train.load_variable`` (a trailing ``:0`` is ignored).

    The value comes back as TensorFlow returns it (a numpy scalar for a scalar tensor,
    ``bytes`` for a scalar string). Besides keys, an unambiguous TF2 object path is accepted
    (``"save_counter"`` for ``"save_counter/.ATTRIBUTES/VARIABLE_VALUE"``); an unknown name
    raises :class:`NotFoundError` suggesting the closest keys.

    Examples
    --------
    >>> import tfckpt
    >>> int(tfckpt.load_variable("examples/keras_mlp", "save_counter/.ATTRIBUTES/VARIABLE_VALUE:0"))
    1
    """
    name = name_argument(name, "name").removesuffix(":0")
    return read_consistently(path, lambda reader: reader.get_tensor(reader.key_for(name)),
                             verify_checksums=verify_checksums, mmap=mmap)


def load(path: PathLike, *, verify_checksums: bool = True, mmap: bool = False,
         max_workers: int | None = None, framework: str = "numpy", rules: Rules | None = None) -> dict[str, Any]:
    """Every tensor of a checkpoint as a dict of numpy arrays, torch tensors or JAX arrays.

    One read plan covers the whole checkpoint (see :meth:`CheckpointReader.read_arrays`):
    neighbouring tensors are fetched together, so many small tensors cost a few reads and a
    remote checkpoint a few round trips; large ones are read on a pool of threads (positional
    reads and CRC32C release the GIL). ``max_workers=1`` reads serially.
    ``verify_checksums`` and ``mmap`` mean what they mean for :func:`load_checkpoint`.
    ``rules`` (:func:`tfckpt.load_rules`) renames and transforms the tensors as ``convert`` does.
    ``path`` may also be a safetensors, ``.npz`` or Keras 3 ``.weights.h5`` / ``.keras`` file
    (see :func:`load_checkpoint`).

    ``framework`` names the tensors' type as safetensors does: ``"numpy"``/``"np"`` (default),
    ``"pt"`` (also ``"torch"``, ``"pytorch"``) for torch tensors, ``"jax"``/``"flax"`` for JAX
    arrays. bfloat16 and float8 stay the framework's own dtypes (``torch.bfloat16``,
    ``torch.float8_e4m3fn``, ...). Torch tensors share the numpy arrays' memory. With
    ``mmap=True`` that is a private copy-on-write mapping of the data file, made for this call
    alone: no copy is made (bfloat16 and float8 are reinterpreted, not converted), pages are read
    when first touched, and the arrays and tensors are writable: a write copies the page it
    touches and never reaches the file. (Where the kernel refuses private writable maps, the
    arrays are read-only and torch tensors are copies.) String tensors (such as the
    object graph) stay numpy object arrays; a dtype the framework lacks (torch has no int4) is
    an :class:`InvalidArgumentError` naming the tensor. JAX narrows 64-bit values to 32 bits
    unless ``jax_enable_x64`` is on, as it does for any numpy input. The framework is imported
    only here.

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> prefix = tfckpt.save({"b": [1, 2], "a": [b"x"]}, os.path.join(tempfile.mkdtemp(), "m"))
    >>> sorted(tfckpt.load(prefix).items(), key=lambda kv: kv[0])
    [('a', array([b'x'], dtype=object)), ('b', array([1, 2], dtype=int32))]
    """
    target = check_framework(framework)

    def read_all(reader: CheckpointReader) -> dict[str, np.ndarray]:
        return dict(reader.read_arrays(reader, max_workers=max_workers, batch_bytes=sys.maxsize))

    # This call's reader is its own, so its copy-on-write views are shared with nobody.
    arrays = read_consistently(path, read_all, verify_checksums=verify_checksums, mmap="c" if mmap else False)
    if rules is not None:
        arrays = rules.apply(arrays)
    if target == "numpy":
        return arrays
    return {name: from_numpy(array, target, f"tensor {name!r} of {os.fspath(path)}") for name, array in arrays.items()}


@overload
def save(tensors: Mapping[str, Any], prefix: PathLike, *, sync: bool = True,
         asynchronous: Literal[False] = False) -> str: ...
@overload
def save(tensors: Mapping[str, Any], prefix: PathLike, *, sync: bool = True,
         asynchronous: Literal[True]) -> AsyncSave: ...
@overload
def save(tensors: Mapping[str, Any], prefix: PathLike, *, sync: bool = True,
         asynchronous: bool) -> str | AsyncSave: ...
def save(tensors: Mapping[str, Any], prefix: PathLike, *, sync: bool = True,
         asynchronous: bool = False) -> str | AsyncSave:
    """Write ``tensors`` as a checkpoint TensorFlow can read; return the prefix.

    Values may be anything ``numpy.asarray`` accepts (any memory layout or byte order;
    lists of ``bytes``/``str`` for string tensors), torch tensors (any dtype, bfloat16 and
    float8 included, ``requires_grad`` or not, any layout; other devices' tensors are copied
    to host memory) and JAX arrays. Every tensor is checked before anything
    is written; the files appear atomically, the ``.index`` last.

    Parameters
    ----------
    tensors:
        Names to values, written in this order.
    prefix:
        The checkpoint prefix; ``PREFIX.index`` and ``PREFIX.data-00000-of-00001`` are written.
    sync:
        fsync the files before publishing them (default), so a power loss cannot leave a
        published checkpoint with missing data.
    asynchronous:
        Return once every value is checked and snapshotted (copied, unless it cannot change),
        with an :class:`AsyncSave` whose ``wait()`` gives the prefix; the files are written in
        the background, one save per prefix at a time (see :mod:`tfckpt.asyncsave`).

    Raises
    ------
    InvalidArgumentError
        Empty or duplicate names, dtypes TensorFlow cannot store, object arrays holding
        anything but strings.

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> tfckpt.save({"w": np.zeros(3)}, os.path.join(tempfile.mkdtemp(), "ckpt")).endswith("ckpt")
    True
    """
    if is_async(None, asynchronous):
        check_mapping(tensors)
        return save_in_background(tensors, path_argument(prefix, "prefix"), sync=sync)
    return save_mapping(tensors, path_argument(prefix, "prefix"), sync=sync)


def merge_checkpoints(prefixes: list[PathLike], destination: PathLike, *, allow_missing_files: bool = False,
                      delete_old_dirs: bool = True) -> str:
    """Merge several checkpoints into one, like TensorFlow's ``MergeV2Checkpoints`` op.

    Data files are moved (renamed), not copied; the sources' indexes are deleted. Every name
    must come from one source, except partitioned tensors, whose slices are combined.

    What a merge deletes, as TensorFlow's op: the sources' indexes, and with ``delete_old_dirs``
    (the default, TF's attribute of that name) each source's directory if that leaves it empty
    (never the destination's directory); pass ``delete_old_dirs=False`` to keep the directories.
    ``allow_missing_files`` (TF's attribute too) skips sources that do not exist instead of
    raising; at least one must exist. The destination may be one of the sources (its
    checkpoint is then replaced by the merged one; TensorFlow loses both there); on object
    storage that is refused.

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> a = tfckpt.save({"a": [1]}, os.path.join(d, "tmp", "part-0"))
    >>> b = tfckpt.save({"b": [2]}, os.path.join(d, "tmp", "part-1"))
    >>> merged = tfckpt.merge_checkpoints([a, b], os.path.join(d, "model"))
    >>> sorted(tfckpt.load(merged))
    ['a', 'b']
    """
    return merge_bundles([path_argument(p, "prefixes") for p in prefixes], path_argument(destination, "destination"),
                         allow_missing_files=allow_missing_files, delete_old_dirs=delete_old_dirs)
