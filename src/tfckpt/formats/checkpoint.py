"""TensorFlow checkpoints as a convert source (through the lazy reader) and sink (through the
streaming writer, which publishes atomically)."""

from __future__ import annotations

import functools
from contextlib import ExitStack

import numpy as np

from ..api import load_checkpoint
from ..bundle.graph import VARIABLE_VALUE
from ..bundle.writer import BundleWriter
from ..dtypes import DType
from ..storage import PathLike
from . import SourceTensor

__all__ = ["CheckpointSink", "source"]


def source(path: PathLike, stack: ExitStack) -> list[SourceTensor]:
    """Every tensor of the checkpoint, with its TF2 object path where the graph names one."""
    reader = stack.enter_context(load_checkpoint(path))
    objects = reader.object_tensors()  # a damaged graph raises: raw keys would hide it
    out = []
    read_many = reader.read_arrays  # one bound method, shared: convert groups tensors by it
    for info in reader.infos():
        described = objects.get(info.name)
        out.append(SourceTensor(
            info.name, info.dtype, info.shape, functools.partial(reader.read_array, info.name),
            optimizer_state=bool(described and described.optimizer_state),
            object_path="/".join(described.path) if described and described.attribute == VARIABLE_VALUE else None,
            read_many=read_many))
    return out


class CheckpointSink:
    def __init__(self, prefix: str) -> None:
        self._writer = BundleWriter(prefix)

    def add(self, name: str, value: np.ndarray, dtype: DType) -> None:
        self._writer.add(name, value, dtype)

    def finish(self) -> None:
        self._writer.finish()

    def abort(self) -> None:
        self._writer.abort()
