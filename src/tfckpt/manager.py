"""``CheckpointManager``: numbered saves of a :class:`Checkpoint` with TF2's retention.

State file, as TensorFlow's manager writes it: relative paths, one timestamp per kept
checkpoint, and ``last_preserved_timestamp``. Retention: after each save, while more than
``max_to_keep`` are managed, the oldest leaves the list; with ``keep_checkpoint_every_n_hours``
it is kept on disk if it is at least N hours newer than the last preserved one (which it
then becomes), otherwise its ``.index`` and ``.data-*`` files are deleted. A manager created
over an existing directory takes over the checkpoints newer than ``last_preserved_timestamp``;
unlike TensorFlow's, it deletes only checkpoint files in its directory (or below it), and
skips with a warning any path of the state file that leads elsewhere.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import state, storage
from .arguments import path_argument
from .asyncsave import CheckpointOptions, is_async
from .checkpoint import Checkpoint
from .errors import InvalidArgumentError
from .state import get_checkpoint_state, prune_checkpoint, update_checkpoint_state
from .storage import PathLike
from .variables import as_int_scalar

__all__ = ["CheckpointManager"]


class CheckpointManager:
    """Keeps numbered checkpoints of one :class:`Checkpoint` in a directory, like
    ``tf.train.CheckpointManager``.

    Parameters
    ----------
    checkpoint:
        The :class:`Checkpoint` to save and restore.
    directory:
        Where checkpoints and the ``checkpoint`` state file live.
    max_to_keep:
        How many to keep (a positive int), or ``None`` to keep all.
    keep_checkpoint_every_n_hours:
        Keep one checkpoint per this many hours for good, beyond ``max_to_keep``.
    checkpoint_name:
        Prefix of the files: ``<directory>/<checkpoint_name>-<number>``.
    step_counter, checkpoint_interval:
        With both, ``save()`` skips steps closer than ``checkpoint_interval`` to the last save.
    init_fn:
        Called by :meth:`restore_or_initialize` when there is nothing to restore.

    Examples
    --------
    >>> import os, tfckpt, numpy as np, tempfile
    >>> ckpt = tfckpt.Checkpoint(w=tfckpt.Variable(np.zeros(2)))
    >>> manager = tfckpt.CheckpointManager(ckpt, tempfile.mkdtemp(), max_to_keep=2)
    >>> [os.path.basename(manager.save()) for _ in range(3)]
    ['ckpt-1', 'ckpt-2', 'ckpt-3']
    >>> [os.path.basename(p) for p in manager.checkpoints]
    ['ckpt-2', 'ckpt-3']
    """

    def __init__(self, checkpoint: Checkpoint, directory: PathLike, max_to_keep: int | None,
                 keep_checkpoint_every_n_hours: float | None = None, checkpoint_name: str = "ckpt",
                 step_counter: Any = None, checkpoint_interval: int | None = None,
                 init_fn: Callable[[], Any] | None = None, last_checkpoint_step: int | None = None) -> None:
        if max_to_keep is not None and max_to_keep <= 0:
            raise InvalidArgumentError(f"Expected a positive integer or `None` for `max_to_keep`, got {max_to_keep}.")
        if checkpoint_interval is not None and step_counter is None:
            raise InvalidArgumentError("`step_counter` should be passed if `checkpoint_interval` is not None.")
        self._checkpoint = checkpoint
        self._max_to_keep = max_to_keep
        self._keep_hours = keep_checkpoint_every_n_hours
        self._directory = path_argument(directory, "directory")
        self._prefix = storage.join(self._directory, checkpoint_name)
        self._step_counter = step_counter
        self._checkpoint_interval = checkpoint_interval
        self._last_checkpoint_step = last_checkpoint_step
        self._init_fn = init_fn
        self._maybe_delete: OrderedDict[str, float] = OrderedDict()
        now = state.now()
        saved = get_checkpoint_state(self._directory)
        if saved is None:
            self._latest_checkpoint: str | None = None
            self._last_preserved_timestamp = now - 1.0
            return
        self._latest_checkpoint = saved.model_checkpoint_path
        self._last_preserved_timestamp = min(saved.last_preserved_timestamp, now)
        timestamps = saved.all_model_checkpoint_timestamps or (
            [self._last_preserved_timestamp] * len(saved.all_model_checkpoint_paths))
        for path, timestamp in zip(saved.all_model_checkpoint_paths, timestamps):
            timestamp = min(timestamp, now)
            if timestamp > self._last_preserved_timestamp:
                self._maybe_delete[path] = timestamp

    @property
    def directory(self) -> str:
        """The directory checkpoints are saved in (and its ``checkpoint`` state file)."""
        return self._directory

    @property
    def checkpoint(self) -> Checkpoint:
        """The :class:`~tfckpt.Checkpoint` this manager saves."""
        return self._checkpoint

    @property
    def checkpoint_interval(self) -> int | None:
        """Save only when ``step_counter`` advanced this much since the last save (``None``: always)."""
        return self._checkpoint_interval

    @property
    def latest_checkpoint(self) -> str | None:
        """The newest checkpoint's prefix, or ``None``."""
        self._checkpoint.wait()
        return self._latest_checkpoint

    @property
    def checkpoints(self) -> list[str]:
        """Managed checkpoint prefixes, oldest first."""
        self._checkpoint.wait()
        return list(self._maybe_delete)

    def save(self, checkpoint_number: Any = None, check_interval: bool = True,
             options: CheckpointOptions | None = None, *, asynchronous: bool = False) -> str | None:
        """Save ``<directory>/<name>-<n>`` (``n``: ``checkpoint_number`` or the incremented
        ``save_counter``), update the state file, prune; return the path or ``None`` if the
        step interval says to skip.

        With ``asynchronous=True`` (or ``options=CheckpointOptions(enable_async=True)``) it
        returns once the values are snapshotted; the write, the state file and pruning follow
        in the background, and :meth:`wait` waits for them. A save waits for the previous one
        first (and raises its error); so do ``checkpoints`` and ``latest_checkpoint``.
        """
        asynchronous = is_async(options, asynchronous)
        if asynchronous:
            self._checkpoint._saves.check_open(self._prefix)  # refused after close()
        self._checkpoint.wait()
        if self._checkpoint_interval is not None:
            step = as_int_scalar(self._step_counter, "step_counter")
            if self._last_checkpoint_step is not None:
                if step == self._last_checkpoint_step:
                    return None
                if check_interval and step < self._last_checkpoint_step + self._checkpoint_interval:
                    return None
            self._last_checkpoint_step = step
        counter = self._checkpoint.save_counter
        counter.assign(counter.numpy() + 1)
        number = counter if checkpoint_number is None else checkpoint_number
        path = f"{self._prefix}-{as_int_scalar(number, 'checkpoint_number')}"
        return self._checkpoint._write(path, asynchronous, after=lambda: self._keep(path))

    def _keep(self, path: str) -> None:
        """Bookkeeping after ``path`` is written: the state file, then retention."""
        self._maybe_delete.pop(path, None)
        self._maybe_delete[path] = state.now()
        self._latest_checkpoint = path
        self._record_state()
        self._sweep()
        self._record_state()

    def wait(self) -> str | None:
        """Wait for an asynchronous save in flight and its bookkeeping; return its path
        (``None`` if there was none) or raise its error."""
        return self._checkpoint.wait()

    def close(self) -> str | None:
        """Wait for an asynchronous save in flight and its bookkeeping (return its path or
        raise its error, as :meth:`wait`) and refuse later asynchronous saves of this
        manager's checkpoint; synchronous saves and restores still work."""
        return self._checkpoint.close()

    def _record_state(self) -> None:
        assert self._latest_checkpoint is not None
        update_checkpoint_state(self._directory, self._latest_checkpoint, list(self._maybe_delete),
                                all_model_checkpoint_timestamps=list(self._maybe_delete.values()),
                                last_preserved_timestamp=self._last_preserved_timestamp,
                                save_relative_paths=True)

    def _sweep(self) -> None:
        if not self._max_to_keep:
            return
        while len(self._maybe_delete) > self._max_to_keep:
            # The newest entry is the latest checkpoint, so it is never the one popped here.
            path, timestamp = self._maybe_delete.popitem(last=False)
            if self._keep_hours and timestamp - self._keep_hours * state.SECONDS_PER_HOUR >= self._last_preserved_timestamp:
                self._last_preserved_timestamp = timestamp
                continue
            prune_checkpoint(path, self._directory, meta_graph_suffix=None)  # TF2's manager writes no .meta

    def restore_or_initialize(self) -> str | None:
        """Restore the latest checkpoint if there is one and return its path; otherwise call
        ``init_fn`` (if given) and return ``None``."""
        if self._latest_checkpoint is not None:
            self._checkpoint.restore(self._latest_checkpoint)
            if self._checkpoint_interval is not None:
                self._last_checkpoint_step = as_int_scalar(self._step_counter, "step_counter")
            return self._latest_checkpoint
        if self._init_fn is not None:
            self._init_fn()
        return None
