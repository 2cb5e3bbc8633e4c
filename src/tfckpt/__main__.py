"""``python -m tfckpt`` and the ``tfckpt`` command (pyproject's ``[project.scripts]``): see
:mod:`tfckpt.cli`. Its import is guarded here, so that Ctrl-C while it loads prints one line
too; once running, :func:`tfckpt.cli.main` handles Ctrl-C itself."""

import sys


def main() -> int:
    """Run the ``tfckpt`` command on ``sys.argv``; its exit status."""
    try:
        from .cli import main as run
    except KeyboardInterrupt:  # Ctrl-C while the command line's modules load: one line, as once running
        print("tfckpt: interrupted", file=sys.stderr)
        return 130
    return run()


if __name__ == "__main__":
    sys.exit(main())
