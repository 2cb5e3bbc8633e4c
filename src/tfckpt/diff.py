"""Comparing two checkpoints: names, dtypes, shapes and values, one tensor at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bundle.reader import CheckpointReader
from .formats import reading
from .storage import PathLike

__all__ = ["DiffReport", "ValueDiff", "diff_checkpoints"]


@dataclass(frozen=True)
class ValueDiff:
    """A tensor whose values differ: how many elements, and by how much at most.

    Examples
    --------
    >>> ValueDiff("w", mismatched=1, total=3, max_abs_diff=0.5).mismatched
    1
    """

    name: str
    mismatched: int
    total: int
    max_abs_diff: float | None  # None for strings and booleans


@dataclass
class DiffReport:
    """What :func:`diff_checkpoints` found: names only in one side, dtype, shape and value
    changes, and the names that are equal; ``same`` when nothing differs.

    Examples
    --------
    >>> report = diff_checkpoints("examples/keras_mlp", "examples/keras_mlp")
    >>> report.same, len(report.equal)
    (True, 16)
    """

    a: str
    b: str
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    dtype_changed: list[tuple[str, str, str]] = field(default_factory=list)
    shape_changed: list[tuple[str, list[int], list[int]]] = field(default_factory=list)
    value_changed: list[ValueDiff] = field(default_factory=list)
    equal: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.only_in_a or self.only_in_b or self.dtype_changed or self.shape_changed
                    or self.value_changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a, "b": self.b, "same": self.same, "only_in_a": self.only_in_a, "only_in_b": self.only_in_b,
            "dtype_changed": [{"name": n, "a": a, "b": b} for n, a, b in self.dtype_changed],
            "shape_changed": [{"name": n, "a": a, "b": b} for n, a, b in self.shape_changed],
            "value_changed": [{"name": d.name, "mismatched": d.mismatched, "total": d.total,
                               "max_abs_diff": d.max_abs_diff} for d in self.value_changed],
            "equal": len(self.equal),
        }


def _compare(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> tuple[int, float | None]:
    if a.dtype == object or a.dtype.kind == "b":
        mismatched = int(np.count_nonzero(a != b)) if a.size else 0
        return mismatched, None
    wide_a, wide_b = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64), \
        b.astype(np.complex128 if b.dtype.kind == "c" else np.float64)
    if rtol == 0 and atol == 0:
        unequal = ~((wide_a == wide_b) | (np.isnan(wide_a) & np.isnan(wide_b)))
    else:
        unequal = ~np.isclose(wide_a, wide_b, rtol=rtol, atol=atol, equal_nan=True)
    mismatched = int(np.count_nonzero(unequal))
    if not mismatched:
        return 0, 0.0
    return mismatched, float(np.max(np.abs(wide_a[unequal] - wide_b[unequal])))


def diff_checkpoints(a: PathLike | CheckpointReader, b: PathLike | CheckpointReader, *, rtol: float = 0.0,
                     atol: float = 0.0,
                     values: bool = True) -> DiffReport:
    """Compare two checkpoints (paths or readers); values exactly (NaN equals NaN) unless
    ``rtol``/``atol`` are given.

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> x = tfckpt.save({"w": np.zeros(3), "v": [1]}, os.path.join(d, "x"))
    >>> y = tfckpt.save({"w": np.array([0, 0, 1e-9]), "u": [2]}, os.path.join(d, "y"))
    >>> report = diff_checkpoints(x, y)
    >>> report.only_in_a, report.only_in_b, [v.name for v in report.value_changed]
    (['v'], ['u'], ['w'])
    >>> diff_checkpoints(x, y, atol=1e-6).value_changed
    []
    """
    with reading(a, "a") as left, reading(b, "b") as right:  # any source format
        report = DiffReport(left.prefix, right.prefix)
        names_a, names_b = set(left), set(right)
        report.only_in_a = sorted(names_a - names_b)
        report.only_in_b = sorted(names_b - names_a)
        compared = []
        for name in sorted(names_a & names_b):
            info_a, info_b = left.tensor_info(name), right.tensor_info(name)
            if info_a.dtype != info_b.dtype:
                report.dtype_changed.append((name, info_a.dtype.name, info_b.dtype.name))
            elif info_a.shape != info_b.shape:
                report.shape_changed.append((name, list(info_a.shape), list(info_b.shape)))
            elif not values or info_a.dtype.as_numpy_dtype is None:
                report.equal.append(name)
            else:
                compared.append(name)
        # Both sides in bulk (one read plan per batch each), in step, one batch in memory.
        for (name, value_a), (_, value_b) in zip(left.read_arrays(compared), right.read_arrays(compared)):
            mismatched, worst = _compare(value_a, value_b, rtol, atol)
            if mismatched:
                report.value_changed.append(ValueDiff(name, mismatched, int(value_a.size), worst))
            else:
                report.equal.append(name)
    report.equal.sort()
    return report
