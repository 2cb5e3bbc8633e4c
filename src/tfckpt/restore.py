"""Restoring values into variables and arrays: all of them, or none.

A restore runs in two steps. :func:`plan_restore` checks every target against the index
(name present, shape, dtype, writable, and for fixed-width string arrays that every value
fits) and then reads every value, CRC-verified, converted to exactly what the target
stores. Nothing is assigned until all of that has succeeded; :func:`commit_restore` then
assigns, which cannot fail, so a failed restore leaves every target byte for byte as it was.
``Saver``, ``Checkpoint`` and ``CheckpointManager`` restore through here.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .bundle.reader import CheckpointReader
from .dtypes import STRING, DType, as_dtype
from .errors import InvalidArgumentError, NotFoundError, TfckptError
from .values import assign_into, is_restorable, is_tensor, numpy_dtype_of
from .variables import Variable

__all__ = ["PlannedRestore", "Target", "commit_restore", "plan_restore", "target_dtype"]

Target = Variable | np.ndarray  # and torch tensors (restored in place) and JAX arrays (saved only)


@dataclass(frozen=True)
class PlannedRestore:
    """Values read and checked, ready to be assigned to their targets."""

    assignments: tuple[tuple[Target, np.ndarray], ...]


def target_dtype(target: Target) -> DType:
    """The TF dtype a target holds (numpy strings of any kind count as ``string``)."""
    if isinstance(target, Variable):
        return target.dtype
    return as_dtype(numpy_dtype_of(target) if is_restorable(target) else target.dtype)


def _fit_strings(value: np.ndarray, target: np.ndarray, where: str) -> np.ndarray:
    """String values as ``target`` stores them, refusing what a fixed width would change."""
    if target.dtype.kind == "O":
        return value
    if target.dtype.kind == "S":
        width = target.dtype.itemsize
        changed = [v for v in value.flat if len(v) > width or v.endswith(b"\0")]
    else:  # "U": text; the stored bytes must be UTF-8 and fit in the width
        width = target.dtype.itemsize // 4
        try:
            decoded = [v.decode("utf-8") for v in value.flat]
        except UnicodeDecodeError:
            raise InvalidArgumentError(f"{where}: the checkpoint's strings are not UTF-8 text, so they cannot "
                                       f"go into a {target.dtype} array; restore into an object array "
                                       f"(dtype=object) instead") from None
        changed = [v for v in decoded if len(v) > width or v.endswith("\0")]
    if changed:
        longest = max(len(v) for v in changed)
        raise InvalidArgumentError(f"{where}: a {target.dtype} array would truncate or alter the checkpoint's "
                                   f"strings (one has {longest} characters); restore into an object array "
                                   f"(dtype=object) instead")
    return value.astype(target.dtype)


def _label(name: str, labels: Mapping[str, str] | None) -> str:
    return f"{labels[name]!r} (key {name!r})" if labels and name in labels else repr(name)


def _partition_hint(reader: CheckpointReader, name: str) -> str:
    """For ``embedding/part_0`` when the checkpoint holds ``embedding`` partitioned (TF1's
    PartitionedVariable, saved as one key with slices): say so, and how to get it."""
    match = re.fullmatch(r"(.+)/part_(\d+)", name)
    if match is None or match.group(1) not in reader:
        return ""
    base, index = match.group(1), int(match.group(2))
    info = reader.tensor_info(base)
    if not info.slices:
        return ""
    pieces = sorted(info.slices, key=lambda piece: piece.extents)  # part_i is the i-th along the cut axis
    this = f"; part_{index} is slice {str(pieces[index])!r}" if index < len(pieces) else ""
    example = str(pieces[min(index, len(pieces) - 1)])
    return (f"; {base!r} is stored there as a partitioned variable ({len(pieces)} slices of full shape "
            f"{list(info.shape)}, {info.dtype.name}{this}): restore it whole under the key {base!r} into a "
            f"{list(info.shape)} target, or read one part with "
            f"tfckpt.load_checkpoint(...).read_slice({base!r}, {example!r}) (or get_slice({base!r})[...])")


def plan_restore(reader: CheckpointReader, targets: Mapping[str, Target],
                 labels: Mapping[str, str] | None = None) -> PlannedRestore:
    """Check every target, then read every value; raise before anything is assigned.

    ``targets`` maps checkpoint keys to variables or writable arrays; ``labels`` names them
    in messages (e.g. by object path) instead of by key.
    """
    checked: list[tuple[str, Target, str]] = []
    for name, target in targets.items():
        where = f"cannot restore {_label(name, labels)} from checkpoint {reader.prefix}"
        if name not in reader:
            raise NotFoundError(f"{where}: Key {name} not found in checkpoint{_partition_hint(reader, name)}")
        info = reader.tensor_info(name)
        shape = tuple(target.shape)
        if info.shape != shape:
            raise InvalidArgumentError(f"{where}: the checkpoint has shape {list(info.shape)}, the variable has "
                                       f"shape {list(shape)}")
        try:
            dtype = target_dtype(target)
        except TfckptError:
            raise InvalidArgumentError(f"{where}: the target's dtype {target.dtype} has no TensorFlow "
                                       f"equivalent") from None
        if info.dtype != dtype:
            raise InvalidArgumentError(f"{where}: the checkpoint has dtype {info.dtype.name}, the variable has "
                                       f"dtype {dtype.name}")
        if isinstance(target, np.ndarray) and not target.flags.writeable:
            raise InvalidArgumentError(f"{where}: the target array is read-only")
        if not isinstance(target, (Variable, np.ndarray)) and not is_restorable(target):
            kind = "JAX arrays are" if is_tensor(target) else f"a {type(target).__name__} is"
            raise InvalidArgumentError(f"{where}: {kind} immutable, so nothing can be restored into it in "
                                       f"place; hold the value in a numpy array, a tfckpt.Variable or a torch "
                                       f"tensor, or read it with tfckpt.load(..., framework='jax')")
        checked.append((name, target, where))
    assignments = []
    # One read plan for every value (neighbours fetched together), all held until commit.
    values = reader.read_arrays([name for name, _, _ in checked], batch_bytes=sys.maxsize)
    for (name, target, where), (_, value) in zip(checked, values):
        if isinstance(target, np.ndarray) and target_dtype(target) == STRING:
            value = _fit_strings(value, target, where)
        assignments.append((target, value))
    return PlannedRestore(tuple(assignments))


def commit_restore(plan: PlannedRestore) -> None:
    """Assign planned values (checked for exact shape and dtype, so this cannot fail)."""
    for target, value in plan.assignments:
        if isinstance(target, Variable):
            target.assign(value)
        elif is_restorable(target):
            assign_into(target, value)
        else:
            target[...] = value
