"""tfckpt's exceptions: one root, a few kinds, each also the builtin it means.

Catch :class:`TfckptError` for anything tfckpt raises on purpose. Operating-system errors
(``OSError`` such as ``PermissionError``) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "ArgumentTypeError",
    "CheckpointMismatchError",
    "CheckpointReplacedError",
    "ChecksumError",
    "ConcurrentSaveError",
    "CorruptionError",
    "InvalidArgumentError",
    "KerasMappingError",
    "MergeConflictError",
    "MissingKeyError",
    "NoCheckpointError",
    "NoLatestCheckpointError",
    "NotFoundError",
    "NotInCompatError",
    "NothingMatched",
    "PartsTimeoutError",
    "TfckptError",
    "UnsupportedError",
]


class TfckptError(Exception):
    """Root of every error tfckpt raises on purpose."""


class NotFoundError(TfckptError, KeyError):
    """A tensor, checkpoint or file that was asked for does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message; show it as written
        return str(self.args[0]) if self.args else ""


class CorruptionError(TfckptError, ValueError):
    """A file does not follow the format: bad magic, cut short, impossible numbers."""


class ChecksumError(CorruptionError):
    """A stored CRC32C does not match the bytes it covers."""


class UnsupportedError(TfckptError, NotImplementedError):
    """A valid feature of the format that tfckpt does not handle (e.g. DT_VARIANT values)."""


class InvalidArgumentError(TfckptError, ValueError):
    """The caller passed something tfckpt cannot save or use (bad name, dtype, shape)."""


class ArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument of the wrong type, such as ``None`` or ``bytes`` where a path or a tensor
    name (``str``) is expected. Also a ``TypeError``, which TensorFlow raises for these."""


class CheckpointReplacedError(TfckptError):
    """A newer save replaced the checkpoint while a reader had it open, so the data its index
    describes is gone. Open the checkpoint again (the one-shot functions such as
    :func:`tfckpt.load` do so by themselves)."""


class ConcurrentSaveError(TfckptError):
    """Another save published at the same prefix while this one did, where the storage offers
    no lock to make them take turns (see README, "Guarantees"); this save was undone. Give
    each prefix one writer (e.g. only rank 0 saves)."""


class NoLatestCheckpointError(CorruptionError):
    """A ``checkpoint`` state file that parses but names no ``model_checkpoint_path``."""


class MissingKeyError(NotFoundError):
    """A :class:`NotFoundError` for a missing tensor key, whose "did you mean" hint is worked
    out when it is first shown."""

    def __init__(self, message: str, hint: Callable[[], str] | None = None) -> None:
        super().__init__(message)
        self._hint = hint
        self._text = message

    def __str__(self) -> str:
        if self._hint is not None:
            hint, self._hint = self._hint, None
            self._text += hint()
        return self._text

    def __reduce__(self) -> tuple[type[NotFoundError], tuple[str]]:
        return NotFoundError, (str(self),)  # the hint is a closure over the reader: send the text


class CheckpointMismatchError(TfckptError, AssertionError):
    """A restore status assertion failed: the structure and the checkpoint do not match."""


class PartsTimeoutError(TfckptError, TimeoutError):
    """Not every rank's part appeared before the timeout (or, with a barrier, after it)."""


class MergeConflictError(TfckptError):
    """Another merge into the same prefix is under way (or died and left its lock).

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> prefix = os.path.join(tempfile.mkdtemp(), "m")
    >>> _ = tfckpt.distributed.save_part({"x": np.ones(1)}, prefix, 0, 1)
    >>> open(prefix + ".merging", "w").close()   # as a running merge leaves it
    >>> try:
    ...     tfckpt.distributed.merge_parts(prefix, 1)
    ... except tfckpt.MergeConflictError as exc:
    ...     print("another merge" in str(exc))
    True
    """


class NothingMatched(TfckptError):
    """A filter the user gave selected nothing (said so, exit status 1)."""


class NotInCompatError(TfckptError, AttributeError):
    """A TensorFlow attribute outside the checkpoint half that ``tfckpt.compat`` provides."""


class NoCheckpointError(NotFoundError, ValueError):
    """A directory holds no ``checkpoint`` state file naming an existing checkpoint. A
    ``ValueError``, which is what TensorFlow raises here."""


class KerasMappingError(InvalidArgumentError):
    """A TF checkpoint and a Keras 3 ``.weights.h5`` do not describe the same model
    (:mod:`tfckpt.keras`): every variable that could not be paired is named in the message."""
