"""Asynchronous saves: the caller waits for a snapshot only; the write happens in the background.

``save(..., asynchronous=True)``, ``Checkpoint.save/write``, ``CheckpointManager.save`` and
``Saver.save`` with ``asynchronous=True`` (or TensorFlow's spelling,
``options=CheckpointOptions(enable_async=True)``) check every value, take a snapshot and
return; a background thread then writes the bundle through the same writer and publisher as a
synchronous save (so every crash guarantee holds) and updates the state file after it.

The snapshot: values that cannot change are kept as they are (arrays whose memory ends in a
read-only buffer: ``bytes``, a read-only ``mmap`` such as ``load_checkpoint(mmap=True)``'s views,
a JAX array); everything else (numpy arrays, torch tensors, :class:`Variable` values, read-only
views of writable memory) is copied once, into a buffer that the owner (a ``Checkpoint``,
``Saver`` or ``CheckpointManager``) keeps and reuses for the next save of the same shape and
dtype.

At most one save per owner (per prefix for :func:`tfckpt.save`) is in flight: the next one
waits for it first. A failure surfaces from :meth:`AsyncSave.wait`, from the owner's
``wait()``, or from its next save. The thread is not a daemon, so the interpreter waits for
the write before it exits; a failure nobody waited for is printed to stderr then.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .bundle.writer import BundleWriter, check_prefix, prepare
from .dtypes import DType, DTypeLike
from .errors import InvalidArgumentError
from .storage import is_url

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["AsyncSave", "Background", "CheckpointOptions", "SnapshotWriter", "is_async", "is_immutable",
           "save_in_background"]


@dataclass(frozen=True)
class CheckpointOptions:
    """The options of ``tf.train.CheckpointOptions`` that apply to tfckpt: whether a save is
    asynchronous (TensorFlow's two names for it; either turns it on). TensorFlow's own
    ``CheckpointOptions`` objects are accepted too.

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> ckpt = tfckpt.Checkpoint(w=np.ones(3))
    >>> path = ckpt.save(os.path.join(tempfile.mkdtemp(), "ck"),
    ...                  options=tfckpt.CheckpointOptions(enable_async=True))
    >>> ckpt.wait() == path
    True
    """

    enable_async: bool = False
    experimental_enable_async_checkpoint: bool = False


def is_async(options: Any, asynchronous: bool) -> bool:
    """Whether ``asynchronous`` or ``options`` (a :class:`CheckpointOptions`, tfckpt's or
    TensorFlow's) asks for an asynchronous save."""
    if not isinstance(asynchronous, bool):
        raise InvalidArgumentError(f"asynchronous must be True or False, got {asynchronous!r}")
    if options is None:
        return asynchronous
    flags = [getattr(options, name, None) for name in ("enable_async", "experimental_enable_async_checkpoint")]
    if all(flag is None for flag in flags):
        raise InvalidArgumentError(f"options must be a CheckpointOptions, got {type(options).__name__}")
    return asynchronous or any(bool(flag) for flag in flags)


def is_immutable(array: np.ndarray) -> bool:
    """Whether nothing can change ``array``'s values: its memory, followed through every base,
    ends in a read-only buffer (``bytes``, a read-only ``mmap``, a JAX array). A read-only array
    that owns its memory, or views writable memory, can still change."""
    if array.dtype.hasobject:
        return False
    base: Any = array
    while isinstance(base, np.ndarray):
        if base.flags.writeable or base.base is None:  # an owner's flag can be switched back on
            return False
        base = base.base
    while isinstance(base, memoryview):  # toreadonly() of a bytearray is read-only, its memory not
        if not base.readonly:
            return False
        base = base.obj
    if base is None or isinstance(base, np.ndarray):
        return False
    try:
        with memoryview(base) as view:
            return view.readonly
    except TypeError:
        return False


def _snapshot_strings(array: np.ndarray) -> np.ndarray:
    """A copy of a string tensor whose items cannot change (``bytearray`` and ``memoryview``
    items become ``bytes``; ``bytes`` and ``str`` items are immutable already)."""
    out = array.copy()
    for index, item in np.ndenumerate(out):
        if isinstance(item, (bytearray, memoryview)):
            out[index] = bytes(item)
    return out


class AsyncSave:
    """A save running in the background, like a ``concurrent.futures.Future`` of its prefix.

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> weights = np.zeros(4)
    >>> pending = tfckpt.save({"w": weights}, os.path.join(tempfile.mkdtemp(), "m"), asynchronous=True)
    >>> weights += 1                    # the snapshot was taken: the save writes zeros
    >>> prefix = pending.wait()         # the prefix, once published (or the save's error)
    >>> tfckpt.load(prefix)["w"]
    array([0., 0., 0., 0.])
    """

    def __init__(self, prefix: str, job: Callable[[], None]) -> None:
        self.prefix = prefix
        self._job = job
        self._error: BaseException | None = None
        self._reported = False
        self._thread = threading.Thread(target=self._run, name="tfckpt-async-save", daemon=False)

    def _run(self) -> None:
        try:
            self._job()
        except BaseException as error:  # noqa: BLE001 - handed to whoever waits
            self._error = error
            with _LOCK:
                _UNREPORTED.add(self)
        finally:
            self._job = _nothing  # drops the snapshot as soon as it is written

    def done(self) -> bool:
        """Whether the save has finished (published, or failed)."""
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> str:
        """Wait for the save; return its prefix, or raise its error (every time)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the asynchronous save of {self.prefix} is still running after {timeout} s")
        if self._error is not None:
            self._reported = True
            with _LOCK:
                _UNREPORTED.discard(self)
            raise self._error
        return self.prefix

    result = wait  # concurrent.futures' name

    def __repr__(self) -> str:
        status = "running" if not self.done() else ("failed" if self._error is not None else "done")
        return f"<tfckpt.AsyncSave {self.prefix!r} {status}>"


def _nothing() -> None:
    pass


_LOCK = threading.Lock()
_UNREPORTED: set[AsyncSave] = set()


@atexit.register
def _report_unobserved() -> None:
    # Non-daemon threads are joined before atexit handlers run: every save has finished.
    with _LOCK:
        failed = sorted(_UNREPORTED, key=lambda save: save.prefix)
        _UNREPORTED.clear()
    for save in failed:
        sys.stderr.write(f"tfckpt: the asynchronous save of {save.prefix} failed and nobody waited for it: "
                         f"{save._error!r}\n")


class Background:
    """The asynchronous saves of one owner: at most one in flight, and the snapshot buffers
    (reused by the next save when ``keep_buffers``)."""

    def __init__(self, *, keep_buffers: bool = True) -> None:
        self._lock = threading.Lock()
        # Held from writer() until its save has started: a second thread's save waits for the
        # first one's snapshot (the buffers are shared) and then for its write, as one thread's would.
        self._turn = threading.Lock()
        self._pending: AsyncSave | None = None
        self._keep_buffers = keep_buffers
        self._buffers: dict[str, np.ndarray] = {}

    def writer(self, prefix: str, *, sync: bool = True, after: Callable[[], None] | None = None) -> SnapshotWriter:
        """A writer that snapshots what it is given and writes it in the background on a clean
        exit, then calls ``after`` there (e.g. the state file update). Waits for another thread's
        snapshot and for the save in flight first, raising its error if nobody has seen it. Use it
        in a ``with`` block: its exit lets the next save take its turn."""
        self._turn.acquire()
        try:
            self.wait()
            return SnapshotWriter(self, check_prefix(prefix), sync=sync, after=after)
        except BaseException:
            self._turn.release()
            raise

    def wait(self) -> str | None:
        """Wait for the save in flight; return its prefix (``None`` if there was none, or it
        failed and its error was already raised) or raise its error, once."""
        with self._lock:
            pending = self._pending
        if pending is None:
            return None
        pending._thread.join()
        with self._lock:
            if self._pending is pending:
                self._pending = None
        if pending._error is not None:
            if not pending._reported:
                pending.wait()
            return None
        return pending.prefix

    def idle(self) -> bool:
        """Nothing in flight or being snapshotted, and no failure left to report."""
        if self._turn.locked():
            return False
        with self._lock:
            pending = self._pending
        return pending is None or (pending.done() and (pending._error is None or pending._reported))

    def snapshot(self, name: str, array: np.ndarray) -> np.ndarray:
        """``array``'s values as they are now, safe from later changes by the caller."""
        if is_immutable(array):
            return array
        if array.dtype.hasobject:
            return _snapshot_strings(array)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != array.shape or buffer.dtype != array.dtype:
            buffer = np.empty(array.shape, array.dtype)
            if self._keep_buffers:
                self._buffers[name] = buffer
        np.copyto(buffer, array, casting="no")
        return buffer

    def start(self, prefix: str, job: Callable[[], None]) -> AsyncSave:
        save = AsyncSave(prefix, job)
        with self._lock:
            self._pending = save
        save._thread.start()
        return save


class SnapshotWriter:
    """:class:`tfckpt.CheckpointWriter`'s ``add`` for an asynchronous save: each value is
    checked and snapshotted at once; a clean exit of the ``with`` block starts the write."""

    def __init__(self, background: Background, prefix: str, *, sync: bool,
                 after: Callable[[], None] | None) -> None:
        self.prefix = prefix
        self._background = background
        self._sync = sync
        self._after = after
        self._items: list[tuple[str, np.ndarray, DType]] = []
        self._names: set[str] = set()
        self.handle: AsyncSave | None = None

    def add(self, name: str, value: Any, dtype: DTypeLike | None = None) -> None:
        """Check ``value`` as :meth:`tfckpt.CheckpointWriter.add` does and snapshot it."""
        self.add_prepared(*prepare(name, value, dtype))

    def add_prepared(self, name: str, array: np.ndarray, tf_dtype: DType) -> None:
        """:meth:`add` for a tensor already checked by ``prepare``: snapshot it."""
        if name in self._names:
            raise InvalidArgumentError(f"Adding duplicate key: {name}")
        self._names.add(name)
        self._items.append((name, self._background.snapshot(name, array), tf_dtype))

    def _write(self) -> None:
        with BundleWriter(self.prefix, sync=self._sync) as writer:
            writer.add_many(self._items)
        if self._after is not None:
            self._after()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            if exc_type is None:
                self.handle = self._background.start(self.prefix, self._write)
        finally:
            self._background._turn.release()


_BY_PREFIX: dict[str, Background] = {}  # tfckpt.save's one save in flight per prefix


def save_in_background(tensors: Any, prefix: str, *, sync: bool) -> AsyncSave:
    """:func:`tfckpt.save` with ``asynchronous=True``: the saves of one prefix one at a time."""
    key = prefix if is_url(prefix) else os.path.abspath(prefix)
    with _LOCK:
        for name in [name for name, background in _BY_PREFIX.items() if name != key and background.idle()]:
            del _BY_PREFIX[name]  # keep only saves in flight and failures left to report
        background = _BY_PREFIX.setdefault(key, Background(keep_buffers=False))
    with background.writer(prefix, sync=sync) as writer:
        for name, value in tensors.items():
            writer.add(name, value)
    assert writer.handle is not None
    return writer.handle
