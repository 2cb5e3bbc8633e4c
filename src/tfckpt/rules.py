"""Rename-and-transform rules for ``convert`` and ``load``, with their inverse derived.

A rules file is JSON (no TOML: the standard library reads it only from Python 3.11)::

    {"tfckpt_rules": 1,
     "rules": [
       {"match": "bert/encoder/layer_(\\d+)/attention/self/(query|key|value)/kernel",
        "name": "bert.encoder.layer.{1}.attention.self.{2}.weight",
        "transpose": [1, 0]},
       ...]}

Each rule:

- ``match``: a regex matched against the *whole* name (``re.fullmatch``); a list of regexes
  for ``concat`` (one per piece).
- ``name``: the new name, a template whose ``{1}``/``{group}`` are the match's groups; a list
  of templates for ``split`` (one per piece).
- ``transpose``: a permutation of the axes. ``reshape``: ``[from shape, to shape]`` (``-1``
  allowed once in each). ``dtype``: ``[from, to]``: values of dtype ``from`` are cast to ``to``.
- ``split``: an axis; the value is cut into ``len(name)`` pieces (``sizes`` along the axis, else
  equal). ``concat``: an axis; the tensors matched by each regex of ``match`` with the same
  group values are joined in that order (``sizes`` checked when given).

Values go through concat, dtype, reshape, transpose, split, in this order. The first rule that
matches a name applies; a name no rule matches is kept as it is.

The inverse (``Rules.inverse()``, ``--reverse``) swaps ``match`` and ``name``: each regex must be
literal text and capturing groups only (escaped punctuation such as ``\\.`` is literal), and the
template must use every group, else the inverse would not know what to put back (a many-to-one
rule) and is refused, naming the rule. The inverse of ``split`` is ``concat`` and the other way
round; transpose, reshape and dtype are undone in reverse order.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import storage
from .arguments import path_argument
from .dtypes import DType, as_dtype
from .errors import InvalidArgumentError, NotFoundError, TfckptError

__all__ = ["Mapped", "Rule", "Rules", "load_rules"]

RULES_VERSION = 1
_FIELD = re.compile(r"\{(\w+)\}")
_METACHARACTERS = ".^$*+?{}[]|)"
MAX_ARRAY_BYTES = (1 << 63) - 1  # numpy refuses a shape whose dims (zeros as ones) x itemsize exceed this
Shape = tuple[int, ...]


@dataclass(frozen=True)
class _Group:
    ref: str  # the number or name a template uses for it
    body: str  # its regex


def _structure(pattern: str, start: int = 0) -> Iterator[int]:
    """The indexes of ``(`` and ``)`` in ``pattern`` from ``start`` that open or close groups:
    escaped characters and character classes are skipped."""
    i, in_class = start, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c in "()":
            yield i
        i += 1


def _group_end(pattern: str, start: int) -> int:
    """The index of the ``)`` closing the group opened at ``start``; -1 if it is not closed."""
    depth = 0
    for i in _structure(pattern, start):
        depth += 1 if pattern[i] == "(" else -1
        if depth == 0:
            return i
    return -1


def _capturing_groups(body: str) -> int:
    """How many capturing groups open inside ``body``."""
    return sum(1 for i in _structure(body) if body[i] == "("
               and (not body.startswith("?", i + 1) or body.startswith("?P<", i + 1)))


def _segments(pattern: str) -> list[str | _Group] | str:
    """``pattern`` as literal text and top-level capturing groups, or why it is not that (a
    metacharacter outside a group matches many names, so the name cannot be rebuilt)."""
    text = pattern.removeprefix("^")
    if text.endswith("$") and not text.endswith("\\$"):
        text = text[:-1]
    out: list[str | _Group] = []
    literal: list[str] = []
    number, i = 0, 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            escaped = text[i + 1: i + 2]
            if not escaped or escaped not in string.punctuation + " ":
                return f"{text[i:i + 2]!r} outside a group matches more than one text"
            literal.append(escaped)
            i += 2
        elif c == "(":
            end = _group_end(text, i)
            if end < 0:
                return "an unclosed group"
            inner = text[i + 1: end]
            if inner.startswith("?P<") and ">" in inner:
                ref, body = inner[3: inner.index(">")], inner[inner.index(">") + 1:]
            elif inner.startswith("?"):
                return f"({inner[:3]}...) outside a capturing group"
            else:
                ref, body = str(number + 1), inner
            number += 1 + _capturing_groups(body)
            if literal:
                out.append("".join(literal))
                literal = []
            out.append(_Group(ref, body))
            i = end + 1
        elif c in _METACHARACTERS:
            return f"{c!r} outside a group matches more than one text"
        else:
            literal.append(c)
            i += 1
    if literal:
        out.append("".join(literal))
    return out


def _template(template: str) -> list[str | _Group]:
    """A name template as literal text and group references (their body unknown here)."""
    out: list[str | _Group] = []
    last = 0
    for found in _FIELD.finditer(template):
        if found.start() > last:
            out.append(template[last: found.start()])
        out.append(_Group(found.group(1), ""))
        last = found.end()
    if last < len(template):
        out.append(template[last:])
    return out


def _fill(template: str, found: re.Match[str]) -> str:
    return _FIELD.sub(lambda f: found.group(int(f.group(1)) if f.group(1).isdigit() else f.group(1)) or "",
                      template)


def _group_name(ref: str) -> str:
    return f"g{ref}" if ref.isdigit() else ref


def _shape_of(spec: Sequence[int], size: int, where: str) -> Shape:
    """``spec`` with its ``-1`` resolved for ``size`` elements."""
    known = math.prod(d for d in spec if d != -1)  # Python ints: an int64 product wraps
    if list(spec).count(-1) == 1 and known and size % known == 0:
        return tuple(size // known if d == -1 else d for d in spec)
    return tuple(spec)


@dataclass(frozen=True)
class Mapped:
    """One tensor after the rules: its name, dtype and shape, the input names it is made of,
    and ``run`` (input values in, value out; None when the value is the input's, unchanged)."""

    name: str
    dtype: DType
    shape: Shape
    inputs: tuple[str, ...]
    run: Callable[[Sequence[np.ndarray]], np.ndarray] | None = None


@dataclass(frozen=True)
class Rule:
    """One rule of a rules file (see the module docstring); ``where`` names it in errors."""

    where: str
    match: tuple[str, ...]
    name: tuple[str, ...]
    transpose: tuple[int, ...] | None = None
    reshape: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    axis: int | None = None
    sizes: tuple[int, ...] | None = None
    dtype: tuple[str, str] | None = None
    transpose_first: bool = False  # inverses undo reshape and transpose in reverse order

    @property
    def compiled(self) -> list[re.Pattern[str]]:
        return [re.compile(pattern) for pattern in self.match]

    def shapes(self, shapes: Sequence[Shape], dtype: DType) -> tuple[list[Shape], DType]:
        """The output shapes and dtype for inputs of these shapes and this dtype; a shape the
        rule cannot take raises :class:`InvalidArgumentError`."""
        shape = shapes[0]
        if len(self.match) > 1:
            assert self.axis is not None
            for other in shapes:
                if len(other) != len(shape) or not -len(shape) <= self.axis < len(shape) or any(
                        a != b for i, (a, b) in enumerate(zip(other, shape)) if i != self.axis % len(shape)):
                    raise InvalidArgumentError(f"{self.where}: cannot concatenate shapes "
                                               f"{[list(s) for s in shapes]} along axis {self.axis}")
            along = [s[self.axis] for s in shapes]
            if self.sizes is not None and tuple(along) != self.sizes:
                raise InvalidArgumentError(f"{self.where}: pieces of sizes {along}, the rule says {list(self.sizes)}")
            shape = (*shape[: self.axis % len(shape)], sum(along), *shape[self.axis % len(shape) + 1:])
        if self.dtype is not None and dtype.name == self.dtype[0]:
            dtype = as_dtype(self.dtype[1])
        for step in ("transpose", "reshape") if self.transpose_first else ("reshape", "transpose"):
            if step == "reshape" and self.reshape is not None:
                size = math.prod(shape)
                wanted, new = _shape_of(self.reshape[0], size, self.where), _shape_of(self.reshape[1], size, self.where)
                if shape != wanted or -1 in new or math.prod(new) != size or \
                        math.prod(max(d, 1) for d in new) * max(dtype.itemsize, 1) > MAX_ARRAY_BYTES:
                    raise InvalidArgumentError(f"{self.where}: cannot reshape {list(shape)} as "
                                               f"{list(self.reshape[0])} -> {list(self.reshape[1])}")
                shape = new
            if step == "transpose" and self.transpose is not None:
                if len(self.transpose) != len(shape):
                    raise InvalidArgumentError(f"{self.where}: transpose {list(self.transpose)} of a rank-"
                                               f"{len(shape)} tensor")
                shape = tuple(shape[a] for a in self.transpose)
        if len(self.name) == 1:
            return [shape], dtype
        assert self.axis is not None
        if not -len(shape) <= self.axis < len(shape):
            raise InvalidArgumentError(f"{self.where}: split axis {self.axis} of a rank-{len(shape)} tensor")
        axis = self.axis % len(shape)
        sizes = self.sizes or ((shape[axis] // len(self.name),) * len(self.name))
        if sum(sizes) != shape[axis]:
            raise InvalidArgumentError(f"{self.where}: cannot split {shape[axis]} along axis {self.axis} into "
                                       f"{list(sizes)}")
        return [(*shape[:axis], size, *shape[axis + 1:]) for size in sizes], dtype

    def values(self, inputs: Sequence[np.ndarray], dtype: DType) -> list[np.ndarray]:
        """The output values for these inputs (checked by :meth:`shapes` first)."""
        shapes, out_dtype = self.shapes([tuple(v.shape) for v in inputs], dtype)
        value = np.concatenate(list(inputs), axis=self.axis) if len(self.match) > 1 else np.asarray(inputs[0])
        if out_dtype != dtype:
            assert out_dtype.as_numpy_dtype is not None
            value = value.astype(out_dtype.as_numpy_dtype)
        for step in ("transpose", "reshape") if self.transpose_first else ("reshape", "transpose"):
            if step == "reshape" and self.reshape is not None:
                value = value.reshape(_shape_of(self.reshape[1], value.size, self.where))
            if step == "transpose" and self.transpose is not None:
                value = np.ascontiguousarray(value.transpose(self.transpose))
        if len(self.name) == 1:
            return [value]
        assert self.axis is not None
        cuts = np.cumsum([s[self.axis] for s in shapes])[:-1]
        return [np.ascontiguousarray(piece) for piece in np.split(value, cuts, axis=self.axis)]

    def inverse(self) -> Rule:
        """The rule that undoes this one; refused (:class:`InvalidArgumentError` naming the
        rule) when a name it produces does not say which name it came from."""
        patterns = []
        for pattern in self.match:
            parts = _segments(pattern)
            if isinstance(parts, str):
                raise InvalidArgumentError(f"{self.where} has no inverse: its match {pattern!r} has {parts}")
            patterns.append(parts)
        bodies = {part.ref: part.body for part in patterns[0] if isinstance(part, _Group)}
        for template in self.name:
            used = {part.ref for part in _template(template) if isinstance(part, _Group)}
            for parts in patterns:
                unused = [part.ref for part in parts if isinstance(part, _Group) and part.ref not in used]
                if unused:
                    raise InvalidArgumentError(f"{self.where} has no inverse: the name {template!r} does not use "
                                               f"group {unused[0]} of the match, so many names map to one")
        new_match = []
        for template in self.name:
            regex, seen = [], set()
            for part in _template(template):
                if isinstance(part, str):
                    regex.append(re.escape(part))
                elif part.ref in seen:
                    regex.append(f"(?P={_group_name(part.ref)})")
                else:
                    if part.ref not in bodies:
                        raise InvalidArgumentError(f"{self.where} has no inverse: {{{part.ref}}} is a group nested "
                                                   f"in another")
                    seen.add(part.ref)
                    regex.append(f"(?P<{_group_name(part.ref)}>{bodies[part.ref]})")
            new_match.append("".join(regex))
        new_name = tuple("".join(part if isinstance(part, str) else "{" + _group_name(part.ref) + "}"
                                 for part in parts) for parts in patterns)
        inverse_transpose = None if self.transpose is None else tuple(int(a) for a in np.argsort(self.transpose))
        return replace(self, where=f"{self.where} (inverse)", match=tuple(new_match), name=new_name,
                       transpose=inverse_transpose,
                       reshape=None if self.reshape is None else (self.reshape[1], self.reshape[0]),
                       dtype=None if self.dtype is None else (self.dtype[1], self.dtype[0]),
                       transpose_first=not self.transpose_first)


def _ints(value: Any, what: str, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InvalidArgumentError(f"{where}: {what} should be a list of integers, not {value!r:.60}")
    return tuple(value)


def _rule(entry: Any, where: str) -> Rule:
    """One rule from its JSON object, every field checked."""
    if not isinstance(entry, dict):
        raise InvalidArgumentError(f"{where} should be a JSON object")
    unknown = set(entry) - {"match", "name", "transpose", "reshape", "split", "concat", "sizes", "dtype"}
    if unknown:
        raise InvalidArgumentError(f"{where}: unknown field {min(unknown)!r}")
    match = entry.get("match")
    name = entry.get("name")
    matches = tuple(match) if isinstance(match, list) else (match,)
    names = tuple(name) if isinstance(name, list) else (name,)
    if not matches or not names or not all(isinstance(m, str) for m in (*matches, *names)):
        raise InvalidArgumentError(f"{where}: match and name should be strings (or lists of strings)")
    if "split" in entry and "concat" in entry:
        raise InvalidArgumentError(f"{where}: split and concat together")
    axis = entry.get("split", entry.get("concat"))
    if axis is not None and (not isinstance(axis, int) or isinstance(axis, bool)):
        raise InvalidArgumentError(f"{where}: the split/concat axis should be an integer")
    if ("split" in entry) != (len(names) > 1) or ("concat" in entry) != (len(matches) > 1):
        raise InvalidArgumentError(f"{where}: a list of names goes with split, a list of matches with concat")
    try:
        compiled = [re.compile(m) for m in matches]
    except (re.error, OverflowError, RecursionError) as exc:  # a repeat count past 2**32, nesting past the stack
        raise InvalidArgumentError(f"{where}: match is not a regex: {exc}") from None
    for pattern in compiled:
        for template in names:
            for ref in _FIELD.findall(template):
                if not (ref.isdigit() and 0 < int(ref) <= pattern.groups) and ref not in pattern.groupindex:
                    raise InvalidArgumentError(f"{where}: {template!r} uses {{{ref}}}, which {pattern.pattern!r} "
                                               f"does not capture")
    transpose = None if "transpose" not in entry else _ints(entry["transpose"], "transpose", where)
    if transpose is not None and sorted(transpose) != list(range(len(transpose))):
        raise InvalidArgumentError(f"{where}: transpose {list(transpose)} is not a permutation")
    reshape = None
    if "reshape" in entry:
        pair = entry["reshape"]
        if not isinstance(pair, list) or len(pair) != 2:
            raise InvalidArgumentError(f"{where}: reshape should be [from shape, to shape]")
        reshape = (_ints(pair[0], "reshape", where), _ints(pair[1], "reshape", where))
        for spec in reshape:  # numpy's reshape takes dims >= 0 and one -1 (the rest of the size)
            if any(d < -1 for d in spec) or spec.count(-1) > 1:
                raise InvalidArgumentError(f"{where}: reshape shape {list(spec)} should have dims >= 0 and at "
                                           f"most one -1")
    dtype = None
    if "dtype" in entry:
        pair = entry["dtype"]
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(d, str) for d in pair):
            raise InvalidArgumentError(f"{where}: dtype should be [from, to]")
        try:
            dtypes = (as_dtype(pair[0]), as_dtype(pair[1]))
        except TfckptError as exc:
            raise InvalidArgumentError(f"{where}: {exc}") from None
        if not all(d.is_fixed_size and d.as_numpy_dtype is not None for d in dtypes):
            # numpy casts numbers; strings, resources and variants have no cast that keeps values
            raise InvalidArgumentError(f"{where}: dtype casts between numeric dtypes, not {pair[0]} -> {pair[1]}")
        dtype = (dtypes[0].name, dtypes[1].name)
    sizes = None if "sizes" not in entry else _ints(entry["sizes"], "sizes", where)
    pieces = max(len(names), len(matches))
    if sizes is not None and (len(sizes) != pieces or any(s < 0 for s in sizes)):
        raise InvalidArgumentError(f"{where}: sizes {list(sizes)} should be {pieces} sizes >= 0, one per piece")
    return Rule(where, matches, names, transpose, reshape, axis, sizes, dtype)


@dataclass(frozen=True)
class Rules:
    """An ordered list of rules (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> rules = Rules.from_json({"tfckpt_rules": 1, "rules": [
    ...     {"match": "dense_(\\\\d+)/kernel", "name": "fc.{1}.weight", "transpose": [1, 0]}]})
    >>> out = rules.apply({"dense_0/kernel": np.zeros((2, 3))})
    >>> {name: value.shape for name, value in out.items()}
    {'fc.0.weight': (3, 2)}
    >>> list(rules.inverse().apply(out))
    ['dense_0/kernel']
    """

    rules: tuple[Rule, ...]

    @classmethod
    def from_json(cls, document: Any, where: str = "rules") -> Rules:
        """Rules from a parsed JSON document, every field checked."""
        if not isinstance(document, dict) or document.get("tfckpt_rules") != RULES_VERSION or \
                not isinstance(document.get("rules"), list):
            raise InvalidArgumentError(f"{where}: a rules file is {{\"tfckpt_rules\": {RULES_VERSION}, "
                                       f"\"rules\": [...]}}")
        return cls(tuple(_rule(entry, f"{where} rule {i + 1}") for i, entry in enumerate(document["rules"])))

    def inverse(self) -> Rules:
        """The rules that undo these (see :meth:`Rule.inverse`)."""
        return Rules(tuple(rule.inverse() for rule in self.rules))

    def plan(self, specs: Sequence[tuple[str, DType, Shape]]) -> list[Mapped]:
        """What the rules make of tensors (name, dtype, shape), without reading them: in input
        order; a concatenation where its first piece was. Raises :class:`InvalidArgumentError`
        for a shape a rule cannot take, an incomplete concatenation, or two outputs of one name."""
        compiled = [rule.compiled for rule in self.rules]
        out: list[Mapped | tuple[Rule, tuple[str, ...]]] = []
        pieces: dict[tuple[int, tuple[str, ...]], dict[int, tuple[str, DType, Shape]]] = {}
        for name, dtype, shape in specs:
            for index, (rule, patterns) in enumerate(zip(self.rules, compiled)):
                found = next(((i, m) for i, p in enumerate(patterns) if (m := p.fullmatch(name))), None)
                if found is None:
                    continue
                which, matched = found
                if len(patterns) > 1:  # a piece of a concatenation: joined once all pieces are in
                    key = tuple(_fill("{" + ref + "}", matched) for ref in _FIELD.findall(rule.name[0]))
                    group = pieces.setdefault((index, key), {})
                    if not group:
                        out.append((rule, key))
                    group[which] = (name, dtype, shape)
                    break
                shapes, new_dtype = rule.shapes([shape], dtype)
                for j, (template, new_shape) in enumerate(zip(rule.name, shapes)):
                    unchanged = len(rule.name) == 1 and new_shape == shape and new_dtype == dtype and (
                        rule.transpose is None or rule.transpose == tuple(range(len(shape))))
                    out.append(Mapped(_fill(template, matched), new_dtype, new_shape, (name,),
                                      None if unchanged else functools.partial(_piece, rule, dtype, j)))
                break
            else:
                out.append(Mapped(name, dtype, shape, (name,)))
        result = []
        for item in out:
            if isinstance(item, Mapped):
                result.append(item)
                continue
            rule, key = item
            index = self.rules.index(rule)
            group = pieces[(index, key)]
            if len(group) != len(rule.match):
                have = ", ".join(repr(name) for name, _, _ in group.values())
                lacking = [rule.match[i] for i in range(len(rule.match)) if i not in group]
                raise InvalidArgumentError(f"{rule.where}: {have} matched, but nothing matches {lacking[0]!r} with "
                                           f"the same groups {list(key)}: cannot concatenate")
            members = [group[i] for i in range(len(rule.match))]
            if len({dtype for _, dtype, _ in members}) > 1:  # np.concatenate would promote them
                raise InvalidArgumentError(f"{rule.where}: cannot concatenate pieces of dtypes "
                                           f"{', '.join(dtype.name for _, dtype, _ in members)}")
            shapes, new_dtype = rule.shapes([shape for _, _, shape in members], members[0][1])
            first = rule.compiled[0].fullmatch(members[0][0])
            assert first is not None
            result.append(Mapped(_fill(rule.name[0], first), new_dtype, shapes[0],
                                 tuple(name for name, _, _ in members), functools.partial(_piece, rule, members[0][1], 0)))
        seen: dict[str, tuple[str, ...]] = {}
        for mapped in result:
            if mapped.name in seen:
                raise InvalidArgumentError(f"rules: {list(seen[mapped.name])} and {list(mapped.inputs)} would both "
                                           f"be named {mapped.name!r}")
            seen[mapped.name] = mapped.inputs
        return result

    def apply(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The rules applied to named arrays (what ``tfckpt.load(..., rules=)`` returns)."""
        specs = [(name, _dtype_of(value), tuple(value.shape)) for name, value in arrays.items()]
        return {m.name: arrays[m.inputs[0]] if m.run is None else m.run([arrays[n] for n in m.inputs])
                for m in self.plan(specs)}


def _piece(rule: Rule, dtype: DType, index: int, values: Sequence[np.ndarray]) -> np.ndarray:
    """Output ``index`` of ``rule`` for these input values of dtype ``dtype``."""
    return rule.values(values, dtype)[index]


def _dtype_of(value: np.ndarray) -> DType:
    return as_dtype("string") if value.dtype == object or value.dtype.kind in "SU" else as_dtype(value.dtype)


def load_rules(path: str | os.PathLike[str], *, reverse: bool = False) -> Rules:
    """The rules of a JSON rules file (their inverse with ``reverse``).

    Examples
    --------
    >>> rules = load_rules("examples/bert_tf_to_pytorch.json", reverse=True)
    >>> print(rules.rules[0].match[0])
    bert\\.embeddings\\.(?P<g1>word|position|token_type)_embeddings\\.weight
    """
    where = path_argument(path, "path")
    try:
        data = storage.filesystem_for(where).read_bytes(where)
        if data is None:
            raise NotFoundError(f"{where}: no rules file there")
        document = json.loads(data)
    except ValueError as exc:  # bad UTF-8, bad JSON, an integer past the 4300-digit limit
        raise InvalidArgumentError(f"{where}: not a JSON rules file: {exc}") from None
    except RecursionError:
        raise InvalidArgumentError(f"{where}: JSON nested too deep for a rules file") from None
    rules = Rules.from_json(document, where)
    return rules.inverse() if reverse else rules
