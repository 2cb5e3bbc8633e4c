"""Command line: argument parsing and printing only; everything else comes from the library.

``tfckpt PATH`` is short for ``tfckpt ls PATH``. Errors print one line (``tfckpt: error: ...``)
and exit with status 1 (2 for usage errors); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__, savedmodel
from .api import load_checkpoint
from .bundle.reader import BundleReader
from .errors import TfckptError

Handler = Callable[[argparse.Namespace], int]


def _format_shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _selected(reader: BundleReader, args: argparse.Namespace) -> list[str]:
    names = list(reader)
    if args.filter:
        names = [n for n in names if fnmatch.fnmatchcase(n, args.filter)]
    if args.regex:
        pattern = re.compile(args.regex)
        names = [n for n in names if pattern.search(n)]
    if args.no_optimizer:
        optimizer = {key for key, info in reader.object_tensors().items() if info.optimizer_state}
        names = [n for n in names if n not in optimizer]
    return names


def cmd_ls(args: argparse.Namespace) -> int:
    with load_checkpoint(args.path) as reader:
        names = _selected(reader, args)
        infos = [reader.tensor_info(n) for n in names]
        paths = reader.object_paths() if args.objects else {}
        prefix = reader.prefix
    shown = [paths.get(i.name, i.name) for i in infos]
    total_bytes = sum(i.size if not i.slices else 0 for i in infos)
    total_elements = sum(i.num_elements for i in infos)
    if args.json:
        rows = [{"name": i.name, "path": paths.get(i.name), "dtype": i.dtype.name, "shape": list(i.shape),
                 "elements": i.num_elements, "bytes": i.size} for i in infos]
        print(json.dumps({"prefix": prefix, "tensors": rows,
                          "total": {"tensors": len(rows), "elements": total_elements, "bytes": total_bytes}},
                         indent=2))
        return 0
    width = max((len(s) for s in shown), default=4)
    dwidth = max((len(i.dtype.name) for i in infos), default=5)
    print(f"{'name':<{width}}  {'dtype':<{dwidth}}  shape")
    for label, info in zip(shown, infos):
        print(f"{label:<{width}}  {info.dtype.name:<{dwidth}}  {_format_shape(info.shape)}")
    print(f"# {len(infos)} tensors, {total_elements} elements, {_human_bytes(total_bytes)} in {prefix}")
    return 0


def cmd_savedmodel_show(args: argparse.Namespace) -> int:
    meta_graphs = savedmodel.read_saved_model(args.dir)
    if args.all:
        sys.stdout.write(savedmodel.show_all(meta_graphs))
    elif args.tag_set is None:
        sys.stdout.write(savedmodel.show_tag_sets(meta_graphs))
    elif args.signature_def is None:
        sys.stdout.write(savedmodel.show_signature_keys(savedmodel.get_meta_graph(meta_graphs, args.tag_set)))
    else:
        meta_graph = savedmodel.get_meta_graph(meta_graphs, args.tag_set)
        sys.stdout.write(savedmodel.show_signature(meta_graph, args.signature_def))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfckpt", description="Inspect and convert TensorFlow checkpoints "
                                     "without TensorFlow. `tfckpt PATH` lists a checkpoint's tensors.")
    parser.add_argument("--version", action="version", version=f"tfckpt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    ls = commands.add_parser("ls", aliases=["show"], help="list tensors: name, dtype, shape, totals")
    ls.add_argument("path", help="checkpoint prefix, .index/.data file, checkpoint directory or SavedModel directory")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.add_argument("--filter", metavar="GLOB", help="only names matching this glob (e.g. 'model/*')")
    ls.add_argument("--regex", metavar="RE", help="only names matching this regular expression")
    ls.add_argument("--objects", action="store_true", help="show TF2 keys as object paths")
    ls.add_argument("--no-optimizer", action="store_true", help="hide optimizer state and slots")
    ls.set_defaults(handler=cmd_ls)

    sm = commands.add_parser("savedmodel", help="inspect a SavedModel (like saved_model_cli)")
    sm_commands = sm.add_subparsers(dest="savedmodel_command", metavar="COMMAND", required=True)
    show = sm_commands.add_parser("show", help="tag-sets, signatures and their inputs/outputs")
    show.add_argument("--dir", required=True, help="the SavedModel directory")
    show.add_argument("--tag_set", help="comma-separated tags selecting a MetaGraphDef")
    show.add_argument("--signature_def", help="a SignatureDef key to show inputs/outputs of")
    show.add_argument("--all", action="store_true", help="everything about every MetaGraphDef")
    show.set_defaults(handler=cmd_savedmodel_show)
    return parser


SUBCOMMANDS = {"ls", "show", "savedmodel"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    positional = [a for a in argv if not a.startswith("-")]
    if positional and positional[0] not in SUBCOMMANDS and "-h" not in argv and "--help" not in argv:
        argv.insert(argv.index(positional[0]), "ls")  # `tfckpt PATH` means `tfckpt ls PATH`
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    handler: Handler = args.handler
    try:
        return handler(args)
    except (TfckptError, OSError) as exc:
        if args.debug:
            raise
        message: Any = exc
        print(f"tfckpt: error: {message}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `tfckpt ls ... | head`
        return 0
