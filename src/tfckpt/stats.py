"""Summary statistics of a checkpoint's values: what ``tfckpt stats`` prints.

Per tensor: element count, bytes, min, max, mean and standard deviation of its finite values
(computed in float64, chunk by chunk, so a tensor never costs a float64 copy of itself), and
how many values are NaN, infinite or zero. Per module (an object path, or a key, without its
last ``depth`` components): parameters and bytes. Values are read in small batches through
the read planner, so memory holds about one large tensor at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .bundle.graph import OBJECT_GRAPH_KEY
from .bundle.reader import CheckpointReader
from .formats import reading
from .storage import PathLike

__all__ = ["CHUNK_ELEMENTS", "ModuleStats", "StatsReport", "TensorStats", "checkpoint_stats", "tensor_stats"]

CHUNK_ELEMENTS = 1 << 22  # values converted to float64 at a time
_READ_BATCH_BYTES = 16 << 20


@dataclass
class TensorStats:
    """One tensor's numbers; ``min``..``std`` are over its finite values (``None`` if there
    are none, or for strings and opaque dtypes).

    Examples
    --------
    >>> s = tensor_stats("b", np.array([1.0, np.inf]))
    >>> (s.max, s.inf, s.finite)
    (1.0, 1, False)
    """

    name: str
    path: str  # the TF2 object path, or the key
    dtype: str
    shape: tuple[int, ...]
    size: int
    nbytes: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    nan: int = 0
    inf: int = 0
    zeros: int = 0

    @property
    def finite(self) -> bool:
        return not (self.nan or self.inf)


@dataclass
class ModuleStats:
    """The sizes of one module: the tensors whose object path (or key) it prefixes.

    Examples
    --------
    >>> report = checkpoint_stats("examples/keras_mlp")
    >>> [(m.name, m.tensors) for m in report.modules][:1]
    [('(top level)', 1)]
    """

    name: str
    tensors: int = 0
    parameters: int = 0
    nbytes: int = 0


@dataclass
class StatsReport:
    """:func:`checkpoint_stats`' result: every tensor, every module, totals.

    Examples
    --------
    >>> report = checkpoint_stats("examples/keras_mlp")
    >>> report.parameters, len(report.tensors), report.non_finite
    (72, 15, [])
    """

    prefix: str
    tensors: list[TensorStats] = field(default_factory=list)
    modules: list[ModuleStats] = field(default_factory=list)

    @property
    def parameters(self) -> int:
        return sum(t.size for t in self.tensors)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def non_finite(self) -> list[TensorStats]:
        """The tensors holding NaN or infinite values."""
        return [t for t in self.tensors if not t.finite]


def tensor_stats(name: str, value: np.ndarray, path: str | None = None, dtype: str | None = None) -> TensorStats:
    """Statistics of one array (see the module docstring).

    Examples
    --------
    >>> s = tensor_stats("w", np.array([1.0, 3.0, np.nan, 0.0]))
    >>> s.min, s.max, s.mean, s.nan, s.zeros
    (0.0, 3.0, 1.3333333333333333, 1, 1)
    """
    out = TensorStats(name, path or name, dtype or str(value.dtype), tuple(value.shape), int(value.size),
                      int(value.nbytes) if value.dtype != object else sum(len(v) for v in value.flat))
    kind = value.dtype.kind
    if kind in "OSU" or value.size == 0:
        return out
    if kind == "V":  # bfloat16, float8, int4 (ml_dtypes): numbers, if they convert
        try:
            np.zeros(1, value.dtype).astype(np.float64)
        except (TypeError, ValueError):
            return out
    flat = value.reshape(-1)
    count, mean, m2 = 0, 0.0, 0.0
    low, high = math.inf, -math.inf
    for start in range(0, flat.size, CHUNK_ELEMENTS):
        chunk = flat[start:start + CHUNK_ELEMENTS]
        if kind == "c":
            out.nan += int(np.count_nonzero(np.isnan(chunk)))
            out.inf += int(np.count_nonzero(np.isinf(chunk)))
            out.zeros += int(np.count_nonzero(chunk == 0))
            continue  # no order on complex numbers
        real = chunk.astype(np.float64)  # bfloat16, float8, ints, bools alike
        finite = np.isfinite(real)
        out.nan += int(np.count_nonzero(np.isnan(real)))
        out.inf += int(real.size - np.count_nonzero(finite)) - int(np.count_nonzero(np.isnan(real)))
        out.zeros += int(np.count_nonzero(real == 0))
        values = real[finite] if not finite.all() else real
        if values.size == 0:
            continue
        low, high = min(low, float(values.min())), max(high, float(values.max()))
        # Chan et al.'s parallel update: merge this chunk's mean and M2 into the running ones.
        n = values.size
        chunk_mean = float(values.mean())
        chunk_m2 = float(np.square(values - chunk_mean).sum())
        total = count + n
        delta = chunk_mean - mean
        mean += delta * n / total
        m2 += chunk_m2 + delta * delta * count * n / total
        count = total
    if count:
        out.min, out.max, out.mean, out.std = low, high, mean, math.sqrt(m2 / count)
    return out


def _module_of(path: str, depth: int | None) -> str:
    parts = path.split("/")
    kept = parts[:-1] if depth is None else parts[:depth]
    return "/".join(kept) or "(top level)"


def checkpoint_stats(path: PathLike | CheckpointReader, *, depth: int | None = None,
                     progress: Callable[[int, int, int, int], None] | None = None) -> StatsReport:
    """Statistics of every tensor of the checkpoint at ``path`` (or read by the reader
    ``path``) and of its modules.

    ``depth`` groups modules by their first ``depth`` path components (default: each tensor's
    parent). TF2 checkpoints are grouped by object path (``model/encoder/layer_3``), others by
    key. ``progress(tensors_done, tensors_total, bytes_done, bytes_total)`` is called as
    tensors are read.

    Examples
    --------
    >>> report = checkpoint_stats("examples/keras_mlp")
    >>> report.parameters > 0, report.non_finite
    (True, [])
    """
    with reading(path) as reader:  # any source format (safetensors, npz too)
        return _stats(reader, depth, progress)


def _stats(reader: CheckpointReader, depth: int | None,
           progress: Callable[[int, int, int, int], None] | None) -> StatsReport:
    paths = reader.object_paths()  # a damaged graph raises: stats by raw keys would hide it
    names = [name for name in reader if name != OBJECT_GRAPH_KEY  # metadata, not a value
             and reader.tensor_info(name).dtype.as_numpy_dtype is not None]
    total = sum(reader.tensor_info(name).size for name in names)
    report = StatsReport(reader.prefix)
    modules: dict[str, ModuleStats] = {}
    done = 0
    for name, value in reader.read_arrays(names, batch_bytes=_READ_BATCH_BYTES):
        info = reader.tensor_info(name)
        stats = tensor_stats(name, value, paths.get(name, name), info.dtype.name)
        report.tensors.append(stats)
        module = modules.setdefault(_module_of(stats.path, depth), ModuleStats(_module_of(stats.path, depth)))
        module.tensors += 1
        module.parameters += stats.size
        module.nbytes += stats.nbytes
        done += info.size
        if progress is not None:
            progress(len(report.tensors), len(names), done, total)
    report.modules = sorted(modules.values(), key=lambda m: m.name)
    return report
