"""``python -m tfckpt.compat script.py args...``: run a script with ``import tensorflow``
resolved to :mod:`tfckpt.compat`.

The stand-in is forced, whether or not TensorFlow is installed (so a run shows what the script
needs beyond checkpoints), for ``tensorflow``, ``tensorflow.compat``, ``tensorflow.compat.v1``
and ``tensorflow.compat.v2`` (and ``tensorflow.train``, ``.errors``, ``.dtypes``, ``.io``,
``.io.gfile``, ``.gfile``). The script runs as ``__main__`` with ``sys.argv`` =
``[script.py, args...]`` and its directory first on ``sys.path``, as ``python script.py args...``
would run it; ``-m module args...`` runs a module as ``python -m`` does. Exit codes are
Python's: the script's ``sys.exit`` code, 1 with a traceback for an uncaught exception, 2
for a usage error here (an unknown option, a script that does not exist).
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys

from .. import storage
from . import tf

USAGE = "usage: python -m tfckpt.compat (script.py | -m module) [args...]"


def install() -> None:
    """Make ``import tensorflow`` (and its ``compat.v1``/``compat.v2``) give :mod:`tfckpt.compat`."""
    names = {"": tf, ".compat": tf.compat, ".compat.v1": tf, ".compat.v2": tf, ".train": tf.train,
             ".errors": tf.errors, ".dtypes": tf.dtypes, ".io": tf.io, ".io.gfile": tf.gfile, ".gfile": tf.gfile}
    for suffix, module in names.items():
        sys.modules[f"tensorflow{suffix}"] = module


def main(argv: list[str] | None = None) -> None:
    """Run the script (or ``-m`` module) that ``argv`` names, with the stand-in installed."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or (args[0] == "-m" and len(args) < 2):
        print(USAGE, file=sys.stderr if not args or args[0] == "-m" else sys.stdout)
        raise SystemExit(0 if args and args[0] in ("-h", "--help") else 2)
    if args[0].startswith("-") and args[0] != "-m":
        print(f"unknown option {args[0]!r}\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    if args[0] != "-m" and not storage.filesystem_for(args[0]).exists(args[0]):  # python's own message and exit code
        print(f"{sys.executable}: can't open file {os.path.abspath(args[0])!r}: no such file or directory",
              file=sys.stderr)
        raise SystemExit(2)
    install()
    if args[0] == "-m":
        sys.path.insert(0, os.getcwd())
        try:
            found = importlib.util.find_spec(args[1])
        except (ImportError, ValueError):  # a parent package missing, or an empty/relative name
            found = None
        if found is None:  # python -m's message and exit code, not a traceback from inside runpy
            print(f"{sys.executable}: No module named {args[1]}", file=sys.stderr)
            raise SystemExit(1)
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return
    script = args[0]
    sys.argv = [script, *args[1:]]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    if sys.path and sys.path[0] == os.getcwd():
        del sys.path[0]  # put there by ``python -m tfckpt.compat``; ``python script.py`` has no cwd on its path
    main()
