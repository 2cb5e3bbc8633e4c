"""Process-wide settings: how many threads tfckpt may use for one read or write.

One number bounds every helper-thread pool of the library, read once per operation:

- local bulk reads (``load``, restores, ``diff``, ``convert``, ``verify``): up to
  ``num_threads()`` positional reads at once;
- writes: with 2 or more, CRC32C of large chunks runs on one helper thread while the
  caller writes the bytes; with 1, inline;
- remote writes: with 2 or more, upload parts are sent by one helper thread while the caller
  encodes the next; with 1, inline;
- remote reads: up to ``REMOTE_FETCHES`` ranged requests in flight (they wait on the network,
  not on a core); with 1, one at a time.

The default is the number of cores this process may run on (``os.sched_getaffinity``, so
``taskset`` and container CPU sets count; ``os.cpu_count()`` elsewhere), or the environment
variable ``TFCKPT_NUM_THREADS`` when it is set. An asynchronous save's background writer is one
more thread, outside this count.
"""

from __future__ import annotations

import operator
import os
import sys

from .errors import InvalidArgumentError

__all__ = ["ENV_NUM_THREADS", "default_num_threads", "get_num_threads", "set_num_threads"]

ENV_NUM_THREADS = "TFCKPT_NUM_THREADS"

_num_threads: int | None = None  # set_num_threads(); None: the default, computed when asked


def _checked(value: object, where: str) -> int:
    # numpy integers count (operator.index takes them); bools and floats do not
    # (numpy is looked up, not imported: a value can only be a numpy bool if numpy is loaded)
    numpy = sys.modules.get("numpy")
    boolean = isinstance(value, bool) or (numpy is not None and isinstance(value, numpy.bool_))
    number = operator.index(value) if hasattr(value, "__index__") and not boolean else 0
    if number < 1:
        raise InvalidArgumentError(f"{where}: the thread count must be a positive integer, got {value!r} "
                                   f"({type(value).__name__})")
    return number


def default_num_threads() -> int:
    """``TFCKPT_NUM_THREADS`` if set, else the cores this process may run on."""
    text = os.environ.get(ENV_NUM_THREADS)
    if text is not None and text.strip():
        try:
            number = int(text)
        except ValueError:
            raise InvalidArgumentError(f"{ENV_NUM_THREADS}={text!r}: expected a positive integer") from None
        return _checked(number, ENV_NUM_THREADS)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """The most threads one tfckpt read or write uses (see the module docstring).

    Examples
    --------
    >>> import tfckpt
    >>> tfckpt.get_num_threads() >= 1
    True
    """
    return _num_threads if _num_threads is not None else default_num_threads()


def set_num_threads(number: int | None) -> None:
    """Set the thread count for the whole process; ``None`` returns to the default.

    Examples
    --------
    >>> import tfckpt
    >>> tfckpt.set_num_threads(1)        # everything on the calling thread
    >>> tfckpt.get_num_threads()
    1
    >>> tfckpt.set_num_threads(None)     # back to TFCKPT_NUM_THREADS or the core count
    """
    global _num_threads
    _num_threads = None if number is None else _checked(number, "set_num_threads")
