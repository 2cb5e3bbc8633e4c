"""tfckpt's exceptions: one root, a few kinds, each also the builtin it means.

Catch :class:`TfckptError` for anything tfckpt raises on purpose. Operating-system errors
(``OSError`` such as ``PermissionError``) pass through unchanged.
"""

from __future__ import annotations

__all__ = [
    "ArgumentTypeError",
    "CheckpointReplacedError",
    "ChecksumError",
    "CorruptionError",
    "InvalidArgumentError",
    "NotFoundError",
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
