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

from . import keras
from .arguments import path_argument
from .bundle.graph import ATTRIBUTES_MARKER, OBJECT_GRAPH_KEY, VARIABLE_VALUE, ObjectGraph
from .dtypes import STRING, DType, as_dtype
from .errors import CorruptionError, InvalidArgumentError
from .formats import Sink, SourceTensor, detect_format, known_format, open_sink, open_source, sink_path
from .formats.npz import DTYPES_MEMBER, RESERVED_MEMBERS
from .formats.safetensors import SAFETENSORS_DTYPES
from .formats.structure import Structure, read_structure
from .rules import Rules
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


def _keras_direction(source: str, destination: str, like: str, from_: str | None, to: str | None) -> str | None:
    """``"to_h5"`` (a checkpoint into a Keras 3 weights file laid out as ``like``), ``"to_checkpoint"``
    (Keras 3 weights into the structure of the TF checkpoint ``like``) or ``None`` (not a Keras conversion)."""
    if (to or detect_format(destination)) == "keras" and detect_format(like) == "keras":
        return "to_h5"
    if (from_ or detect_format(source)) == "keras" and (to or "checkpoint") == "checkpoint" \
            and detect_format(like) == "checkpoint":
        return "to_checkpoint"
    return None


def _convert_keras(direction: str, source: str, destination: str, like: str, optimizer: bool) -> ConvertReport:
    """Pair the variables by structure (:mod:`tfckpt.keras`); kept template values and source
    tensors written nowhere are reported as skipped."""
    if direction == "to_h5":
        mapping = keras.checkpoint_to_weights_h5(source, destination, like=like, optimizer=optimizer)
        written = sorted(mapping.pairs.items())
    else:
        destination = sink_path(destination, "checkpoint")
        mapping = keras.weights_h5_to_checkpoint(source, destination, like=like, optimizer=optimizer)
        written = sorted((name, key) for key, name in mapping.pairs.items())
    skipped = [(name, "no place for it in the template") for name in mapping.unused]
    kept = ", ".join(mapping.kept[:3]) + (f", ... and {len(mapping.kept) - 3} more" if len(mapping.kept) > 3 else "")
    warnings_ = [(f"{len(mapping.kept)} entries of {like} kept at the template's values (nothing in {source} "
                  f"pairs with them): {kept}")] if mapping.kept else []
    return ConvertReport(source, destination, written, skipped, warnings_)


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
    if fmt == "npz" and name in RESERVED_MEMBERS:
        what = "list dtypes" if name == DTYPES_MEMBER else "keep the TF2 structure"
        raise InvalidArgumentError(f"tensor {source_name!r} would be named {name!r}, the member where .npz files "
                                   f"of tfckpt {what}: rename it (rename=, --rename)")


def plan_conversion(tensors: Sequence[SourceTensor], fmt: str, *, object_paths: bool = False,
                    strip_attributes: bool = False, rename: Sequence[tuple[str, str]] = (),
                    include: Sequence[str] = (), exclude: Sequence[str] = (), drop_optimizer: bool = False,
                    drop_save_counter: bool = False, drop_object_graph: bool | None = None,
                    cast: dict[str, str] | None = None) -> ConversionPlan:
    """Decide what a conversion into format ``fmt`` does, reading no tensor (see :func:`convert`
    for the options). Raises :class:`InvalidArgumentError` if two tensors would get one name."""
    known_format(fmt)
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


def _apply_rules(rules: Rules, tensors: Sequence[SourceTensor]
                 ) -> tuple[list[SourceTensor], dict[str, str], dict[str, str]]:
    """The source's tensors as the rules make them (values transformed when read); for each
    tensor the rules only renamed, its new name -> its source name; for every new tensor, its
    new name -> the source names it is made of (as a report shows them)."""
    by_name = {tensor.name: tensor for tensor in tensors}
    out, renamed, made_of = [], {}, {}
    for mapped in rules.plan([(t.name, t.dtype, t.shape) for t in tensors]):
        inputs = [by_name[name] for name in mapped.inputs]
        if mapped.run is None and mapped.name == inputs[0].name:
            out.append(inputs[0])
            continue
        made_of[mapped.name] = " + ".join(mapped.inputs)
        if mapped.run is None:
            renamed[mapped.name] = inputs[0].name
            read = inputs[0].read
        else:
            def read(run: Callable[[Sequence[np.ndarray]], np.ndarray] = mapped.run,
                     inputs: list[SourceTensor] = inputs) -> np.ndarray:
                return run([tensor.read() for tensor in inputs])
        out.append(SourceTensor(mapped.name, mapped.dtype, mapped.shape, read,
                                optimizer_state=any(tensor.optimizer_state for tensor in inputs)))
    return out, renamed, made_of


def _source_structure(source: str, fmt: str, tensors: Sequence[SourceTensor]) -> Structure | None:
    """What the source holds of a TF2 checkpoint's structure: a checkpoint's object graph with
    each tensor under its own key, or the record a safetensors/npz file keeps (None: neither)."""
    if fmt != "checkpoint":
        return read_structure(source, fmt)
    graph = next((t for t in tensors if t.name == OBJECT_GRAPH_KEY), None)
    if graph is None:
        return None
    return Structure(bytes(graph.read().item()), {t.name: (t.name, t.dtype, t.shape) for t in tensors
                                                 if t.name != OBJECT_GRAPH_KEY})


def _kept_structure(structure: Structure, plan: ConversionPlan, renamed: dict[str, str]) -> Structure:
    """``structure`` as the destination keeps it: each written tensor under its new name
    (a tensor rules transformed is not listed: the inverse rules give back its key)."""
    origins = {step.name: renamed.get(step.source.name, step.source.name) for step in plan.tensors}
    return Structure(structure.object_graph, {name: structure.tensors[origin] for name, origin in origins.items()
                                              if origin in structure.tensors})


@dataclass
class _Target:
    """What a checkpoint rebuilt by structure must hold: every expected key (with the dtype and
    shape recorded for it, when known), the names that stand for each key, the object graph,
    and tensors taken from a template when the source lacks them (its ``save_counter``)."""

    where: str
    graph: SourceTensor
    expected: dict[str, tuple[DType, tuple[int, ...]] | None]
    aliases: dict[str, str]
    fill: dict[str, SourceTensor] = field(default_factory=dict)


def _graph_keys(graph: bytes, where: str) -> list[str]:
    """Every checkpoint key the object graph refers to."""
    nodes = ObjectGraph.decode(graph, where).nodes
    return [attribute.checkpoint_key for node in nodes for attribute in node.attributes]


def _graph_tensor(graph: bytes) -> SourceTensor:
    return SourceTensor(OBJECT_GRAPH_KEY, STRING, (), lambda: np.array(graph, dtype=object))


def _target_of_structure(structure: Structure, where: str) -> _Target:
    expected: dict[str, tuple[DType, tuple[int, ...]] | None] = {
        key: None for key in _graph_keys(structure.object_graph, where)}
    aliases = {}
    for name, (key, dtype, shape) in structure.tensors.items():
        expected[key] = (dtype, shape)
        aliases[name] = key
    for key in expected:
        aliases.setdefault(key, key)
    return _Target(where, _graph_tensor(structure.object_graph), expected, aliases)


def _target_of_template(like: str, template: Sequence[SourceTensor]) -> _Target:
    graph = next((t for t in template if t.name == OBJECT_GRAPH_KEY), None)
    if graph is None:
        raise InvalidArgumentError(f"the template {like} has no {OBJECT_GRAPH_KEY}: like= needs a TF2 "
                                   f"(object-based) checkpoint")
    expected: dict[str, tuple[DType, tuple[int, ...]] | None] = {}
    aliases: dict[str, str] = {}
    fill = {}
    for tensor in template:
        if tensor.name == OBJECT_GRAPH_KEY:
            continue
        expected[tensor.name] = (tensor.dtype, tensor.shape)
        # A tensor is found by its key, its key without the attribute suffix, or its object path.
        for alias in (tensor.name, tensor.name.removesuffix(ATTRIBUTE_SUFFIX), tensor.object_path):
            if alias is not None:
                aliases.setdefault(alias, tensor.name)
        if tensor.name.split("/")[0] == "save_counter":
            fill[tensor.name] = tensor  # how many saves the template had: nothing a fine-tune provides
    return _Target(f"the template {like}", graph, expected, aliases, fill)


def _castable(have: DType, want: DType) -> bool:
    """Whether a value edited to ``have`` goes back to the checkpoint's ``want`` (a float to a
    float, an integer to an integer); anything else is refused."""
    return (have.is_floating and want.is_floating) or (have.is_integer and want.is_integer) or \
        (have.is_complex and want.is_complex)


def _restructure(plan: ConversionPlan, target: _Target) -> None:
    """Rename ``plan``'s tensors to the target's keys, cast edited dtypes back, add the object
    graph and the template's fill-ins; every tensor that is missing, extra, of the wrong shape
    or of an incompatible dtype is named in one :class:`InvalidArgumentError`."""
    problems: list[str] = []
    extra: list[str] = []
    produced: dict[str, str] = {}
    steps = []
    for step in plan.tensors:
        key = target.aliases.get(step.name)
        if key is None:
            extra.append(step.name)
            continue
        if key in produced:
            problems.append(f"{produced[key]!r} and {step.name!r} both stand for {key!r}")
            continue
        produced[key] = step.name
        dtype = step.dtype
        recorded = target.expected.get(key)
        if recorded is not None:
            want, shape = recorded
            if step.source.shape != shape:
                problems.append(f"{step.name!r} has shape {list(step.source.shape)}, {key!r} needs {list(shape)}")
            if dtype != want:
                if _castable(dtype, want):
                    plan.warnings.append(f"{step.name!r} ({dtype.name}) cast back to {want.name}, the dtype of "
                                         f"{key!r} in the object graph's checkpoint")
                    dtype = want
                else:
                    problems.append(f"{step.name!r} is {dtype.name}, {key!r} needs {want.name} (not cast: a "
                                    f"different kind of number)")
        steps.append(PlannedTensor(step.source, key, dtype))
    missing = [key for key in target.expected if key not in produced and key not in target.fill]
    if missing or extra or problems:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"{len(extra)} not in the structure: {', '.join(map(repr, extra))}")
        parts += problems
        raise InvalidArgumentError(f"the tensors do not fit the structure of {target.where}: " + "; ".join(parts)
                                   + " (drop_object_graph=True, --drop-object-graph, writes them without it)")
    for key, tensor in target.fill.items():
        if key not in produced:
            steps.append(PlannedTensor(tensor, key, tensor.dtype))
    steps.append(PlannedTensor(target.graph, OBJECT_GRAPH_KEY, STRING))
    plan.tensors = steps


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
            like: PathLike | None = None, rules: Rules | None = None,
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
        Leave out the TF2 structure. Default (None): a checkpoint destination gets the object
        graph as a tensor only when names are kept; a safetensors/npz destination keeps the
        structure in its metadata (see :mod:`tfckpt.formats.structure`: the object graph and
        each tensor's original key, dtype and shape), and converting such a file back to a
        checkpoint rebuilds it: names go back to their keys, values edited to another float
        (integer) dtype are cast back to the recorded one with a warning, and any tensor missing,
        extra, of another shape or of another kind of dtype is named in one
        :class:`InvalidArgumentError`. ``True``: no structure is kept or rebuilt.
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
    like:
        A TF2 checkpoint whose structure the destination checkpoint takes (for tensors that
        come from elsewhere, e.g. a PyTorch fine-tune): each tensor, after renaming, must be
        named as one of the template's keys, a key without ``/.ATTRIBUTES/VARIABLE_VALUE``, or
        an object path, with the template's shape and dtype (cast back as above); the
        template's ``save_counter`` fills in when the source has none. Checked as for
        ``drop_object_graph``.
        Keras 3 files pair by the models' structure instead (:mod:`tfckpt.keras`): a
        ``.weights.h5`` / ``.keras`` source with a checkpoint ``like`` (one the TF model wrote)
        writes a checkpoint with that checkpoint's object graph
        (:func:`tfckpt.keras.weights_h5_to_checkpoint`); a checkpoint source with a
        ``.weights.h5`` destination and ``like`` (a ``.weights.h5`` the Keras 3 model wrote)
        writes Keras 3 weights (:func:`tfckpt.keras.checkpoint_to_weights_h5`). Only
        ``optimizer`` applies there; template values left unpaired are reported as warnings,
        source tensors written nowhere as skipped.
    rules:
        :class:`tfckpt.rules.Rules` (``tfckpt.load_rules(FILE)``, or ``reverse=True`` for the
        way back) applied to the source's names before everything else: renames and value
        transforms (transpose, reshape, split, concat, dtype).

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
    like = None if like is None else path_argument(like, "like")
    if like is not None:
        keras_way = _keras_direction(source, destination, like, from_, to)
        if keras_way is not None:
            unused = {"object_paths": object_paths, "strip_attributes": strip_attributes, "rename": rename,
                      "include": include, "exclude": exclude, "drop_save_counter": drop_save_counter,
                      "drop_object_graph": drop_object_graph, "cast": cast, "rules": rules, "allow_empty": allow_empty}
            given = [name for name, value in unused.items() if value]
            if given:
                raise InvalidArgumentError(f"converting {source} to {destination} like {like} pairs Keras 3 and TF "
                                           f"variables by the models' structure (tfckpt.keras): "
                                           f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply there")
            return _convert_keras(keras_way, source, destination, like, optimizer)
    fmt = to or detect_format(destination, writing=True)
    destination = sink_path(destination, fmt)
    if like is not None and fmt != "checkpoint":
        raise InvalidArgumentError(f"like= gives a checkpoint's structure; the destination {destination} is {fmt}")
    source_fmt = from_ or detect_format(source)
    with ExitStack() as stack:
        tensors = open_source(source, stack, source_fmt)
        wanted = not drop_object_graph and (fmt, source_fmt) != ("checkpoint", "checkpoint")
        structure = _source_structure(source, source_fmt, tensors) if wanted else None
        renamed: dict[str, str] = {}
        made_of: dict[str, str] = {}
        try:
            if rules is not None:
                tensors, renamed, made_of = _apply_rules(rules, tensors)
            plan = plan_conversion(tensors, fmt, object_paths=object_paths, strip_attributes=strip_attributes,
                                   rename=rename, include=include, exclude=exclude, drop_optimizer=not optimizer,
                                   drop_save_counter=drop_save_counter, drop_object_graph=drop_object_graph,
                                   cast=cast)
            metadata = None
            if fmt != "checkpoint" and structure is not None and plan.tensors:
                metadata = _kept_structure(structure, plan, renamed).to_metadata()
                plan.skipped = [(name, "object graph (kept in the file's metadata)" if name == OBJECT_GRAPH_KEY
                                 else reason) for name, reason in plan.skipped]
            elif fmt == "checkpoint" and like is not None and not drop_object_graph:
                _restructure(plan, _target_of_template(like, open_source(like, stack, "checkpoint")))
            elif fmt == "checkpoint" and source_fmt != "checkpoint" and structure is not None:
                _restructure(plan, _target_of_structure(structure, f"{source}'s metadata"))
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"converting {source} to {destination}: {exc}") from None
        except CorruptionError as exc:  # a damaged structure record names its file already
            raise CorruptionError(f"converting {source} to {destination}: {exc}") from None
        if not plan.tensors and not allow_empty:
            raise InvalidArgumentError(f"nothing to write to {destination}: {_why_empty(source, plan, include, exclude)}"
                                       f"; nothing was written (allow_empty=True, --allow-empty, writes an empty "
                                       f"{fmt} anyway)")
        sink = open_sink(destination, fmt, [(step.name, step.dtype, step.source.shape) for step in plan.tensors],
                         metadata)
        written = [(made_of.get(name, name), new) for name, new in execute(plan, sink, progress)]
    return ConvertReport(source, destination, written, plan.skipped, plan.warnings)
