"""``tf.errors`` for :mod:`tfckpt.compat`: TensorFlow's error classes and codes, and the
translation of tfckpt's errors into them.

As in TensorFlow, :class:`OpError` is the root (here also a :class:`tfckpt.TfckptError`) and
each canonical code has one direct subclass; scripts catch ``tf.errors.NotFoundError`` or
``tf.errors.OpError``. Which class a failure becomes:

    tfckpt NotFoundError, FileNotFoundError         NotFoundError
    CorruptionError, ChecksumError                  DataLossError (TF raises an OpError or a
                                                    DataLossError, both caught by OpError)
    InvalidArgumentError                            InvalidArgumentError
    UnsupportedError                                UnimplementedError
    CheckpointReplacedError                         AbortedError
    PermissionError                                 PermissionDeniedError
    IsADirectoryError, NotADirectoryError           FailedPreconditionError
    FileExistsError                                 AlreadyExistsError
    any other OSError                               UnknownError
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NoReturn

from .. import errors as tfckpt_errors
from .namespace import missing

__all__ = [
    "ABORTED", "ALREADY_EXISTS", "CANCELLED", "DATA_LOSS", "DEADLINE_EXCEEDED", "FAILED_PRECONDITION", "INTERNAL",
    "INVALID_ARGUMENT", "NOT_FOUND", "OK", "OUT_OF_RANGE", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "UNAUTHENTICATED", "UNAVAILABLE", "UNIMPLEMENTED", "UNKNOWN",
    "AbortedError", "AlreadyExistsError", "CancelledError", "DataLossError", "DeadlineExceededError",
    "FailedPreconditionError", "InternalError", "InvalidArgumentError", "NotFoundError", "OpError",
    "OutOfRangeError", "PermissionDeniedError", "ResourceExhaustedError", "UnauthenticatedError",
    "UnavailableError", "UnimplementedError", "UnknownError",
]

# The canonical codes (tensorflow/core/protobuf/error_codes.proto, the same numbers as gRPC's).
OK = 0
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
ABORTED = 10
OUT_OF_RANGE = 11
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
DATA_LOSS = 15
UNAUTHENTICATED = 16


class OpError(tfckpt_errors.TfckptError):
    """TensorFlow's ``tf.errors.OpError``: ``message``, ``error_code``, ``op`` and ``node_def``
    (both ``None`` here: no graph runs). Subclasses take ``(node_def, op, message)``."""

    code = UNKNOWN  # the subclass's canonical code

    def __init__(self, node_def: Any, op: Any, message: str, error_code: int | None = None, *args: Any) -> None:
        super().__init__(message, *args)
        self.node_def = node_def
        self.op = op
        self.message = message
        self.error_code = type(self).code if error_code is None else error_code
        self.experimental_payloads: dict[str, bytes] = {}

    def __str__(self) -> str:
        return self.message


class CancelledError(OpError):
    code = CANCELLED


class UnknownError(OpError):
    code = UNKNOWN


class InvalidArgumentError(OpError):
    code = INVALID_ARGUMENT


class DeadlineExceededError(OpError):
    code = DEADLINE_EXCEEDED


class NotFoundError(OpError):
    code = NOT_FOUND


class AlreadyExistsError(OpError):
    code = ALREADY_EXISTS


class PermissionDeniedError(OpError):
    code = PERMISSION_DENIED


class ResourceExhaustedError(OpError):
    code = RESOURCE_EXHAUSTED


class FailedPreconditionError(OpError):
    code = FAILED_PRECONDITION


class AbortedError(OpError):
    code = ABORTED


class OutOfRangeError(OpError):
    code = OUT_OF_RANGE


class UnimplementedError(OpError):
    code = UNIMPLEMENTED


class InternalError(OpError):
    code = INTERNAL


class UnavailableError(OpError):
    code = UNAVAILABLE


class DataLossError(OpError):
    code = DATA_LOSS


class UnauthenticatedError(OpError):
    code = UNAUTHENTICATED


# Most specific first: ChecksumError is a CorruptionError, FileNotFoundError an OSError.
_TRANSLATION: list[tuple[type[BaseException], type[OpError]]] = [
    (tfckpt_errors.NotFoundError, NotFoundError),
    (tfckpt_errors.CorruptionError, DataLossError),
    (tfckpt_errors.InvalidArgumentError, InvalidArgumentError),
    (tfckpt_errors.UnsupportedError, UnimplementedError),
    (tfckpt_errors.CheckpointReplacedError, AbortedError),
    (FileNotFoundError, NotFoundError),
    (PermissionError, PermissionDeniedError),
    (IsADirectoryError, FailedPreconditionError),
    (NotADirectoryError, FailedPreconditionError),
    (FileExistsError, AlreadyExistsError),
    (OSError, UnknownError),
]


def translate(error: BaseException) -> BaseException:
    """The TF error that ``error`` (a tfckpt error or an ``OSError``) becomes; others unchanged."""
    if isinstance(error, OpError):
        return error
    for source, target in _TRANSLATION:
        if isinstance(error, source):
            return target(None, None, str(error))
    return error


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Re-raise tfckpt's errors and ``OSError`` inside the block as TensorFlow's (``from`` the original)."""
    try:
        yield
    except (tfckpt_errors.TfckptError, OSError) as exc:
        replacement = translate(exc)
        if replacement is exc:
            raise
        raise replacement from exc


def __getattr__(name: str) -> NoReturn:
    missing("tf.errors", name)
