"""``tf.io.gfile`` (and TF1's ``tf.gfile`` names) for :mod:`tfckpt.compat`: the file basics
conversion scripts use, on local paths and on URLs (through fsspec, like the rest of tfckpt).

Return types and errors are TensorFlow's: ``listdir`` gives entry names, ``walk`` is top-down
``(dirname, subdirs, files)`` and yields nothing for a missing directory, ``exists``/``isdir``
are ``False`` for missing paths; ``remove``, ``listdir`` and reading a missing file raise
``tf.errors.NotFoundError``, ``rename``/``copy`` onto an existing file without ``overwrite``
``tf.errors.AlreadyExistsError``. :class:`GFile` opens lazily, as TF's does: a missing file fails
at the first read.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

from .. import storage
from .errors import AlreadyExistsError, FailedPreconditionError, NotFoundError, translated
from .namespace import missing

if TYPE_CHECKING:
    from typing_extensions import Self

COPY_CHUNK_BYTES = 1 << 20  # a copy streams through memory this much at a time

__all__ = ["GFile", "copy", "exists", "glob", "isdir", "join", "listdir", "makedirs", "mkdir", "remove",
           "rename", "walk"]


class GFile:
    """``tf.io.gfile.GFile``: a file object, text (``"r"``, ``"w"``: UTF-8) or binary (``"rb"``, ``"wb"``).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with GFile(path, "w") as f:
    ...     _ = f.write("kernel\\nbias\\n")
    >>> GFile(path).readlines()
    ['kernel\\n', 'bias\\n']
    """

    def __init__(self, name: str, mode: str = "r") -> None:
        self.name = name
        self.mode = mode
        self._file: Any = None

    def _opened(self) -> Any:
        if self._file is None:
            with translated():
                self._file = storage.filesystem_for(self.name).open_file(self.name, self.mode)
        return self._file

    def read(self, n: int = -1) -> Any:
        with translated():
            return self._opened().read(n)

    def readline(self) -> Any:
        with translated():
            return self._opened().readline()

    def readlines(self) -> list[Any]:
        with translated():
            return list(self._opened().readlines())

    def write(self, data: Any) -> Any:
        with translated():
            return self._opened().write(data)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def seek(self, offset: int, whence: int = 0) -> Any:
        return self._opened().seek(offset, whence)

    def tell(self) -> int:
        return int(self._opened().tell())

    def close(self) -> None:
        if self._file is not None:
            with translated():
                self._file.close()
            self._file = None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.readline, "" if "b" not in self.mode else b"")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def exists(path: str) -> bool:
    """Whether a file or directory exists."""
    fs = storage.filesystem_for(path)
    return fs.exists(path) or fs.isdir(path)


def isdir(path: str) -> bool:
    """Whether ``path`` is a directory."""
    return storage.filesystem_for(path).isdir(path)


def glob(pattern: str) -> list[str]:
    """Paths matching a glob pattern."""
    with translated():
        return storage.filesystem_for(pattern).glob(pattern)


def join(path: str, *paths: str) -> str:
    """Join path components (``/`` for URLs)."""
    return storage.join(path, *paths)


def listdir(path: str) -> list[str]:
    """The names of a directory's entries; ``NotFoundError`` if it is not a directory."""
    try:
        return storage.filesystem_for(path).listdir(path)
    except OSError as exc:
        raise NotFoundError(None, None, f"Could not find directory {path}") from exc


def makedirs(path: str) -> None:
    """Create a directory and its parents (existing ones are fine)."""
    with translated():
        storage.filesystem_for(path).makedirs(path)


def mkdir(path: str) -> None:
    """Create a directory (TensorFlow's accepts an existing one, and so does this)."""
    makedirs(path)


def remove(path: str) -> None:
    """Delete a file; ``NotFoundError`` if there is none, ``FailedPreconditionError`` for a directory."""
    fs = storage.filesystem_for(path)
    if fs.isdir(path):
        raise FailedPreconditionError(None, None, f"{path}; Is a directory")
    if not fs.exists(path):
        raise NotFoundError(None, None, f"{path}; No such file or directory")
    with translated():
        fs.remove(path)


def rename(oldname: str, newname: str, overwrite: bool = False) -> None:
    """Move a file; ``AlreadyExistsError`` if ``newname`` exists and ``overwrite`` is false."""
    if not overwrite and exists(newname):
        raise AlreadyExistsError(None, None, f"{newname}: file already exists")
    with translated():
        storage.filesystem_for(oldname).move(oldname, newname)


def copy(oldpath: str, newpath: str, overwrite: bool = False) -> None:
    """Copy a file (streamed); ``AlreadyExistsError`` if ``newpath`` exists and ``overwrite`` is false."""
    if not overwrite and exists(newpath):
        raise AlreadyExistsError(None, None, f"{newpath}: file already exists")
    with translated(), storage.filesystem_for(oldpath).open_file(oldpath, "rb") as source, \
            storage.filesystem_for(newpath).open_file(newpath, "wb") as target:
        while chunk := source.read(COPY_CHUNK_BYTES):
            target.write(chunk)


def walk(top: str, topdown: bool = True) -> Iterator[tuple[str, list[str], list[str]]]:
    """``(dirname, subdirs, files)`` for ``top`` and every directory below it; nothing if
    ``top`` is not a directory. Iterative, so deep trees cannot exhaust the stack."""
    fs = storage.filesystem_for(top)  # everything below top is on its filesystem
    pending = [top]
    bottom_up: list[tuple[str, list[str], list[str]]] = []
    while pending:
        here = pending.pop()
        try:
            names = sorted(fs.listdir(here))
        except OSError:
            continue
        subdirs = [name for name in names if fs.isdir(fs.join(here, name))]
        files = [name for name in names if name not in subdirs]
        if topdown:
            yield here, subdirs, files
        else:
            bottom_up.append((here, subdirs, files))
        pending.extend(storage.join(here, name) for name in reversed(subdirs))
    yield from reversed(bottom_up)


# TF1's names (tf.gfile, tf.compat.v1.gfile) for the same functions.
Exists = exists
IsDirectory = isdir
Glob = glob
ListDirectory = listdir
MakeDirs = makedirs
MkDir = mkdir
Remove = remove
Rename = rename
Copy = copy
Walk = walk
Open = GFile
FastGFile = GFile


def __getattr__(name: str) -> NoReturn:
    missing("tf.io.gfile", name)
