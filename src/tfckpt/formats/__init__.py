"""The file formats ``convert`` moves tensors between, each as a *source* and a *sink*.

A source lists its tensors (name, dtype, shape, and for TF2 checkpoints the object path and
whether it is optimizer state) and reads each one only when asked. A sink takes tensors one at
a time and either publishes the file whole (``finish``) or leaves nothing (``abort``).
Formats: ``checkpoint`` (a TensorFlow bundle), ``safetensors``, ``npz`` and, as a source only,
``keras`` (Keras HDF5 weights: ``.weights.h5``, ``.h5``, the weights of a ``.keras`` archive;
:mod:`tfckpt.keras` writes them, from a template); a path says which by its extension, a file being read also by its first bytes (a safetensors file named ``.bin``),
or the caller names it. :func:`open_reader` opens any source as a
:class:`~tfckpt.bundle.reader.CheckpointReader`, which is how ``ls``, ``tree``, ``stats`` and
``diff`` read every format.

A checkpoint destination that is an existing directory means the checkpoint inside it, as it
does for a source: the one its ``checkpoint`` state file names or its only checkpoint, else
``DIRECTORY/ckpt`` when it holds none; with several and no state file it is refused, and so is
a state file naming a checkpoint outside the directory.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .. import storage
from ..api import load_checkpoint, register_source_reader, resolve_prefix
from ..arguments import path_argument
from ..bundle.naming import prefix_of
from ..bundle.reader import CheckpointReader
from ..dtypes import DType
from ..errors import InvalidArgumentError, NotFoundError, UnsupportedError
from ..filetypes import sniff_format
from ..formatnames import FORMATS
from ..state import lies_within, state_path
from ..storage import PathLike

__all__ = ["DEFAULT_CHECKPOINT_NAME", "FORMATS", "MAX_NUMPY_BYTES", "MAX_NUMPY_RANK", "Sink", "SourceTensor",
           "check_numpy_shape", "detect_format", "known_format", "open_reader",
           "open_sink", "open_source", "reading", "sink_path"]

KERAS_EXTENSIONS = (".h5", ".hdf5", ".keras")  # Keras weights (.weights.h5), Keras 2 .h5, .keras archives
DEFAULT_CHECKPOINT_NAME = "ckpt"  # the prefix written into an empty destination directory
MAX_NUMPY_RANK = 64  # numpy's NPY_MAXDIMS
MAX_NUMPY_BYTES = (1 << 63) - 1  # numpy refuses arrays whose dims (zeros as ones) x itemsize exceed this


def check_numpy_shape(shape: tuple[int, ...], dtype: DType, where: str) -> None:
    """Raise :class:`UnsupportedError` unless numpy can make an array of this shape (rank at
    most 64; numpy multiplies the dimensions, zeros counted as ones, by the item size)."""
    if len(shape) > MAX_NUMPY_RANK:
        raise UnsupportedError(f"{where}: rank {len(shape)} is more than numpy's {MAX_NUMPY_RANK} dimensions")
    if math.prod(max(d, 1) for d in shape) * max(dtype.itemsize, 1) > MAX_NUMPY_BYTES:
        raise UnsupportedError(f"{where}: numpy cannot make an array of shape {list(shape)} ({dtype.name})")


@dataclass
class SourceTensor:
    """A tensor of a source, described before its value is read (``read()``)."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    read: Callable[[], np.ndarray]
    optimizer_state: bool = False
    object_path: str | None = None
    # Sources that read many tensors faster together (a checkpoint's read planner) give every
    # tensor the same callable: names in, (name, value) pairs out in order, read lazily.
    read_many: Callable[[list[str]], Iterator[tuple[str, np.ndarray]]] | None = None

    @property
    def nbytes(self) -> int:
        """Bytes of the value in memory (numpy's meaning); 0 per string element."""
        return math.prod(self.shape) * self.dtype.itemsize


class Sink(Protocol):
    """Where converted tensors go, one at a time; nothing appears until :meth:`finish`."""

    def add(self, name: str, value: np.ndarray, dtype: DType) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...


def detect_format(path: PathLike, *, writing: bool = False) -> str:
    """``safetensors`` or ``npz`` by extension (a file to read: else by its first bytes, unless
    it is named as a checkpoint's ``.index`` or ``.data-*`` file), otherwise ``checkpoint``. A destination whose name has another extension (``out.txt``) is
    refused rather than guessed: it would become ``out.txt.index``."""
    name = os.fspath(path).lower()
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(KERAS_EXTENSIONS):
        if writing:
            raise InvalidArgumentError(
                f"tfckpt writes Keras weights only from a template of the model's layout: "
                f"tfckpt convert CHECKPOINT {os.fspath(path)} --like TEMPLATE.weights.h5 (in Python: "
                f"tfckpt.keras.checkpoint_to_weights_h5(checkpoint, {os.fspath(path)!r}, like=TEMPLATE.weights.h5)); "
                f"otherwise convert writes .safetensors, .npz or a checkpoint")
        return "keras"
    if not writing:
        if prefix_of(os.fspath(path)) is not None:  # a checkpoint's own .index/.data file: never sniffed
            return "checkpoint"
        return sniff_format(os.fspath(path)) or "checkpoint"
    if storage.filesystem_for(os.fspath(path)).isdir(os.fspath(path)):
        return "checkpoint"  # the checkpoint inside it (sink_path)
    stem, dot, extension = storage.basename(name.rstrip("/")).rpartition(".")
    if dot and stem and not extension.startswith("ckpt") and not extension.isdigit():
        raise InvalidArgumentError(
            f"cannot tell which format to write from the name {os.fspath(path)!r}: use a name ending in "
            f".safetensors or .npz, a checkpoint prefix (e.g. out/model.ckpt), or say it with to= (--to)")
    return "checkpoint"


def known_format(fmt: str) -> str:
    """``fmt`` if it is one of :data:`FORMATS`, else :class:`InvalidArgumentError`."""
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return fmt


def open_source(path: PathLike, stack: ExitStack, fmt: str | None = None) -> list[SourceTensor]:
    """The tensors of the file at ``path`` (closed when ``stack`` closes), read as format
    ``fmt`` (default: :func:`detect_format`)."""
    from . import checkpoint, keras_h5, npz, safetensors

    fmt = known_format(fmt) if fmt is not None else detect_format(path)
    reader = {"safetensors": safetensors.source, "npz": npz.source, "keras": keras_h5.source}.get(fmt, checkpoint.source)
    return reader(path, stack)


def open_reader(path: PathLike, fmt: str | None = None) -> CheckpointReader:
    """Any source as a :class:`~tfckpt.bundle.reader.CheckpointReader`: a checkpoint through
    :func:`tfckpt.load_checkpoint`, a safetensors, ``.npz`` or Keras HDF5 file through its source (values
    read when asked for). ``fmt`` as for :func:`open_source`.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> np.savez(path, w=np.ones(2, np.float32))
    >>> with open_reader(path) as reader:
    ...     reader.get_variable_to_shape_map(), reader["w"].tolist()
    ({'w': [2]}, [1.0, 1.0])
    """
    from .store import SourceStore  # which imports this module

    fmt = known_format(fmt) if fmt is not None else detect_format(path)
    if fmt == "checkpoint":
        return load_checkpoint(path)
    stack = ExitStack()
    try:
        return CheckpointReader(SourceStore(os.fspath(path), open_source(path, stack, fmt), stack))
    except BaseException:
        stack.close()
        raise


# tfckpt.load_checkpoint (and load, list_variables) read a file of these formats through open_reader.
for _source_format in ("safetensors", "npz", "keras"):
    register_source_reader(_source_format, functools.partial(open_reader, fmt=_source_format))


@contextmanager
def reading(source: PathLike | CheckpointReader, argument: str = "path",
            opener: Callable[[str], CheckpointReader] = open_reader) -> Iterator[CheckpointReader]:
    """The reader every tool function (stats, tree, diff, verify) works on: ``source`` itself
    if it is a reader (left open: it is the caller's), else ``opener(source)`` (closed on
    exit); ``argument`` names the parameter in the message a wrong type gets."""
    if isinstance(source, CheckpointReader):
        yield source
        return
    with opener(path_argument(source, argument)) as reader:
        yield reader

def sink_path(path: PathLike, fmt: str) -> str:
    """Where a sink of format ``fmt`` named ``path`` writes: for a checkpoint, an existing
    directory means the checkpoint inside it (see the module docstring); a safetensors or npz
    file cannot be written over a directory."""
    path = os.fspath(path)
    fs = storage.filesystem_for(path)
    if not fs.isdir(path):
        return path
    if fmt != "checkpoint":
        raise InvalidArgumentError(f"the destination {path} is a directory: name the {fmt} file to write, "
                                   f"e.g. {storage.join(path, 'model.' + fmt)}")
    try:
        prefix = resolve_prefix(path)
    except NotFoundError as exc:
        if fs.glob(fs.join(storage.glob_escape(path), "*.index")):
            raise InvalidArgumentError(f"cannot tell which checkpoint of the destination directory to write: "
                                       f"{exc}") from None
        return storage.join(path, DEFAULT_CHECKPOINT_NAME)
    # Only a state file can point elsewhere; a downloaded or edited one must not make convert
    # overwrite a checkpoint outside the directory it was given (retention's rule, too).
    if not lies_within(prefix, path):
        raise InvalidArgumentError(f"{state_path(path)} names the checkpoint {prefix}, which lies outside the "
                                   f"destination directory {path}: refusing to write over it; name the prefix "
                                   f"to write instead (e.g. {storage.join(path, DEFAULT_CHECKPOINT_NAME)})")
    return prefix


def open_sink(path: PathLike, fmt: str, planned: list[tuple[str, DType, tuple[int, ...]]],
              metadata: dict[str, str] | None = None) -> Sink:
    """A sink writing format ``fmt`` at ``path`` (as :func:`sink_path` gives it); ``planned`` lists
    (name, dtype, shape) of everything that will be added, in order (safetensors writes its
    header first). ``metadata`` (safetensors and npz only): the string map of
    :mod:`tfckpt.formats.structure` to keep in the file."""
    from . import checkpoint, npz, safetensors

    fmt = known_format(fmt)
    if fmt == "keras":
        detect_format(os.fspath(path) + ".h5", writing=True)  # refused there, with what to use instead
    if fmt == "safetensors":
        return safetensors.SafetensorsSink(os.fspath(path), planned, metadata)
    if fmt == "npz":
        return npz.NpzSink(os.fspath(path), json.dumps(metadata) if metadata else None)
    return checkpoint.CheckpointSink(os.fspath(path))
