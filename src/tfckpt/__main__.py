"""``python -m tfckpt`` and the ``tfckpt`` command (pyproject's ``[project.scripts]``): see
:mod:`tfckpt.cli`. Its import is guarded here, so that Ctrl-C while it loads prints one line
too; once running, :func:`tfckpt.cli.main` handles Ctrl-C itself."""

import signal
import sys
from typing import Any


def main() -> int:
    """Run the ``tfckpt`` command on ``sys.argv``; its exit status."""
    swallowed: list[Any] = []  # Ctrl-C where Python can only report it (importlib's weakref callbacks)
    previous_hook = sys.unraisablehook

    def note(unraisable: Any) -> None:
        if issubclass(unraisable.exc_type, KeyboardInterrupt):
            swallowed.append(unraisable.exc_type)
        else:
            previous_hook(unraisable)

    sys.unraisablehook = note
    try:
        from .cli import main as run
    except KeyboardInterrupt:  # Ctrl-C while the command line's modules load: one line, as once running
        swallowed.append(KeyboardInterrupt)
    finally:
        sys.unraisablehook = previous_hook
    if swallowed:
        print("tfckpt: interrupted", file=sys.stderr)
        return 130
    status = run()
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        # The command is over: Ctrl-C while the interpreter shuts down (joining threads, atexit
        # callbacks) would print a traceback after its output and status; it is ignored.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return status


if __name__ == "__main__":
    sys.exit(main())
