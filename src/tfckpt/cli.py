"""Command line: argument parsing and printing only; everything else comes from the library.

``tfckpt PATH`` is short for ``tfckpt ls PATH``. Errors print one line (``tfckpt: error: ...``)
and exit with status 1 (2 for usage errors); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fnmatch
import json
import math
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import NothingMatched, TfckptError, UnsupportedError
from .formatnames import FORMATS
from .interrupt import MESSAGE, STATUS, end_at_once, raising

# ruff: noqa: TC004 - the names below are used at run time: _import_library() binds them there
if TYPE_CHECKING:  # imported by _import_library() at run time, once a command is to run
    import numpy as np

    from . import savedmodel
    from .api import load_checkpoint
    from .bundle.entry import TensorInfo
    from .bundle.naming import prefix_of
    from .bundle.reader import CheckpointReader
    from .convert import convert
    from .diff import diff_checkpoints
    from .formats import open_reader
    from .rules import load_rules
    from .stats import checkpoint_stats
    from .tree import checkpoint_tree, render_tree
    from .verify import VerifyProblem, verify_checkpoint

__all__ = [
    "SKIPPED_SHOWN",
    "Handler",
    "NothingMatched",
    "ProgressBar",
    "build_parser",
    "cmd_convert",
    "cmd_diff",
    "cmd_inspect",
    "cmd_ls",
    "cmd_meta_show",
    "cmd_savedmodel_show",
    "cmd_stats",
    "cmd_tree",
    "cmd_verify",
    "main",
    "shown",
    "subcommands",
]

Handler = Callable[[argparse.Namespace], int]
SKIPPED_SHOWN = 3  # names listed per "skipped" line of convert


def _format_shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _count(n: int, noun: str) -> str:
    """``1 tensor``, ``2 tensors``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def shown(text: str) -> str:
    r"""``text`` safe to print for people: each non-printable character (terminal control
    sequences such as clear-screen or an OSC 52 clipboard write, newlines, invisible format
    characters, undecodable bytes) written as its Python escape, ``\x1b`` for ESC. Printable
    names, whatever their script, come out unchanged; JSON output keeps names exact.

    Examples
    --------
    >>> shown("dense/kernel"), shown("x\x1b[2J"), shown("ノード")
    ('dense/kernel', 'x\\x1b[2J', 'ノード')
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


# saved_model_cli ends a listed value with two backspaces over its last ", " (`Value: [1, 2, \b\b]`);
# tfckpt prints the same, so those two, at a line's end, are the output's own and stay.
_VALUE_LIST_ENDS = ("\b\b]", "\b\b}")


def _shown_line(line: str) -> str:
    if line.endswith(_VALUE_LIST_ENDS):
        return shown(line[:-3]) + line[-3:]
    return shown(line)


def _shown_lines(text: str) -> str:
    """:func:`shown` for each line of a multi-line text (its newlines kept): for outputs
    rendered whole (``savedmodel show``, ``meta show``, ``inspect``), whose file-derived names
    sit among fixed text that is printable already and so comes out unchanged."""
    return "\n".join(_shown_line(line) for line in text.split("\n"))


def _selected(reader: CheckpointReader, args: argparse.Namespace) -> list[str]:
    """The keys to show. Filters match a key or its object path, whichever the user reads."""
    names = list(reader)
    paths = reader.object_paths() if (args.filter or args.regex) else {}

    def seen_as(name: str) -> list[str]:
        path = paths.get(name)
        return [name] if path is None else [name, path]

    if args.filter:
        names = [n for n in names if any(fnmatch.fnmatchcase(s, args.filter) for s in seen_as(n))]
    if args.regex:
        pattern = re.compile(args.regex)
        names = [n for n in names if any(pattern.search(s) for s in seen_as(n))]
    if (args.filter or args.regex) and not names:
        given = " and ".join(f"{flag} {value!r}" for flag, value in (("--filter", args.filter),
                                                                      ("--regex", args.regex)) if value)
        raise NothingMatched(f"no tensor of {reader.prefix} matches {given} (names and object paths are "
                             f"matched; list them with `tfckpt ls --objects`)")
    if args.no_optimizer:
        optimizer = {key for key, info in reader.object_tensors().items() if info.optimizer_state}
        names = [n for n in names if n not in optimizer]
    return names


def _stored_bytes(info: TensorInfo) -> int:
    # A partitioned tensor's full entry holds no bytes itself: count its elements instead.
    return info.num_elements * info.dtype.itemsize if info.slices else info.size


def cmd_ls(args: argparse.Namespace) -> int:
    with open_reader(args.path) as reader:  # any source format
        names = _selected(reader, args)
        infos = [reader.tensor_info(n) for n in names]
        paths = reader.object_paths() if args.objects else {}
        prefix = reader.prefix
    if paths:  # object paths are what the user reads: list them in their order
        infos.sort(key=lambda i: paths.get(i.name, i.name))
    labels = [shown(paths.get(i.name, i.name)) for i in infos]
    total_bytes = sum(_stored_bytes(i) for i in infos)
    total_elements = sum(i.num_elements for i in infos)
    if args.json:
        rows = [{"name": i.name, "path": paths.get(i.name), "dtype": i.dtype.name, "shape": list(i.shape),
                 "elements": i.num_elements, "bytes": _stored_bytes(i)} for i in infos]
        print(json.dumps({"prefix": prefix, "tensors": rows,
                          "total": {"tensors": len(rows), "elements": total_elements, "bytes": total_bytes}},
                         indent=2))
        return 0
    width = max([len("name"), *(len(s) for s in labels)])  # a header wider than every cell sets the width
    dwidth = max([len("dtype"), *(len(i.dtype.name) for i in infos)])
    shapes = [_format_shape(i.shape) for i in infos]
    swidth = max([len("shape"), *(len(s) for s in shapes)])
    print(f"{'name':<{width}}  {'dtype':<{dwidth}}  {'shape':<{swidth}}  {'size':>10}")
    for label, info, shape in zip(labels, infos, shapes):
        size = _human_bytes(_stored_bytes(info))
        print(f"{label:<{width}}  {info.dtype.name:<{dwidth}}  {shape:<{swidth}}  {size:>10}")
    print(f"# {_count(len(infos), 'tensor')}, {total_elements} elements, {_human_bytes(total_bytes)} in {prefix}")
    return 0


def _tf_bool(value: str) -> bool:
    return value.lower() == "true"  # inspect_checkpoint's own rule for --all_tensors=...


def _printoption(text: str) -> tuple[str, Any]:
    import numpy as np  # an option parsed before main() imports the library

    key, sep, raw = text.partition("=")
    options: dict[str, Any] = dict(np.get_printoptions())
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"'{text}' is not in the form k=v.")
    if key not in options:
        raise argparse.ArgumentTypeError(f"'{key}' is not a valid printoption.")
    kind = type(options[key])
    if options[key] is None:
        raise argparse.ArgumentTypeError(f"Setting '{key}' from the command line is not supported.")
    try:
        return key, _tf_bool(raw) if kind is bool else kind(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_inspect(args: argparse.Namespace) -> int:
    """TensorFlow's ``inspect_checkpoint``, output line for line."""
    if not args.file_name:
        print("Usage: inspect_checkpoint --file_name=checkpoint_file_name [--tensor_name=tensor_to_print] "
              "[--all_tensors] [--all_tensor_names] [--count_exclude_pattern] [--printoptions]")
        return 1
    for key, value in args.printoptions or []:
        np.set_printoptions(**{key: value})
    file_name = args.file_name
    stripped = prefix_of(file_name)
    if stripped is not None:  # TF needs the prefix; tfckpt takes the .index/.data file's name too
        file_name = stripped
    with load_checkpoint(file_name) as reader:
        shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
        if args.all_tensors or args.all_tensor_names:
            for key in sorted(shapes):
                print(f"tensor: {shown(key)} ({dtypes[key].name}) {shapes[key]}")
                if args.all_tensors:
                    try:
                        print(reader.get_tensor(key))
                    except UnsupportedError:
                        print("<not convertible to a numpy dtype>")
        elif not args.tensor_name:
            print(_shown_lines(reader.debug_string().decode("utf-8", errors="ignore")))
        else:
            if not reader.has_tensor(args.tensor_name):
                print(f"Tensor {shown(args.tensor_name)} not found in checkpoint")
                return 0
            name = args.tensor_name
            print(f"tensor: {shown(name)} ({dtypes[name].name}) {shapes[name]}")
            print(reader.get_tensor(name))
        if args.count_exclude_pattern:
            pattern = re.compile(args.count_exclude_pattern)
            excluded = {k: v for k, v in shapes.items() if pattern.search(k)}
            shapes = {k: v for k, v in shapes.items() if k not in excluded}
            print(f"# Excluding {len(excluded)} tensors ({sum(math.prod(v) for v in excluded.values())} params) "
                  f"that match {args.count_exclude_pattern} when counting.")
        print(f"# Total number of params: {sum(math.prod(v) for v in shapes.values())}")
    return 0


class ProgressBar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, enabled: bool | None = None) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._last = 0.0

    def __call__(self, done: int, total: int, done_bytes: int, total_bytes: int) -> None:
        now = time.monotonic()
        if not self.enabled or (done < total and now - self._last < 0.1):
            return
        self._last = now
        fraction = done_bytes / total_bytes if total_bytes else done / max(total, 1)
        bar = "#" * int(30 * fraction)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {done}/{total} tensors, "
                         f"{_human_bytes(done_bytes)}/{_human_bytes(total_bytes)}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _problem_json(problem: VerifyProblem) -> dict[str, Any]:
    return {"key": problem.key, "file": problem.file, "offset": problem.offset, "message": problem.message,
            "keys": list(problem.keys)}


def cmd_verify(args: argparse.Namespace) -> int:
    report = verify_checkpoint(args.path)
    if args.json:
        print(json.dumps({"prefix": report.prefix, "ok": report.ok,
                          "total": {"tensors": report.tensors_checked, "bytes": report.bytes_checked},
                          "problems": [_problem_json(p) for p in report.problems],
                          "notes": [_problem_json(p) for p in report.notes]}, indent=2))
    else:
        for problem in report.problems:
            print(f"BAD  {shown(str(problem))}")
        for note in report.notes:
            print(f"NOTE {shown(str(note))}")
        status = "OK" if report.ok else _count(len(report.problems), "problem")
        print(f"# {status}: {_count(report.tensors_checked, 'tensor')}, {_human_bytes(report.bytes_checked)} "
              f"checked in {report.prefix}")
    return 0 if report.ok else 1


def cmd_diff(args: argparse.Namespace) -> int:
    report = diff_checkpoints(args.a, args.b, rtol=args.rtol, atol=args.atol, values=not args.no_values)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0 if report.same else 1
    for name in report.only_in_a:
        print(f"- {shown(name)}")
    for name in report.only_in_b:
        print(f"+ {shown(name)}")
    for name, dtype_a, dtype_b in report.dtype_changed:
        print(f"~ {shown(name)}: dtype {dtype_a} -> {dtype_b}")
    for name, shape_a, shape_b in report.shape_changed:
        print(f"~ {shown(name)}: shape {_format_shape(shape_a)} -> {_format_shape(shape_b)}")
    for change in report.value_changed:
        worst = "" if change.max_abs_diff is None else f", max abs diff {change.max_abs_diff:.6g}"
        print(f"~ {shown(change.name)}: {change.mismatched}/{change.total} values differ{worst}")
    print(f"# {'same' if report.same else 'different'}: {len(report.equal)} equal, {len(report.only_in_a)} only "
          f"in A, {len(report.only_in_b)} only in B, "
          f"{len(report.dtype_changed) + len(report.shape_changed) + len(report.value_changed)} changed")
    return 0 if report.same else 1


def _positive(text: str) -> int:
    """A count of levels: 1 or more (0 or -1 would otherwise quietly mean something else)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _regex(text: str) -> str:
    """A regular expression option, checked when parsed: argparse names the option in the error."""
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"invalid regular expression {text!r}: {exc}") from None
    return text


def _pair(text: str) -> tuple[str, str]:
    left, sep, right = text.partition("=")
    if not sep or not left:
        raise argparse.ArgumentTypeError(f"expected FROM=TO, got {text!r}")
    return left, right


def cmd_convert(args: argparse.Namespace) -> int:
    report = convert(args.source, args.destination, object_paths=args.object_paths,
                     strip_attributes=args.strip_attributes, rename=args.rename or [],
                     include=args.include or [], exclude=args.exclude or [], optimizer=not args.no_optimizer,
                     drop_save_counter=args.drop_save_counter, cast=dict(args.cast or []),
                     progress=ProgressBar("convert"), from_=args.from_format, to=args.to,
                     allow_empty=args.allow_empty, like=args.like,
                     drop_object_graph=True if args.drop_object_graph else None,
                     rules=load_rules(args.rules, reverse=args.reverse) if args.rules else None)
    by_reason: dict[str, list[str]] = {}
    for name, reason in report.skipped:
        by_reason.setdefault(reason, []).append(shown(name))
    for reason, names in by_reason.items():  # one line per reason, not one per tensor
        listed = ", ".join(names[:SKIPPED_SHOWN]) + (f", ... and {len(names) - SKIPPED_SHOWN} more"
                                                     if len(names) > SKIPPED_SHOWN else "")
        print(f"skipped {listed}: {shown(reason)}" if len(names) == 1
              else f"skipped {len(names)} tensors ({listed}): {shown(reason)}", file=sys.stderr)
    for warning in report.warnings:
        print(f"tfckpt: warning: {warning}", file=sys.stderr)
    print(f"# wrote {_count(len(report.written), 'tensor')} to {report.destination}")
    return 0


def cmd_savedmodel_show(args: argparse.Namespace) -> int:
    meta_graphs = savedmodel.read_saved_model(args.dir)
    if args.all:
        text = savedmodel.show_all(meta_graphs)
    elif args.tag_set is None:
        text = savedmodel.show_tag_sets(meta_graphs)
    elif args.signature_def is None:
        text = savedmodel.show_signature_keys(savedmodel.get_meta_graph(meta_graphs, args.tag_set))
    else:
        meta_graph = savedmodel.get_meta_graph(meta_graphs, args.tag_set)
        text = savedmodel.show_signature(meta_graph, args.signature_def)
    sys.stdout.write(_shown_lines(text))
    return 0


# One JSON schema for every command: "elements" counts values, "bytes" counts stored bytes,
# "tensors" counts tensors (README "JSON output"); the dataclasses' own field names differ.
_JSON_NAMES = {"size": "elements", "parameters": "elements", "nbytes": "bytes"}


def _schema(row: dict[str, Any]) -> dict[str, Any]:
    return {_JSON_NAMES.get(key, key): value for key, value in row.items()}


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def cmd_stats(args: argparse.Namespace) -> int:
    report = checkpoint_stats(args.path, depth=args.depth, progress=ProgressBar("stats"))
    tensors = sorted(report.non_finite if args.nan else report.tensors, key=lambda t: t.path)
    if args.json:
        print(json.dumps({
            "prefix": report.prefix,
            "total": {"tensors": len(report.tensors), "elements": report.parameters, "bytes": report.nbytes},
            "tensors": [_schema(dataclasses.asdict(t)) for t in tensors],
            "modules": [_schema(dataclasses.asdict(m)) for m in report.modules] if not args.nan else []}, indent=2))
    elif args.nan and not tensors:
        print(f"# no tensor of {report.prefix} holds NaN or Inf ({_count(len(report.tensors), 'tensor')} checked)")
    else:
        rows = [(shown(t.path), f"{t.dtype}{list(t.shape)}", _number(t.min), _number(t.max), _number(t.mean),
                 _number(t.std), str(t.nan), str(t.inf), str(t.zeros)) for t in tensors]
        header = ("tensor", "dtype[shape]", "min", "max", "mean", "std", "nan", "inf", "zeros")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
        if not args.nan:
            print()
            mwidth = max([len("module"), *(len(shown(m.name)) for m in report.modules)])
            print(f"{'module':<{mwidth}}  {'tensors':>7}  {'parameters':>12}  {'bytes':>10}")
            for module in sorted(report.modules, key=lambda m: m.name):
                print(f"{shown(module.name):<{mwidth}}  {module.tensors:>7}  {module.parameters:>12,}  "
                      f"{_human_bytes(module.nbytes):>10}")
        print(f"# {_count(len(report.tensors), 'tensor')}, {report.parameters:,} parameters, "
              f"{_human_bytes(report.nbytes)}; {_count(len(report.non_finite), 'tensor')} with NaN/Inf")
    return 1 if args.nan and report.non_finite else 0


def cmd_tree(args: argparse.Namespace) -> int:
    root = checkpoint_tree(args.path, optimizer=not args.no_optimizer)
    pending = [root]
    while pending:  # every name as people may see it (iteratively: trees can be deep)
        node = pending.pop()
        node.name = shown(node.name)
        node.shared_with = None if node.shared_with is None else shown(node.shared_with)
        pending += node.children
    sys.stdout.write(render_tree(root, depth=args.depth))
    return 0


def cmd_meta_show(args: argparse.Namespace) -> int:
    sys.stdout.write(_shown_lines(savedmodel.show_meta_graph_file(
        savedmodel.read_meta_graph_file(args.file, args.tag_set))))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfckpt", description="Inspect and convert TensorFlow checkpoints "
                                     "without TensorFlow. `tfckpt PATH` lists a checkpoint's tensors (a PATH named like a "
                                     "command, such as a directory `ls`, is written `./ls`).")
    parser.add_argument("--version", action="version", version=f"tfckpt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    # --debug may also follow the subcommand; SUPPRESS keeps a later default from undoing it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    checkpoint_help = "checkpoint prefix, .index/.data file, checkpoint directory or SavedModel directory"
    source_help = checkpoint_help + ", or a .safetensors/.npz file"

    for command, what in (("ls", "list tensors: name, dtype, shape, totals"), ("show", "the same as ls")):
        # Two parsers, not an alias, so that `tfckpt show --help` says `usage: tfckpt show`.
        ls = commands.add_parser(command, parents=[common], help=what)
        ls.add_argument("path", help=source_help + " (one named like a command: ./NAME)")
        ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
        ls.add_argument("--filter", metavar="GLOB", help="only tensors whose name or object path matches this "
                        "glob (e.g. 'model/*')")
        ls.add_argument("--regex", metavar="RE", type=_regex, help="only tensors whose name or object path "
                        "matches this regular expression")
        ls.add_argument("--objects", action="store_true", help="show TF2 keys as object paths")
        ls.add_argument("--no-optimizer", action="store_true", help="hide optimizer state and slots")
        ls.set_defaults(handler=cmd_ls)

    inspect = commands.add_parser("inspect", parents=[common], help="TensorFlow's inspect_checkpoint, same flags and output")
    inspect.add_argument("--file_name", default="", help="checkpoint prefix (or directory, .index, .data file)")
    inspect.add_argument("--tensor_name", default="", help="name of the tensor to inspect")
    inspect.add_argument("--count_exclude_pattern", default="", type=_regex, help="regex of tensors not to count")
    inspect.add_argument("--all_tensors", nargs="?", const=True, default=False, type=_tf_bool,
                         help="print the names and values of all tensors")
    inspect.add_argument("--all_tensor_names", nargs="?", const=True, default=False, type=_tf_bool,
                         help="print the names of all tensors")
    inspect.add_argument("--printoptions", nargs="*", type=_printoption, help="numpy print options, k=v")
    inspect.set_defaults(handler=cmd_inspect)

    verify = commands.add_parser("verify", parents=[common], help="check every checksum and structural rule; exit 1 if bad")
    verify.add_argument("path", help=checkpoint_help)
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=cmd_verify)

    stats = commands.add_parser("stats", parents=[common],
                                help="min/max/mean/std, NaN/Inf and zero counts per tensor; sizes per module")
    stats.add_argument("path", help=source_help)
    stats.add_argument("--depth", type=_positive, default=None,
                       help="group modules by the first N path components (default: each tensor's parent)")
    stats.add_argument("--nan", action="store_true",
                       help="list only tensors holding NaN or Inf; exit 1 if there are any (a CI check)")
    stats.add_argument("--json", action="store_true", help="print the report as JSON")
    stats.set_defaults(handler=cmd_stats)

    tree = commands.add_parser("tree", parents=[common],
                               help="the object graph (TF2) or the name hierarchy (TF1) as a tree")
    tree.add_argument("path", help=source_help)
    tree.add_argument("--depth", type=_positive, default=None, help="show N levels; deeper branches are summarised")
    tree.add_argument("--no-optimizer", action="store_true", help="leave out optimizer state and slots")
    tree.set_defaults(handler=cmd_tree)

    diff = commands.add_parser("diff", parents=[common], help="compare names, dtypes, shapes and values; exit 1 if different")
    diff.add_argument("a", help="the first checkpoint (" + source_help + ")")
    diff.add_argument("b", help="the second checkpoint")
    diff.add_argument("--rtol", type=float, default=0.0, help="relative tolerance (default: exact)")
    diff.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (default: exact)")
    diff.add_argument("--no-values", action="store_true", help="compare names, dtypes and shapes only")
    diff.add_argument("--json", action="store_true", help="print the differences as JSON")
    diff.set_defaults(handler=cmd_diff)

    conv = commands.add_parser(
        "convert", parents=[common], help="TF checkpoint <-> .safetensors / .npz (by file extension)",
        description="Copy tensors between formats, one at a time. Formats: TensorFlow checkpoint (a prefix such "
                    "as out/model.ckpt, a directory or SavedModel as source), safetensors (*.safetensors), "
                    "numpy (*.npz). The format of each side is told by its name, or set with --from/--to.")
    conv.add_argument("source", help="checkpoint, .safetensors or .npz file to read")
    conv.add_argument("destination", help="checkpoint prefix (an existing directory: the checkpoint inside, "
                      "else DIRECTORY/ckpt), .safetensors or .npz file to write")
    conv.add_argument("--from", dest="from_format", choices=FORMATS,
                      help="the source's format, whatever its name (default: its name, else its first bytes)")
    conv.add_argument("--to", choices=FORMATS, help="the destination's format, whatever its name")
    conv.add_argument("--allow-empty", action="store_true",
                      help="write the destination even when no tensor is left to write (default: refuse)")
    conv.add_argument("--object-paths", action="store_true", help="name TF2 tensors by object path")
    conv.add_argument("--strip-attributes", action="store_true", help="drop '/.ATTRIBUTES/VARIABLE_VALUE'")
    conv.add_argument("--rename", action="append", type=_pair, metavar="REGEX=REPLACEMENT",
                      help="rename with re.sub (repeatable, applied in order)")
    conv.add_argument("--include", action="append", metavar="GLOB", help="only these source names")
    conv.add_argument("--exclude", action="append", metavar="GLOB", help="not these source names")
    conv.add_argument("--no-optimizer", "--drop-optimizer", action="store_true",
                      help="leave out optimizer state and slots (as ls and tree; --drop-optimizer: the old name)")
    conv.add_argument("--drop-save-counter", action="store_true", help="leave out save_counter")
    conv.add_argument("--cast", action="append", type=_pair, metavar="FROM=TO",
                      help="cast one dtype to another, e.g. float32=bfloat16 (repeatable)")
    conv.add_argument("--like", metavar="TEMPLATE", help="write a checkpoint with the structure (object graph, keys, "
                      "shapes, dtypes) of this TF2 checkpoint; tensors matched by key or object path. Keras 3: "
                      "model.weights.h5 out/ckpt --like TF_CKPT writes a checkpoint the TF model restores; "
                      "CKPT out.weights.h5 --like TEMPLATE.weights.h5 writes weights Keras 3 loads (paired by "
                      "the models' structure, see tfckpt.keras)")
    conv.add_argument("--drop-object-graph", action="store_true", help="keep no TF2 structure (default: kept in "
                      "safetensors/npz metadata and rebuilt when converting back)")
    conv.add_argument("--rules", metavar="FILE", help="rename/transform rules (JSON; see tfckpt.rules), applied "
                      "to the source's names first")
    conv.add_argument("--reverse", action="store_true", help="apply the inverse of --rules (e.g. PyTorch -> TF)")
    conv.set_defaults(handler=cmd_convert, writes=True)  # Ctrl-C raises there: the partial output goes

    sm = commands.add_parser("savedmodel", help="inspect a SavedModel (like saved_model_cli)")
    sm_commands = sm.add_subparsers(dest="savedmodel_command", metavar="COMMAND", required=True)
    show = sm_commands.add_parser("show", parents=[common], help="tag-sets, signatures and their inputs/outputs")
    show.add_argument("--dir", required=True, help="the SavedModel directory")
    show.add_argument("--tag_set", help="comma-separated tags selecting a MetaGraphDef")
    show.add_argument("--signature_def", help="a SignatureDef key to show inputs/outputs of")
    show.add_argument("--all", action="store_true", help="everything about every MetaGraphDef")
    show.set_defaults(handler=cmd_savedmodel_show)

    meta = commands.add_parser("meta", help="inspect a TF1 .meta file (the MetaGraphDef Saver writes)")
    meta_commands = meta.add_subparsers(dest="meta_command", metavar="COMMAND", required=True)
    meta_show = meta_commands.add_parser("show", parents=[common],
                                         help="tags, saver, variables, signatures and ops of a .meta file")
    meta_show.add_argument("file", help="the .meta file, e.g. model.ckpt-1000.meta, or a SavedModel's saved_model.pb")
    meta_show.add_argument("--tag_set", help="comma-separated tags selecting a SavedModel's MetaGraphDef "
                           "(default: its first)")
    meta_show.set_defaults(handler=cmd_meta_show)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> list[str]:
    """The subcommands ``parser`` (from :func:`build_parser`) knows: the parser is their one
    registry, so a subcommand added there is dispatched with no other list to keep in step."""
    return [name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for name in action.choices]


def _import_library() -> None:
    """Import what the commands use (the ``TYPE_CHECKING`` imports at the top) as this module's
    globals. Seconds of numpy, protobuf and the readers: paid once a command runs, not by
    ``--version``, ``--help`` or a usage error."""
    global np, savedmodel, load_checkpoint, TensorInfo, prefix_of, CheckpointReader, convert, diff_checkpoints
    global open_reader, load_rules, checkpoint_stats, checkpoint_tree, render_tree, VerifyProblem, verify_checkpoint
    import numpy as np

    from . import savedmodel
    from .api import load_checkpoint
    from .bundle.entry import TensorInfo
    from .bundle.naming import prefix_of
    from .bundle.reader import CheckpointReader
    from .convert import convert
    from .diff import diff_checkpoints
    from .formats import open_reader
    from .rules import load_rules
    from .stats import checkpoint_stats
    from .tree import checkpoint_tree, render_tree
    from .verify import VerifyProblem, verify_checkpoint


def main(argv: Sequence[str] | None = None) -> int:
    """The ``tfckpt`` command: its exit status. Ctrl-C ends it with status 130 and one line
    whenever it lands, while the library is imported too (``--debug``: the traceback); called
    from Python, it raises KeyboardInterrupt inside and returns 130, never ending the caller's
    program (see :mod:`tfckpt.interrupt`)."""
    debug = False
    sigints: list[int] = []
    try:
        with contextlib.ExitStack() as interrupts:
            program = signal.getsignal(signal.SIGINT) is end_at_once
            if not program:
                interrupts.enter_context(raising(sigints))
            argv = list(sys.argv[1:] if argv is None else argv)
            parser = build_parser()
            positional = [a for a in argv if not a.startswith("-")]
            if positional and positional[0] not in subcommands(parser) and "-h" not in argv and "--help" not in argv:
                argv.insert(argv.index(positional[0]), "ls")  # `tfckpt PATH` means `tfckpt ls PATH`
            args = parser.parse_args(argv)
            if not hasattr(args, "handler"):
                parser.print_help()
                return 2
            handler: Handler = args.handler
            debug = bool(getattr(args, "debug", False))
            _import_library()
            if program and (debug or getattr(args, "writes", False)):
                interrupts.enter_context(raising(sigints))  # partial output removed; --debug: the stack
            status = handler(args)
        if sigints:  # Ctrl-C landed where Python swallows KeyboardInterrupt (see tfckpt.interrupt.raising)
            print(MESSAGE, file=sys.stderr)
            return STATUS
        return status
    except BrokenPipeError:  # `tfckpt ls ... | head`: the reader left; stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more reaches the closed pipe at exit
        return 128 + 13  # what a process killed by SIGPIPE reports
    except KeyboardInterrupt:
        if debug:
            raise
        print(MESSAGE, file=sys.stderr)
        return STATUS
    except Exception as exc:
        if debug:
            raise
        if sigints:  # Ctrl-C turned into another error by what it interrupted (numpy's import: ImportError)
            print(MESSAGE, file=sys.stderr)
            return STATUS
        if isinstance(exc, (TfckptError, OSError)):
            print(f"tfckpt: error: {shown(str(exc))}", file=sys.stderr)
        else:  # a bug or an unforeseen input: still one line, unless --debug
            print(f"tfckpt: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1
