"""Command line: ``tfckpt PATH`` (or ``python -m tfckpt PATH``) lists a checkpoint's tensors.

Argument parsing and printing only; everything else comes from the library.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__
from .api import load_checkpoint
from .errors import TfckptError


def _format_shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tfckpt", description="List the tensors of a TensorFlow checkpoint (name, dtype, shape).")
    parser.add_argument("path", help="checkpoint prefix, .index/.data file, checkpoint directory "
                                     "or SavedModel directory")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"tfckpt {__version__}")
    args = parser.parse_args(argv)
    try:
        with load_checkpoint(args.path) as reader:
            infos = reader.infos()
            prefix = reader.prefix
    except (TfckptError, OSError) as exc:
        if args.debug:
            raise
        print(f"tfckpt: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        rows = [{"name": i.name, "dtype": i.dtype.name, "shape": list(i.shape), "bytes": i.size}
                for i in infos]
        print(json.dumps({"prefix": prefix, "tensors": rows}, indent=2))
        return 0
    width = max((len(i.name) for i in infos), default=4)
    dwidth = max((len(i.dtype.name) for i in infos), default=5)
    print(f"{'name':<{width}}  {'dtype':<{dwidth}}  shape")
    for info in infos:
        print(f"{info.name:<{width}}  {info.dtype.name:<{dwidth}}  {_format_shape(info.shape)}")
    total = sum(i.num_elements for i in infos if i.dtype.is_fixed_size)
    print(f"# {len(infos)} tensors, {total} numeric elements in {prefix}")
    return 0
