"""Type checks for the public entry points' path and name arguments: one rule, used by every
function and method that takes a path or a tensor name.

A wrong type (``None``, an ``int``, ``bytes``) raises :class:`ArgumentTypeError` naming the
parameter and what it got, before anything is opened or written, where it would otherwise
surface deep inside as ``AttributeError: 'NoneType' object has no attribute ...``. TensorFlow
raises ``TypeError`` here ("Expected binary or unicode string, got None"), so the error is also
a ``TypeError`` (and an ``InvalidArgumentError``, hence a ``ValueError``, as tfckpt's other
argument errors are). A path holding a NUL character, which no operating system accepts, is an
:class:`InvalidArgumentError` too.
"""

from __future__ import annotations

import os

from .errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["name_argument", "path_argument"]


def _got(value: object) -> str:
    hint = " (decode bytes first, e.g. with os.fsdecode)" if isinstance(value, (bytes, bytearray)) else ""
    return f"got {type(value).__name__} {value!r:.60}{hint}"


def path_argument(value: object, parameter: str) -> str:
    """``value`` as a path string: a ``str`` or an ``os.PathLike`` that gives one.

    Examples
    --------
    >>> import pathlib
    >>> path_argument(pathlib.Path("run") / "model", "path")
    'run/model'
    >>> path_argument(None, "path")
    Traceback (most recent call last):
    ...
    tfckpt.errors.ArgumentTypeError: path must be a str or os.PathLike path, got NoneType None
    >>> path_argument("run\\0/model", "path")
    Traceback (most recent call last):
    ...
    tfckpt.errors.InvalidArgumentError: path 'run\\x00/model' contains a NUL character, which no path may hold
    """
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str):
        raise ArgumentTypeError(f"{parameter} must be a str or os.PathLike path, {_got(text)}")
    if "\0" in text:  # no filesystem allows it; the OS calls would raise a bare ValueError
        raise InvalidArgumentError(f"{parameter} {text!r:.80} contains a NUL character, which no path may hold")
    return text


def name_argument(value: object, parameter: str) -> str:
    """``value``, a tensor (or object) name, checked to be a ``str``.

    Examples
    --------
    >>> name_argument(b"w", "name")
    Traceback (most recent call last):
    ...
    tfckpt.errors.ArgumentTypeError: name must be a str, got bytes b'w' (decode bytes first, e.g. with os.fsdecode)
    """
    if isinstance(value, str):
        return value
    raise ArgumentTypeError(f"{parameter} must be a str, {_got(value)}")
