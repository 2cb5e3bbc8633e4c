"""``python -m tfckpt`` and the ``tfckpt`` command (pyproject's ``[project.scripts]``): see
:mod:`tfckpt.cli`. Ctrl-C ends the program at once from the first line of :func:`main` on, while
the command line's modules load too (:mod:`tfckpt.interrupt` says why, and which commands ask
otherwise)."""

import sys

from .interrupt import ending_at_once  # here, not in main(): an import there could be interrupted


def main() -> int:
    """Run the ``tfckpt`` command on ``sys.argv``; its exit status."""
    with ending_at_once():
        from .cli import main as run

        return run()


if __name__ == "__main__":
    sys.exit(main())
