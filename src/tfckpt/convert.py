"""Converting between TF checkpoints, safetensors and ``.npz``, one tensor at a time.

Two steps: :func:`plan_conversion` decides, from the source's listing alone, what goes where
under which name and dtype, what is skipped and why, and which patterns matched nothing (a
pure function tests can inspect); :func:`execute` then streams each planned tensor from the
source into a sink. The formats themselves live in :mod:`tfckpt.formats`.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from .arguments import path_argument
from .bundle.graph import ATTRIBUTES_MARKER, OBJECT_GRAPH_KEY, VARIABLE_VALUE
from .dtypes import DType, as_dtype
from .errors import InvalidArgumentError
from .formats import FORMATS, Sink, SourceTensor, detect_format, open_sink, open_source, sink_path
from .formats.npz import DTYPES_MEMBER
from .formats.safetensors import SAFETENSORS_DTYPES
from .storage import PathLike

__all__ = ["ATTRIBUTE_SUFFIX", "ConversionPlan", "ConvertReport", "PlannedTensor", "Progress", "convert", "execute",
           "plan_conversion"]

ATTRIBUTE_SUFFIX = f"/{ATTRIBUTES_MARKER}/{VARIABLE_VALUE}"

Progress = Callable[[int, int, int, int], None]  # tensors done, tensors total, bytes done, bytes total


@dataclass(frozen=True)
class PlannedTensor:
    """One tensor to convert: where it comes from, its new name and its new dtype."""

    source: SourceTensor
    name: str
    dtype: DType


@dataclass
class ConversionPlan:
    """What a conversion will do, decided before anything is read or written."""

    format: str
    tensors: list[PlannedTensor] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source name, reason)
    warnings: list[str] = field(default_factory=list)  # e.g. a pattern that matched no name


@dataclass
class ConvertReport:
    """What :func:`convert` did: (source name, destination name) pairs written, (source name,
    reason) pairs skipped, and warnings.

    Examples
    --------
    >>> import tempfile, os
    >>> report = convert("examples/keras_mlp", os.path.join(tempfile.mkdtemp(), "w.npz"), optimizer=False)
    >>> len(report.written), dict(report.skipped)["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]
    (5, 'optimizer state')
    """

    source: str
    destination: str
    written: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _map_name(tensor: SourceTensor, object_paths: bool, strip_attributes: bool,
              rename: Sequence[tuple[re.Pattern[str], str]], used: set[str]) -> str:
    name = tensor.object_path if object_paths and tensor.object_path else tensor.name
    if strip_attributes and name.endswith(ATTRIBUTE_SUFFIX):
        name = name[: -len(ATTRIBUTE_SUFFIX)]
    for pattern, replacement in rename:
        name, count = pattern.subn(replacement, name)
        if count:
            used.add(pattern.pattern)
    return name


def _skip_reason(tensor: SourceTensor, include: Sequence[str], exclude: Sequence[str], drop_optimizer: bool,
                 drop_save_counter: bool, drop_object_graph: bool, used: set[str]) -> str | None:
    seen_as = [tensor.name] if tensor.object_path is None else [tensor.name, tensor.object_path]
    included = {p for p in include if any(fnmatch.fnmatchcase(n, p) for n in seen_as)}
    excluded = {p for p in exclude if any(fnmatch.fnmatchcase(n, p) for n in seen_as)}
    used |= included | excluded
    if include and not included:
        return "not included"
    if excluded:
        return "excluded"
    if drop_optimizer and tensor.optimizer_state:
        return "optimizer state"
    if drop_save_counter and tensor.name.split("/")[0] == "save_counter":
        return "save_counter"
    if drop_object_graph and tensor.name == OBJECT_GRAPH_KEY:
        return "object graph (TF-only metadata)"
    return None


def _check_name(name: str, source_name: str, fmt: str) -> None:
    """Refuse a name the destination format cannot store: safetensors (JSON) and npz (zip
    member names) need UTF-8 text, and npz keeps its dtype list under one member name."""
    if fmt == "checkpoint":
        return
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"tensor {source_name!r} would be named {name!r}, which is not UTF-8 text "
                                   f"and cannot be a {fmt} name: rename it (rename=, --rename)") from None
    if fmt == "npz" and name == DTYPES_MEMBER:
        raise InvalidArgumentError(f"tensor {source_name!r} would be named {name!r}, the member where .npz files "
                                   f"of tfckpt list dtypes: rename it (rename=, --rename)")


def plan_conversion(tensors: Sequence[SourceTensor], fmt: str, *, object_paths: bool = False,
                    strip_attributes: bool = False, rename: Sequence[tuple[str, str]] = (),
                    include: Sequence[str] = (), exclude: Sequence[str] = (), drop_optimizer: bool = False,
                    drop_save_counter: bool = False, drop_object_graph: bool | None = None,
                    cast: dict[str, str] | None = None) -> ConversionPlan:
    """Decide what a conversion into format ``fmt`` does, reading no tensor (see :func:`convert`
    for the options). Raises :class:`InvalidArgumentError` if two tensors would get one name."""
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    rules = [(re.compile(pattern), replacement) for pattern, replacement in rename]
    casts = {as_dtype(a).name: as_dtype(b) for a, b in (cast or {}).items()}
    if drop_object_graph is None:
        drop_object_graph = fmt != "checkpoint" or object_paths or strip_attributes or bool(rules)
    plan = ConversionPlan(fmt)
    used: set[str] = set()  # the patterns that matched at least one name
    taken: dict[str, str] = {}
    for tensor in tensors:
        reason = _skip_reason(tensor, include, exclude, drop_optimizer, drop_save_counter, drop_object_graph, used)
        target = casts.get(tensor.dtype.name, tensor.dtype)
        if reason is None and fmt == "safetensors" and target.name not in SAFETENSORS_DTYPES:
            reason = f"safetensors cannot store {target.name}"
        if reason is None and target.as_numpy_dtype is None:
            reason = f"values of dtype {target.name} cannot be converted"
        if reason is not None:
            plan.skipped.append((tensor.name, reason))
            continue
        name = _map_name(tensor, object_paths, strip_attributes, rules, used)
        _check_name(name, tensor.name, fmt)
        if name in taken:
            raise InvalidArgumentError(f"{tensor.name!r} and {taken[name]!r} would both be written as {name!r}")
        taken[name] = tensor.name
        plan.tensors.append(PlannedTensor(tensor, name, target))
    for kind, patterns in (("rename", [p for p, _ in rename]), ("include", include), ("exclude", exclude)):
        for pattern in patterns:
            if pattern not in used:
                hint = "" if object_paths or kind != "rename" else \
                    "; renames apply to checkpoint keys unless object_paths (--object-paths) is set"
                plan.warnings.append(f"{kind} pattern {pattern!r} matched no tensor{hint}")
    return plan


def _values(steps: Sequence[PlannedTensor]) -> Iterator[tuple[PlannedTensor, np.ndarray]]:
    """Each step with its value, in order: runs of tensors whose source reads in bulk are
    read through it (one read plan per batch), the others one by one."""
    i = 0
    while i < len(steps):
        bulk = steps[i].source.read_many
        if bulk is None:
            yield steps[i], steps[i].source.read()
            i += 1
            continue
        j = i
        while j < len(steps) and steps[j].source.read_many is bulk:
            j += 1
        run = steps[i:j]
        for step, (_, value) in zip(run, bulk([step.source.name for step in run])):
            yield step, value
        i = j


def execute(plan: ConversionPlan, sink: Sink, progress: Progress | None = None) -> list[tuple[str, str]]:
    """Stream every planned tensor into ``sink`` and finish it; on any failure (or Ctrl-C)
    abort it, so nothing appears. Returns the (source name, destination name) pairs."""
    total_bytes = sum(step.source.nbytes for step in plan.tensors)
    done_bytes = 0
    written = []
    try:
        for count, (step, value) in enumerate(_values(plan.tensors), 1):
            if step.dtype != step.source.dtype:
                assert step.dtype.as_numpy_dtype is not None
                value = value.astype(step.dtype.as_numpy_dtype)
            sink.add(step.name, value, step.dtype)
            written.append((step.source.name, step.name))
            done_bytes += step.source.nbytes
            if progress is not None:
                progress(count, len(plan.tensors), done_bytes, total_bytes)
    except BaseException:
        sink.abort()
        raise
    sink.finish()
    return written


def _why_empty(source: str, plan: ConversionPlan, include: Sequence[str], exclude: Sequence[str]) -> str:
    """Why a plan holds no tensor, naming the filters that removed them."""
    if not plan.skipped:
        return f"{source} holds no tensor"
    reasons: dict[str, int] = {}
    for _, reason in plan.skipped:
        reasons[reason] = reasons.get(reason, 0) + 1
    filters = [f"include {p!r}" for p in include] + [f"exclude {p!r}" for p in exclude]
    given = f" (filters: {', '.join(filters)})" if filters else ""
    counts = ", ".join(f"{count} {reason}" for reason, count in reasons.items())
    return f"no tensor of {source} was kept{given}: {counts}"


def convert(source: PathLike, destination: PathLike, *, object_paths: bool = False,
            strip_attributes: bool = False, rename: Sequence[tuple[str, str]] = (),
            include: Sequence[str] = (), exclude: Sequence[str] = (), optimizer: bool = True,
            drop_save_counter: bool = False, drop_object_graph: bool | None = None,
            cast: dict[str, str] | None = None, progress: Progress | None = None,
            from_: str | None = None, to: str | None = None, allow_empty: bool = False,
            drop_optimizer: bool | None = None) -> ConvertReport:
    """Copy tensors from ``source`` to ``destination``, converting format, names and dtypes.

    Parameters
    ----------
    object_paths:
        Name TF2 tensors by object path (``model/dense/kernel``) instead of by key.
    strip_attributes:
        Remove the ``/.ATTRIBUTES/VARIABLE_VALUE`` suffix of TF2 keys.
    rename:
        ``(regex, replacement)`` pairs applied in order to every name (``re.sub``).
    include, exclude:
        Glob patterns on the source names (a TF2 tensor's key or its object path);
        ``include`` keeps only matches.
    optimizer:
        ``False`` leaves out optimizer state and slots (the word ``checkpoint_tree`` and
        ``CheckpointReader.nested`` use; ``drop_optimizer=True`` is its deprecated spelling).
    drop_save_counter:
        Leave out the TF2 ``save_counter``.
    drop_object_graph:
        Leave out ``_CHECKPOINTABLE_OBJECT_GRAPH``. Default: when writing safetensors/npz, or
        when names change (its keys would no longer match).
    cast:
        ``{source dtype name: destination dtype name}``, e.g. ``{"float32": "bfloat16"}``.
    progress:
        Called after each tensor with (tensors done, total, bytes done, total).
    from_, to:
        The source's or destination's format (one of ``FORMATS``) when its name does not say
        it (a source's first bytes are looked at too: a safetensors file named ``.bin`` is
        read as one).
    allow_empty:
        Write the destination even if no tensor is left to write (every one filtered out or
        skipped). Without it, that raises :class:`InvalidArgumentError` and nothing is
        written: a typo in ``include`` would otherwise replace a destination with nothing.

    A checkpoint destination that is an existing directory means the checkpoint inside it
    (see :mod:`tfckpt.formats`): the one its state file names or its only one, else
    ``DIRECTORY/ckpt``.

    Returns
    -------
    ConvertReport
        What was written under which name, what was skipped and why, and warnings (a
        rename, include or exclude pattern that matched no name).

    Tensors stream through: a checkpoint source is read in planned batches of about 64 MiB
    (neighbours fetched together, few requests on remote storage), written one at a time, so
    memory stays bounded by a batch plus the largest tensor.

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> src = tfckpt.save({"net/w/.ATTRIBUTES/VARIABLE_VALUE": np.ones(2, np.float32)}, os.path.join(d, "ck"))
    >>> report = convert(src, os.path.join(d, "w.safetensors"), strip_attributes=True)
    >>> report.written
    [('net/w/.ATTRIBUTES/VARIABLE_VALUE', 'net/w')]
    """
    if drop_optimizer is not None:
        warnings.warn("convert_checkpoint(drop_optimizer=...) is deprecated: use optimizer=False to leave "
                      "optimizer state out", DeprecationWarning, stacklevel=2)
        optimizer = not drop_optimizer
    source, destination = path_argument(source, "source"), path_argument(destination, "destination")
    fmt = to or detect_format(destination, writing=True)
    destination = sink_path(destination, fmt)
    with ExitStack() as stack:
        tensors = open_source(source, stack, from_)
        try:
            plan = plan_conversion(tensors, fmt, object_paths=object_paths, strip_attributes=strip_attributes,
                                   rename=rename, include=include, exclude=exclude, drop_optimizer=not optimizer,
                                   drop_save_counter=drop_save_counter, drop_object_graph=drop_object_graph,
                                   cast=cast)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"converting {source} to {destination}: {exc}") from None
        if not plan.tensors and not allow_empty:
            raise InvalidArgumentError(f"nothing to write to {destination}: {_why_empty(source, plan, include, exclude)}"
                                       f"; nothing was written (allow_empty=True, --allow-empty, writes an empty "
                                       f"{fmt} anyway)")
        sink = open_sink(destination, fmt, [(step.name, step.dtype, step.source.shape) for step in plan.tensors])
        written = execute(plan, sink, progress)
    return ConvertReport(source, destination, written, plan.skipped, plan.warnings)
