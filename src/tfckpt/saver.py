"""TF1-style ``Saver``: save and restore a list or dict of variables, keep the state file,
name checkpoints by global step and prune old ones exactly as ``tf.compat.v1.train.Saver``.

Retention (as TensorFlow's): every save appends ``(path, time)`` to ``last_checkpoints``;
once there are more than ``max_to_keep``, the oldest moves to a deletion queue, and each save
then handles *one* queued checkpoint: it is kept for good if it was saved after the next
"keep every N hours" mark (which then advances by N hours), otherwise all its files are
deleted. ``max_to_keep`` of 0 or ``None`` tracks nothing and deletes nothing. Unlike
TensorFlow's, only checkpoint files in the directory of the save (or below it) are ever
deleted: a path from elsewhere (e.g. given to ``recover_last_checkpoints`` from an edited
state file) is skipped with a warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import state, storage
from .api import read_consistently
from .arguments import path_argument
from .asyncsave import Background, is_async
from .bundle.writer import BundleWriter, prepare
from .errors import ArgumentTypeError, InvalidArgumentError
from .restore import Target, commit_restore, plan_restore
from .state import STATE_FILENAME, get_checkpoint_mtimes, prune_checkpoint, update_checkpoint_state
from .storage import PathLike
from .values import is_tensor
from .variables import Variable, as_int_scalar

__all__ = ["Saver", "named_targets"]


def _target_value(target: Target) -> np.ndarray:
    return target.value() if isinstance(target, Variable) else target


def named_targets(var_list: Sequence[Variable] | Mapping[str, Target], what: str = "Saver") -> dict[str, Target]:
    """``{checkpoint name: variable or array}`` from a list (each variable's own name) or a
    dict (its keys as names; the variables' own names are ignored)."""
    targets: dict[str, Target] = {}
    if isinstance(var_list, Mapping):
        items = list(var_list.items())
    elif isinstance(var_list, (list, tuple)):
        items = []
        for item in var_list:
            if not isinstance(item, Variable):
                raise InvalidArgumentError(f"{what}: a list may hold only tfckpt.Variable objects (found "
                                           f"{type(item).__name__}); use a dict to name plain arrays")
            if item.name is None:
                raise InvalidArgumentError(f"{what}: {item!r} has no name, so it cannot be saved through a "
                                           f"list; give it a name or pass a dict {{name: variable}}")
            items.append((item.name, item))
    else:
        raise InvalidArgumentError(f"{what}: var_list must be a list or a dict, got {type(var_list).__name__}")
    for name, target in items:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"{what}: names must be non-empty strings, got {name!r}")
        if not isinstance(target, (Variable, np.ndarray)) and not is_tensor(target):
            raise InvalidArgumentError(f"{what}: {name!r} must be a tfckpt.Variable, a numpy array, a torch "
                                       f"tensor or a JAX array, got {type(target).__name__}")
        if name in targets:
            raise InvalidArgumentError(f"{what}: duplicate variable name {name!r}")
        targets[name] = target
    return targets


class Saver:
    """Saves and restores variables, like ``tf.compat.v1.train.Saver`` without a session.

    Parameters
    ----------
    var_list:
        A list of named :class:`Variable` objects (saved under their own names) or a dict
        ``{checkpoint name: Variable, writable numpy array or torch tensor (restored in place),
        or JAX array (saved only)}``.
    max_to_keep:
        How many recent checkpoints to keep; ``None`` or 0 keeps all.
    keep_checkpoint_every_n_hours:
        Additionally keep one checkpoint per this many hours for good.
    save_relative_paths:
        Write paths relative to the directory in the ``checkpoint`` file (default), so the
        directory can be moved. TF1's default is ``False``.
    pad_step_number:
        Name checkpoints ``prefix-%08d`` instead of ``prefix-%d``.
    allow_empty:
        Permit an empty ``var_list`` (``save`` then returns ``None``).

    Examples
    --------
    >>> import tempfile, os
    >>> v1 = Variable([1.0, 2.0, 3.0], name="v1")
    >>> saver = Saver([v1], max_to_keep=2)
    >>> path = saver.save(os.path.join(tempfile.mkdtemp(), "model.ckpt"), global_step=10)
    >>> os.path.basename(path)
    'model.ckpt-10'
    >>> _ = v1.assign([0.0, 0.0, 0.0])
    >>> saver.restore(path)
    >>> v1.numpy()
    array([1., 2., 3.])
    """

    def __init__(self, var_list: Sequence[Variable] | Mapping[str, Target], *, max_to_keep: int | None = 5,
                 keep_checkpoint_every_n_hours: float = 10000.0, save_relative_paths: bool = True,
                 pad_step_number: bool = False, allow_empty: bool = False) -> None:
        self._targets = named_targets(var_list)
        if not self._targets and not allow_empty:
            raise InvalidArgumentError("No variables to save (pass allow_empty=True to allow an empty Saver)")
        if max_to_keep is not None and max_to_keep < 0:
            raise InvalidArgumentError(f"max_to_keep must be None or >= 0, got {max_to_keep}")
        self.max_to_keep = max_to_keep
        self.keep_checkpoint_every_n_hours = keep_checkpoint_every_n_hours
        self.save_relative_paths = save_relative_paths
        self.pad_step_number = pad_step_number
        self._last_checkpoints: list[tuple[str, float]] = []
        self._to_delete: list[tuple[str, float]] = []
        self._next_checkpoint_time = state.now() + keep_checkpoint_every_n_hours * state.SECONDS_PER_HOUR
        self._saves = Background()  # asynchronous saves: one in flight, snapshot buffers

    @property
    def var_names(self) -> list[str]:
        """The checkpoint names this saver writes and restores, in save order."""
        return sorted(self._targets)

    # -- saving ----------------------------------------------------------------------------

    def checkpoint_path(self, save_path: str, global_step: Any = None) -> str:
        """The prefix :meth:`save` writes for ``save_path`` and ``global_step``:
        ``save_path-<step>`` (zero-padded to 8 digits with ``pad_step_number``)."""
        save_path = path_argument(save_path, "save_path")
        if global_step is None:
            return save_path
        step = as_int_scalar(global_step, "global_step")
        return f"{save_path}-{step:08d}" if self.pad_step_number else f"{save_path}-{step}"

    def save(self, save_path: PathLike, global_step: Any = None, latest_filename: str | None = None,
             write_state: bool = True, *, asynchronous: bool = False) -> str | None:
        """Write every variable to ``save_path`` (``save_path-<step>`` with ``global_step``).

        Returns the checkpoint prefix. Updates the ``checkpoint`` state file (atomically) and
        prunes old checkpoints unless ``write_state`` is false. The parent directory is
        created if needed.

        With ``asynchronous=True`` it returns once the values are snapshotted; the write, the
        state file and pruning follow in the background (see :mod:`tfckpt.asyncsave`) and
        :meth:`wait` waits for them. A save waits for the previous one first (and raises its
        error); so does ``last_checkpoints``.
        """
        asynchronous = is_async(None, asynchronous)
        save_path = path_argument(save_path, "save_path")
        if asynchronous:
            self._saves.check_open(save_path)  # refused after close()
        self._saves.wait()
        latest_filename = latest_filename or STATE_FILENAME
        if storage.dirname(latest_filename):
            raise InvalidArgumentError("'latest_filename' must not contain path components")
        if global_step is None and storage.basename(save_path) == latest_filename:
            raise InvalidArgumentError(f"'latest_filename' collides with 'save_path': "
                                       f"{latest_filename!r} and {save_path!r}")
        if not self._targets:
            return None
        prefix = self.checkpoint_path(save_path, global_step)
        directory = storage.dirname(save_path)

        def keep() -> None:
            self._record(prefix)
            update_checkpoint_state(directory, prefix, [path for path, _ in self._last_checkpoints],
                                    latest_filename, save_relative_paths=self.save_relative_paths)
            self._maybe_delete_one(directory)

        after = keep if write_state else None
        # TF1 writes the tensors sorted by name; doing the same keeps files byte-identical.
        # Every value is checked and converted before the first byte is written.
        prepared = [prepare(name, _target_value(target), dtype=target.dtype if isinstance(target, Variable) else None)
                    for name, target in ((name, self._targets[name]) for name in self.var_names)]
        with (self._saves.writer(prefix, after=after) if asynchronous else BundleWriter(prefix)) as writer:
            for name, array, dtype in prepared:
                writer.add_prepared(name, array, dtype)
        if after is not None and not asynchronous:
            after()
        return prefix

    def wait(self) -> str | None:
        """Wait for an asynchronous save in flight and its bookkeeping; return its prefix
        (``None`` if there was none) or raise its error (once)."""
        return self._saves.wait()

    def close(self) -> str | None:
        """Wait for an asynchronous save in flight and its bookkeeping (return its prefix or
        raise its error, as :meth:`wait`) and refuse later asynchronous saves; synchronous
        saves and restores still work."""
        return self._saves.close()

    def _record(self, prefix: str) -> None:
        if not self.max_to_keep:
            return
        self._last_checkpoints = [p for p in self._last_checkpoints if p[0] != prefix]
        self._last_checkpoints.append((prefix, state.now()))
        if len(self._last_checkpoints) > self.max_to_keep:
            self._to_delete.append(self._last_checkpoints.pop(0))

    def _maybe_delete_one(self, directory: str) -> None:
        if not self._to_delete:
            return
        prefix, saved_at = self._to_delete.pop(0)
        if saved_at > self._next_checkpoint_time:
            self._next_checkpoint_time += self.keep_checkpoint_every_n_hours * state.SECONDS_PER_HOUR
            return  # kept for good
        try:
            prune_checkpoint(prefix, directory)
        except OSError as exc:
            warnings.warn(f"could not delete old checkpoint {prefix}: {exc}", RuntimeWarning, stacklevel=3)

    # -- restoring -------------------------------------------------------------------------

    def restore(self, save_path: PathLike) -> None:
        """Restore every variable of this saver in place from ``save_path``.

        Variables outside the saver's ``var_list`` are untouched. If any name is missing or
        any shape or dtype differs, nothing is restored and the error names the variable,
        the checkpoint, and both shapes or dtypes.
        """
        if save_path is None:  # TensorFlow's words (a ValueError there; also a TypeError here)
            raise ArgumentTypeError("Can't load save_path when it is None.")
        save_path = path_argument(save_path, "save_path")
        self._saves.wait()  # an asynchronous save in flight is what the caller expects to find
        commit_restore(read_consistently(save_path, lambda reader: plan_restore(reader, self._targets)))

    # -- bookkeeping, as TF's Saver ----------------------------------------------------------

    @property
    def last_checkpoints(self) -> list[str]:
        """Kept checkpoint prefixes, oldest first."""
        self._saves.wait()
        return [path for path, _ in self._last_checkpoints]

    def set_last_checkpoints(self, last_checkpoints: list[str]) -> None:
        """Deprecated in TF: the paths get an infinite timestamp, so they are never deleted."""
        self._last_checkpoints = [(path_argument(path, "last_checkpoints"), math.inf) for path in last_checkpoints]

    def set_last_checkpoints_with_time(self, last_checkpoints_with_time: list[tuple[str, float]]) -> None:
        """Set the ``(prefix, timestamp)`` list retention works from, as TF's method does."""
        self._last_checkpoints = [(str(p), float(t)) for p, t in last_checkpoints_with_time]

    def recover_last_checkpoints(self, checkpoint_paths: list[str]) -> None:
        """Rebuild ``last_checkpoints`` after a restart, from the files' modification times.

        Paths whose files are gone are dropped.
        """
        recovered = []
        for path in (path_argument(p, "checkpoint_paths") for p in checkpoint_paths):
            mtimes = get_checkpoint_mtimes([path])
            if mtimes:
                recovered.append((path, mtimes[0]))
        self.set_last_checkpoints_with_time(recovered)
