"""The file formats ``convert`` moves tensors between, each as a *source* and a *sink*.

A source lists its tensors (name, dtype, shape, and for TF2 checkpoints the object path and
whether it is optimizer state) and reads each one only when asked. A sink takes tensors one at
a time and either publishes the file whole (``finish``) or leaves nothing (``abort``).
Formats: ``checkpoint`` (a TensorFlow bundle), ``safetensors`` and ``npz``; a path says which
by its extension.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..dtypes import DType
from ..errors import InvalidArgumentError
from ..storage import PathLike

__all__ = ["FORMATS", "Sink", "SourceTensor", "detect_format", "open_sink", "open_source"]

FORMATS = ("checkpoint", "safetensors", "npz")


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
    """``safetensors`` or ``npz`` by extension, otherwise ``checkpoint``. A destination whose
    name has another extension (``out.txt``) is refused rather than guessed: it would become
    ``out.txt.index``."""
    name = os.fspath(path).lower()
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith(".npz"):
        return "npz"
    stem, dot, extension = os.path.basename(name.rstrip("/")).rpartition(".")
    if writing and dot and stem and not extension.startswith("ckpt") and not extension.isdigit():
        raise InvalidArgumentError(
            f"cannot tell which format to write from the name {os.fspath(path)!r}: use a name ending in "
            f".safetensors or .npz, a checkpoint prefix (e.g. out/model.ckpt), or say it with to= (--to)")
    return "checkpoint"


def open_source(path: PathLike, stack: ExitStack) -> list[SourceTensor]:
    """The tensors of the file at ``path`` (closed when ``stack`` closes)."""
    from . import checkpoint, npz, safetensors

    reader = {"safetensors": safetensors.source, "npz": npz.source}.get(detect_format(path), checkpoint.source)
    return reader(path, stack)


def open_sink(path: PathLike, fmt: str, planned: list[tuple[str, DType, tuple[int, ...]]]) -> Sink:
    """A sink writing format ``fmt`` at ``path``; ``planned`` lists (name, dtype, shape) of
    everything that will be added, in order (safetensors writes its header first)."""
    from . import checkpoint, npz, safetensors

    if fmt == "safetensors":
        return safetensors.SafetensorsSink(os.fspath(path), planned)
    if fmt == "npz":
        return npz.NpzSink(os.fspath(path))
    return checkpoint.CheckpointSink(os.fspath(path))
