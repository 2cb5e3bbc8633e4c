"""Ctrl-C (SIGINT) in the ``tfckpt`` command: one line on stderr, ``tfckpt: interrupted``, and
exit status 130, whenever it lands. Reads and writes no file.

Two ways to get there, both here:

- The program (``tfckpt``, ``python -m tfckpt``) ends at once (:func:`end_at_once`). Python's own
  KeyboardInterrupt unwinds through whatever was running, and in the middle of loading a C
  extension that is not safe: protobuf 4.21's message building dies of SIGSEGV about one time in
  twenty when interrupted, numpy's Cython modules warn, importlib prints tracebacks it cannot
  raise. A reading command has nothing to undo.
- A command that writes, ``--debug``, and :func:`tfckpt.cli.main` called from Python get
  KeyboardInterrupt (:func:`raising`): the writer removes its partial output, ``--debug`` shows
  the stack, and a caller's program is never ended behind its back.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager

TYPE_CHECKING = False  # as in tfckpt/__init__.py: typing's import runs before the program takes over Ctrl-C
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType
    from typing import Any, NoReturn

__all__ = ["MESSAGE", "STATUS", "end_at_once", "ending_at_once", "raising"]

MESSAGE = "tfckpt: interrupted"
STATUS = 130  # 128 + SIGINT, what a shell reports for a command Ctrl-C ended


def end_at_once(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGINT handler of the program: the line, then ``_exit`` (no unwinding, no atexit, no flush
    of stdout: a reader of a full pipe would block the exit)."""
    try:
        os.write(2, (MESSAGE + "\n").encode())
    except OSError:  # stderr closed: the status alone says it
        pass
    os._exit(STATUS)


@contextmanager
def ending_at_once() -> Iterator[bool]:
    """Within: Ctrl-C ends the program at once; whether it does (not where SIGINT is ignored,
    as in a background job, or handled by a caller, or off the main thread). After: SIGINT is
    ignored, so that the finished command's output and status stand while the interpreter shuts
    down (joins threads, runs atexit callbacks)."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield False
        return
    try:
        signal.signal(signal.SIGINT, end_at_once)
    except ValueError:  # not the main thread: signals are not ours
        yield False
        return
    try:
        yield True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def raising(sigints: list[int]) -> Iterator[bool]:
    """Within: Ctrl-C raises KeyboardInterrupt, as Python's own handler does, and appends to
    ``sigints``; whether it does (it takes over Python's default handler and :func:`end_at_once`,
    on the main thread only). After: the handler before.

    A KeyboardInterrupt raised where Python cannot propagate it (a weakref callback such as
    importlib's module-lock cleanup, a ``__del__``) is reported as "Exception ignored" and
    swallowed, and the command would run on to status 0: within, such reports are kept quiet
    and the caller ends with :data:`STATUS` because ``sigints`` is not empty."""
    if signal.getsignal(signal.SIGINT) not in (signal.default_int_handler, end_at_once):
        yield False
        return

    def note(signum: int, frame: FrameType | None) -> None:
        sigints.append(signum)
        signal.default_int_handler(signum, frame)

    try:
        previous = signal.signal(signal.SIGINT, note)
    except ValueError:
        yield False
        return
    previous_hook: Callable[[Any], object] = sys.unraisablehook

    def quiet_interrupts(unraisable: Any) -> None:
        if not (sigints and issubclass(unraisable.exc_type, KeyboardInterrupt)):
            previous_hook(unraisable)

    sys.unraisablehook = quiet_interrupts
    try:
        yield True
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
