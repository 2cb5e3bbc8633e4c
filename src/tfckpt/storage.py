"""The one narrow I/O seam between the format code and storage.

Readers need only :class:`ByteSource` (``size()``, ``read_at()``, ``readinto_at()``); writers
use ordinary binary file objects on local disk. Paths are adapted here: local paths use the
operating system; URLs (``s3://``, ``gs://``, ``http(s)://``, ``memory://``, ...) go through
``fsspec`` when it is installed (``pip install tfckpt[remote]``). Remote reads fetch byte ranges
(HTTP range requests) and never download whole files; remote writes stream each data file
with :class:`Upload` (a helper thread sends parts while the caller encodes more) and put the
index last (see :class:`tfckpt.bundle.writer.BundleWriter`).
"""

from __future__ import annotations

import contextlib
import datetime
import glob as _glob
import mmap
import os
import posixpath
import queue
import re
import secrets
import shutil
import stat
import tempfile
import threading
import warnings
from collections.abc import Hashable, Iterator
from typing import IO, Any, Protocol

from .errors import CorruptionError, InvalidArgumentError, NotFoundError, UnsupportedError
from .settings import get_num_threads

__all__ = [
    "LOCAL",
    "TEMP_MARKER",
    "ByteSource",
    "BytesSource",
    "FileIdentity",
    "FileSource",
    "Filesystem",
    "FsspecFilesystem",
    "FsspecSource",
    "LocalFilesystem",
    "PathLike",
    "Upload",
    "basename",
    "directory_lock",
    "dirname",
    "filesystem_for",
    "glob_escape",
    "is_url",
    "join",
    "path_identity",
    "same_filesystem",
    "spool_file",
    "temporary_name",
    "temporary_owner_alive",
]

PathLike = str | os.PathLike[str]


class ByteSource(Protocol):
    """Random-access bytes: what the table and bundle readers need from storage."""

    name: str
    is_remote: bool  # each read is a round trip: worth coalescing and issuing concurrently

    def size(self) -> int: ...

    def read_at(self, offset: int, n: int) -> bytes: ...

    def readinto_at(self, offset: int, buffer: memoryview) -> None: ...

    # Optional capabilities, declared so that callers ask rather than probe; a source without
    # one answers ``None`` or does nothing.
    def identity(self) -> FileIdentity | None: ...  # tells this version of the file from the next

    def prefetch(self) -> None: ...  # fetch the whole (small) file at once where reads are round trips

    def mapping(self, copy_on_write: bool = False) -> mmap.mmap | None: ...  # local files only

    def close(self) -> None: ...


FileIdentity = tuple[Hashable, ...]


def _identity(stat: os.stat_result) -> FileIdentity:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def path_identity(path: str) -> FileIdentity | None:
    """The identity of the file now at ``path`` (``None`` if there is none, or if the storage
    cannot tell one version of a file from the next): a file renamed or written over it has
    another. Local files: device, inode, size and mtime. URLs: what the store's metadata
    offers (ETag, generation, version, modification time, size; one HEAD request)."""
    return filesystem_for(path).identity(path)


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _open_regular(path: str) -> tuple[int, os.stat_result]:
    """A read-only descriptor of the regular file at ``path`` and its status. Anything else
    raises :class:`NotFoundError` naming what is there: a FIFO would block the open (and every
    read) until a writer came, a directory fails at the first read, a device never ends.

    The file is opened without blocking and its type checked on the descriptor itself, so a
    FIFO put in place between a check and the open cannot block either."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            kind = next((name for test, name in _KINDS if test(status.st_mode)), "not a regular file")
            raise NotFoundError(f"{path}: expected a regular file, found {kind}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, status


# Metadata fields fsspec implementations report that change whenever an object is written:
# S3 (ETag, VersionId, LastModified), GCS (generation, etag, updated), Azure (etag,
# last_modified), memory:// (created), local-like stores (mtime).
_VERSION_FIELDS = ("ETag", "etag", "VersionId", "generation", "LastModified", "updated", "last_modified",
                   "mtime", "created", "size")
# Read-only stores tfckpt never writes to; files there change by other means, and each
# check would cost a request (plain HTTP servers answer HEAD with no version either).
_UNVERSIONED = ("http", "https")


def _remote_identity(url: str) -> FileIdentity | None:
    return _remote_info(url)[0]


def _remote_info(url: str) -> tuple[FileIdentity | None, int | None]:
    """The identity of the object at ``url`` and its size, from one metadata request."""
    fs, inner = _filesystem(url)
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if any(protocol in _UNVERSIONED for protocol in protocols):
        return None, None
    with contextlib.suppress(Exception):  # listing caches are the store's business, not ours
        fs.invalidate_cache(inner)
    try:
        info = fs.info(inner)
    except (FileNotFoundError, IsADirectoryError):
        return None, None
    size = info.get("size")
    return tuple(str(info.get(field)) for field in _VERSION_FIELDS), size if isinstance(size, int) else None


@contextlib.contextmanager
def directory_lock(path: str) -> Iterator[bool]:
    """Hold an exclusive advisory lock (``flock``) on the directory of the local ``path`` for
    the ``with`` block, so that saves publishing there (in any process or thread) take
    turns; yields whether a lock is held. It is released by the kernel if the process dies.
    No lock (``False``) on URLs, on platforms without ``fcntl`` and on filesystems that
    refuse ``flock`` on a directory (some network mounts): callers detect instead."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not a POSIX platform
        yield False
        return
    if is_url(path):
        yield False
        return
    try:
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


class FileSource:
    """A local file read with positional reads, so one instance serves many threads.
    Only regular files are opened (see :func:`_open_regular`)."""

    is_remote = False

    def __init__(self, path: PathLike) -> None:
        self.name = os.fspath(path)
        fd, status = _open_regular(self.name)
        self._fd: int | None = fd
        self._size = status.st_size
        self._map: mmap.mmap | None = None
        # Platforms without pread (Windows) share one file offset; a lock keeps seek+read whole.
        self._lock = None if hasattr(os, "pread") else threading.Lock()

    def size(self) -> int:
        return self._size

    def identity(self) -> FileIdentity:
        """What tells this file from a later one at the same path (see :func:`path_identity`)."""
        return _identity(os.fstat(self._fd_or_raise()))

    def prefetch(self) -> None:
        pass  # positional reads are cheap: nothing to gain from reading ahead

    def _fd_or_raise(self) -> int:
        if self._fd is None:
            raise ValueError(f"{self.name}: read from a closed checkpoint file")
        return self._fd

    def _check_range(self, offset: int, n: int) -> None:
        if offset < 0 or n < 0 or offset + n > self._size:
            raise CorruptionError(
                f"{self.name}: read of {n} bytes at offset {offset} runs past the end of the "
                f"file ({self._size} bytes); the file is truncated or the index points elsewhere")

    def read_at(self, offset: int, n: int) -> bytes:
        self._check_range(offset, n)
        fd = self._fd_or_raise()
        if self._lock is None:
            chunks = []
            while n > 0:
                chunk = os.pread(fd, n, offset)
                if not chunk:
                    raise CorruptionError(f"{self.name}: file shrank while reading at offset {offset}")
                chunks.append(chunk)
                offset += len(chunk)
                n -= len(chunk)
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]
        with self._lock:
            os.lseek(fd, offset, os.SEEK_SET)
            data = os.read(fd, n)
        if len(data) != n:
            raise CorruptionError(f"{self.name}: short read at offset {offset}")
        return data

    def readinto_at(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` (a writable byte view) from ``offset`` without an extra copy."""
        n = buffer.nbytes
        self._check_range(offset, n)
        fd = self._fd_or_raise()
        view = buffer.cast("B") if buffer.format != "B" or buffer.ndim != 1 else buffer
        done = 0
        if hasattr(os, "preadv"):
            while done < n:
                # Linux caps one read at ~2 GiB; loop in chunks of at most 1 GiB.
                got = os.preadv(fd, [view[done:done + (1 << 30)]], offset + done)
                if got <= 0:
                    raise CorruptionError(f"{self.name}: file shrank while reading at offset {offset + done}")
                done += got
            return
        view[:] = self.read_at(offset, n)

    def mapping(self, copy_on_write: bool = False) -> mmap.mmap | None:
        """A memory map of the whole file (made once, by the first call), or ``None`` if it
        cannot be. Read-only, or with ``copy_on_write`` private and writable: a write changes
        this process's pages, never the file (numpy's ``mmap_mode="c"``). Where the kernel
        refuses a private writable map of this size (strict overcommit accounting), the map is
        read-only."""
        if self._map is None and self._size:
            fd = self._fd_or_raise()
            modes = (mmap.ACCESS_COPY, mmap.ACCESS_READ) if copy_on_write else (mmap.ACCESS_READ,)
            for access in modes:
                try:
                    self._map = mmap.mmap(fd, 0, access=access)
                    break
                except (OSError, ValueError):
                    continue
        return self._map

    def close(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                pass  # arrays still view it; the map is released when the last one goes
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __repr__(self) -> str:
        return f"FileSource({self.name!r})"


# ---- URLs through fsspec ---------------------------------------------------------------------

# A URL starts with its scheme (fsspec chains them: ``simplecache::s3://``); a ``://`` further
# on (``run/http://host/x``: a local state file naming a URL, joined as TF joins it) is part
# of a local name.
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*(?:::[A-Za-z][A-Za-z0-9+.-]*)*)://")


def is_url(path: str) -> bool:
    """Whether ``path`` names remote storage: it starts with a URL scheme other than ``file://``."""
    return _URL_SCHEME.match(path) is not None and not path.startswith("file://")


def same_filesystem(path: str, other: str) -> bool:
    """Whether two paths are on one filesystem: both local, or both URLs of one scheme and one
    host (bucket). A path found in a file on one filesystem is never resolved on another."""
    if not (is_url(path) and is_url(other)):
        return not (is_url(path) or is_url(other))
    return _authority(path) == _authority(other)


def _authority(url: str) -> tuple[str, str]:
    scheme, _, rest = url.partition("://")
    return scheme.lower(), rest.lstrip("/").split("/", 1)[0]


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise UnsupportedError(f"{url}: reading or writing URLs needs fsspec (pip install 'tfckpt[remote]')") from None
    scheme = url.partition("://")[0]
    unknown = [name for name in scheme.split("::") if name.lower() not in fsspec.available_protocols()]
    if unknown:
        raise UnsupportedError(f"{url}: unknown URL scheme {unknown[0]!r}: no fsspec filesystem handles "
                               f"{unknown[0]}:// (s3://, gs://, http(s)://, memory://, ... do)")
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:  # e.g. gs:// without gcsfs
        raise UnsupportedError(f"{url}: the {scheme}:// filesystem needs a package that is not installed: "
                               f"{exc}") from None
    except ValueError as exc:
        raise InvalidArgumentError(f"{url}: not a usable URL: {exc}") from None
    return fs, path


class FsspecSource:
    """A remote file read with ranged requests: ``read_at`` fetches just those bytes.

    Opening costs no request: the size is asked for (one HEAD) only when something needs it,
    and :meth:`read_whole` fetches a small file in one GET. A missing file raises
    ``FileNotFoundError`` at its first request. A server that ignores ``Range`` (e.g.
    ``python -m http.server``) answers with the whole file; that body is then kept and serves
    every later read, with a warning, rather than being mistaken for a damaged file.
    """

    is_remote = True

    def __init__(self, url: str) -> None:
        self.name = url
        self._fs, self._path = _filesystem(url)
        self._size: int | None = None
        self._whole: bytes | None = None

    def size(self) -> int:
        if self._size is None:
            self._size = int(self._fs.size(self._path))  # FileNotFoundError passes through
        return self._size

    def identity(self) -> FileIdentity | None:
        """What tells this object from a later one at the same URL (see :func:`path_identity`);
        the same request gives the size, which spares :meth:`read_whole` asking for it."""
        identity, size = _remote_info(self.name)
        if size is not None:
            self._size = size
        return identity

    def prefetch(self) -> None:
        self.read_whole()

    def mapping(self, copy_on_write: bool = False) -> None:
        return None  # remote bytes are not a file the kernel can map

    def read_whole(self) -> bytes:
        """The whole file, in one request; kept for later reads."""
        if self._whole is None:
            if self._size is not None:  # known: one ranged GET, no size request first
                self._whole = bytes(self._fs.cat_file(self._path, start=0, end=self._size)) if self._size else b""
            else:
                self._whole = bytes(self._fs.cat_file(self._path))
            self._size = len(self._whole)
        return self._whole

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or (self._size is not None and offset + n > self._size):
            raise CorruptionError(f"{self.name}: read of {n} bytes at offset {offset} runs past the end of the "
                                  f"file ({self.size()} bytes)")
        if n == 0:
            return b""
        if self._whole is not None:
            return self._whole[offset:offset + n]
        data = bytes(self._fs.cat_file(self._path, start=offset, end=offset + n))
        if len(data) > n and len(data) >= offset + n:
            warnings.warn(f"{self.name}: the server ignores HTTP Range requests and sent the whole file "
                          f"({len(data)} bytes); tfckpt keeps it for later reads", RuntimeWarning, stacklevel=2)
            self._whole, self._size = data, len(data)
            return data[offset:offset + n]
        if len(data) != n:
            raise CorruptionError(f"{self.name}: read of {n} bytes at offset {offset} got {len(data)}: the "
                                  f"file ends at {offset + len(data)}; it is truncated or the index points "
                                  f"elsewhere")
        return data

    def readinto_at(self, offset: int, buffer: memoryview) -> None:
        view = buffer.cast("B") if buffer.format != "B" or buffer.ndim != 1 else buffer
        view[:] = self.read_at(offset, view.nbytes)

    def close(self) -> None:
        self._whole = None

    def __repr__(self) -> str:
        return f"FsspecSource({self.name!r})"


class BytesSource:
    """Bytes already in memory, read like a file (e.g. a remote index fetched whole)."""

    is_remote = False

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self._data = data

    def identity(self) -> None:
        return None  # bytes in memory have no later version to tell apart

    def prefetch(self) -> None:
        pass

    def mapping(self, copy_on_write: bool = False) -> None:
        return None

    def size(self) -> int:
        return len(self._data)

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > len(self._data):
            raise CorruptionError(f"{self.name}: read of {n} bytes at offset {offset} runs past the end of the "
                                  f"file ({len(self._data)} bytes)")
        return self._data[offset:offset + n]

    def readinto_at(self, offset: int, buffer: memoryview) -> None:
        view = buffer.cast("B") if buffer.format != "B" or buffer.ndim != 1 else buffer
        view[:] = self.read_at(offset, view.nbytes)

    def close(self) -> None:
        pass


# ---- Filesystems -------------------------------------------------------------------------------

TEMP_MARKER = ".tempstate"
_OURS = re.compile(re.escape(TEMP_MARKER) + r"(\d+)_[0-9a-f]+$")


def spool_file() -> IO[bytes]:
    """An anonymous local temporary file (removed when closed), for bytes that must be
    seekable but are not anyone's file (a compressed archive member, decompressed once)."""
    return tempfile.TemporaryFile()


def temporary_name(path: str) -> str:
    """A fresh temporary name next to ``path``; the pid in it lets later saves tell the
    leftovers of a crashed process from the files of one still running."""
    return f"{path}{TEMP_MARKER}{os.getpid()}_{secrets.token_hex(8)}"


def temporary_owner_alive(path: str) -> bool | None:
    """Whether the process that made the temporary ``path`` (see :func:`temporary_name`)
    still runs on this host; ``None`` if ``path`` is not such a temporary."""
    match = _OURS.search(path)
    if match is None:
        return None
    pid = int(match.group(1))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


class Filesystem:
    """Where a path lives, and what that storage can do: the one seam between tfckpt and
    files. :func:`filesystem_for` picks one per path; the path travels with it.

    The capabilities are declared, so callers choose a strategy by reading them:
    ``atomic_rename`` (a rename replaces its target in one step), ``hard_links``,
    ``conditional_create`` (creating a file that must not exist is decided atomically by the
    storage), ``pending_uploads`` (a streamed upload shows nothing at its name until it
    completes), ``server_side_copy`` (copies move no bytes through this process), ``locks``
    (advisory directory locks), ``writable``, ``is_remote`` (each request is a round trip)."""

    name = "filesystem"
    is_remote = False
    atomic_rename = False
    hard_links = False
    conditional_create = False
    pending_uploads = False
    server_side_copy = False
    locks = False
    writable = True
    sep = "/"

    def unsupported(self, operation: str, path: str, hint: str = "") -> UnsupportedError:
        """The error for an operation this filesystem cannot do (``hint``: what to do instead)."""
        return UnsupportedError(f"{path}: {operation} is not supported on the {self.name} filesystem"
                                + (f"; {hint}" if hint else ""))

    # path strings
    def join(self, base: str, *parts: str) -> str:
        return posixpath.join(base, *parts)

    def dirname(self, path: str) -> str:
        return posixpath.dirname(path)

    def basename(self, path: str) -> str:
        return posixpath.basename(path)

    def isabs(self, path: str) -> bool:
        return path.startswith("/")

    def normpath(self, path: str) -> str:
        return posixpath.normpath(path)

    def realpath(self, path: str) -> str:
        return posixpath.normpath(path)

    def abspath(self, path: str) -> str:
        return posixpath.normpath(path)

    def relpath(self, path: str, start: str) -> str:
        return posixpath.relpath(path, start)

    def commonpath(self, paths: list[str]) -> str:
        return posixpath.commonpath(paths)

    def same_file_name(self, a: str, b: str) -> bool:
        """Whether two names lead to the same file (symlinks resolved where there are any)."""
        return self.realpath(a) == self.realpath(b)

    # reads
    def open_source(self, path: str) -> ByteSource:
        raise NotImplementedError

    def read_bytes(self, path: str) -> bytes | None:
        raise NotImplementedError

    def open_file(self, path: str, mode: str = "rb", *, buffering: int = -1) -> Any:
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def isfile(self, path: str) -> bool:
        raise NotImplementedError

    def isdir(self, path: str) -> bool:
        raise NotImplementedError

    def listdir(self, path: str) -> list[str]:
        raise NotImplementedError

    def glob(self, pattern: str) -> list[str]:
        raise NotImplementedError

    def mtime(self, path: str) -> float | None:
        """The modification time of the file at ``path`` (seconds), ``None`` if there is none."""
        raise NotImplementedError

    def identity(self, path: str) -> FileIdentity | None:
        raise NotImplementedError

    # writes
    def write_bytes(self, path: str, data: bytes) -> None:
        """Store a small file whole (one request on object stores, which apply it atomically)."""
        raise NotImplementedError

    def create_exclusive(self, path: str, data: bytes) -> None:
        """Create ``path`` holding ``data``; ``FileExistsError`` if it exists. Decided
        atomically by the storage only where ``conditional_create`` is true."""
        raise NotImplementedError

    def write_new(self, path: str, write: Any, sync: bool) -> None:
        """Create ``path`` (which must not exist), let ``write(file)`` fill it, fsync it with
        ``sync``; on failure the file is removed."""
        raise self.unsupported("writing a file in place", path)

    def sync_file(self, file: Any) -> None:
        """Make an open file's contents durable (fsync); a no-op where writes are whole objects."""

    def remove(self, path: str) -> None:
        raise NotImplementedError

    def makedirs(self, path: str) -> None:
        raise NotImplementedError

    def rmdir(self, path: str) -> None:
        """Remove an empty directory; ``OSError`` if it is not (a no-op without directories)."""

    def rmtree(self, path: str) -> None:
        """Remove a directory tree, best effort."""

    def move(self, source: str, destination: str) -> None:
        raise NotImplementedError

    def copy(self, source: str, destination: str) -> None:
        raise NotImplementedError

    def link(self, source: str, destination: str) -> None:
        raise self.unsupported("hard-linking", source)

    def fsync_directory(self, path: str) -> None:
        """Make renames in the directory of ``path`` durable (a no-op where nothing is needed)."""

    def lock(self, path: str) -> contextlib.AbstractContextManager[bool]:
        """An exclusive lock on the directory of ``path`` for the ``with`` block; yields
        whether one is held (``False`` where no lock can be taken: callers detect instead)."""
        return contextlib.nullcontext(False)

    def upload(self, path: str) -> Upload:
        raise self.unsupported("streaming a file", path)

    def remove_stale_temporaries(self, directory: str) -> list[str]:
        """Delete the temporaries in ``directory`` whose process has died; return them. Only
        where the pid in a name can be checked (this host's files)."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class LocalFilesystem(Filesystem):
    """This machine's files: positional reads, hard links, atomic renames, fsync, flock."""

    name = "local"
    atomic_rename = True
    hard_links = True  # per filesystem really: callers fall back when link() is refused
    conditional_create = True
    locks = True
    sep = os.sep

    def join(self, base: str, *parts: str) -> str:
        return os.path.join(base, *parts)

    def dirname(self, path: str) -> str:
        return os.path.dirname(path)

    def basename(self, path: str) -> str:
        return os.path.basename(path)

    def isabs(self, path: str) -> bool:
        return os.path.isabs(path)

    def normpath(self, path: str) -> str:
        return os.path.normpath(path)

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)

    def abspath(self, path: str) -> str:
        return os.path.abspath(path)

    def relpath(self, path: str, start: str) -> str:
        return os.path.relpath(path, start)

    def commonpath(self, paths: list[str]) -> str:
        return os.path.commonpath(paths)

    def open_source(self, path: str) -> ByteSource:
        return FileSource(path)

    def read_bytes(self, path: str) -> bytes | None:
        try:
            fd, _ = _open_regular(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except NotFoundError:
            if os.path.isdir(path):
                return None
            raise
        with open(fd, "rb") as f:
            return f.read()

    def open_file(self, path: str, mode: str = "rb", *, buffering: int = -1) -> Any:
        return open(path, mode, buffering=buffering, encoding=None if "b" in mode else "utf-8")

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def isfile(self, path: str) -> bool:
        return os.path.isfile(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def glob(self, pattern: str) -> list[str]:
        return _glob.glob(pattern)

    def mtime(self, path: str) -> float | None:
        try:
            return os.stat(path).st_mtime
        except OSError:
            return None

    def identity(self, path: str) -> FileIdentity | None:
        try:
            return _identity(os.stat(path))
        except OSError:
            return None

    def write_bytes(self, path: str, data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(data)

    def create_exclusive(self, path: str, data: bytes) -> None:
        with open(path, "xb") as f:
            f.write(data)

    def write_new(self, path: str, write: Any, sync: bool) -> None:
        """Create ``path`` (which must not exist), let ``write(file)`` fill it, fsync it with
        ``sync``; on failure the file is removed."""
        try:
            with open(path, "xb") as out:
                write(out)
                if sync:
                    out.flush()
                    os.fsync(out.fileno())
        except BaseException:
            self.remove(path)
            raise

    def sync_file(self, file: Any) -> None:
        """fsync an open file object of this filesystem."""
        file.flush()
        os.fsync(file.fileno())

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def rmdir(self, path: str) -> None:
        os.rmdir(path)

    def rmtree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def move(self, source: str, destination: str) -> None:
        os.replace(source, destination)

    def copy(self, source: str, destination: str) -> None:
        shutil.copyfile(source, destination)

    def link(self, source: str, destination: str) -> None:
        os.link(source, destination)

    def fsync_directory(self, path: str) -> None:
        try:
            fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        except OSError:
            return  # not every platform can open a directory
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def lock(self, path: str) -> contextlib.AbstractContextManager[bool]:
        return directory_lock(path)

    def remove_stale_temporaries(self, directory: str) -> list[str]:
        removed = []
        for candidate in _glob.glob(os.path.join(_glob.escape(directory or "."), "*" + TEMP_MARKER + "*")):
            if temporary_owner_alive(candidate) is False:
                self.remove(candidate)
                removed.append(candidate)
        return removed


LOCAL = LocalFilesystem()

# Object stores whose "create if absent" is one conditional request (S3 If-None-Match, GCS
# ifGenerationMatch=0): fsspec's exclusive mode reaches it there.
_CONDITIONAL = frozenset({"s3", "s3a", "gs", "gcs"})
# Object stores whose multipart/resumable uploads show nothing until completed (unlike
# memory://, whose file is visible, growing, while it is written).
_PENDING_UPLOADS = frozenset({"s3", "s3a", "gs", "gcs"})
_READ_ONLY = frozenset({"http", "https"})


class FsspecFilesystem(Filesystem):
    """A filesystem of URLs through fsspec: ranged reads, whole-object writes (atomic on
    object stores), server-side copies, conditional creates where the store has them; no
    hard links, no atomic rename, no locks."""

    is_remote = True
    server_side_copy = True

    def __init__(self, fs: Any, scheme: str) -> None:
        self.fs = fs
        self.scheme = scheme
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self.name = f"{scheme}://"
        self.writable = not any(p in _READ_ONLY for p in protocols)
        self.server_side_copy = self.writable
        self.conditional_create = any(p in _CONDITIONAL for p in protocols)
        self.pending_uploads = any(p in _PENDING_UPLOADS for p in protocols)

    def _inner(self, url: str) -> str:
        return _filesystem(url)[1]

    def realpath(self, path: str) -> str:
        return posixpath.normpath(path)

    def open_source(self, path: str) -> ByteSource:
        return FsspecSource(path)

    def read_bytes(self, path: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(self._inner(path)))
        except (FileNotFoundError, IsADirectoryError):
            return None

    def open_file(self, path: str, mode: str = "rb", *, buffering: int = -1) -> Any:
        inner = self._inner(path)
        return self.fs.open(inner, mode) if "b" in mode else self.fs.open(inner, mode, encoding="utf-8")

    def exists(self, path: str) -> bool:
        # The size, not fsspec's exists: over HTTP that downloads the whole body.
        try:
            self.fs.size(self._inner(path))
        except (FileNotFoundError, IsADirectoryError):
            return False
        return True

    def _is(self, kind: str, path: str) -> bool:
        try:
            return bool(getattr(self.fs, kind)(self._inner(path)))
        except (OSError, ValueError):
            return False

    def isfile(self, path: str) -> bool:
        return self._is("isfile", path)

    def isdir(self, path: str) -> bool:
        return self._is("isdir", path)

    def listdir(self, path: str) -> list[str]:
        inner = self._inner(path)
        if not self.fs.isdir(inner):
            raise FileNotFoundError(path)
        return [posixpath.basename(str(p).rstrip("/")) for p in self.fs.ls(inner, detail=False)]

    def glob(self, pattern: str) -> list[str]:
        return [self.fs.unstrip_protocol(p) for p in self.fs.glob(self._inner(pattern))]

    def mtime(self, path: str) -> float | None:
        inner = self._inner(path)
        with contextlib.suppress(Exception):  # listing caches are the store's business, not ours
            self.fs.invalidate_cache(inner)
        try:
            info = self.fs.info(inner)
        except (FileNotFoundError, IsADirectoryError):
            return None
        if info.get("type") == "directory":  # a key prefix: no object, so no time (and no file)
            return None
        for field in ("mtime", "LastModified", "updated", "last_modified", "created"):
            value = info.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, datetime.datetime):
                return value.timestamp()
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        with contextlib.suppress(Exception):
            modified = self.fs.modified(inner)
            if isinstance(modified, datetime.datetime):
                return modified.timestamp()
        raise self.unsupported("modification times", path)

    def identity(self, path: str) -> FileIdentity | None:
        return _remote_identity(path)

    def _check_writable(self, operation: str, path: str) -> None:
        if not self.writable:
            raise self.unsupported(operation, path)

    def write_bytes(self, path: str, data: bytes) -> None:
        self._check_writable("writing", path)
        self.fs.pipe_file(self._inner(path), data)

    def create_exclusive(self, path: str, data: bytes) -> None:
        """With ``conditional_create`` (S3, GCS) one conditional PUT: s3fs sends S3's
        ``If-None-Match: *`` and turns its refusal into ``FileExistsError``, so of racing
        creators exactly one wins. Elsewhere (``memory://``, other fsspec filesystems) a check
        then a write, which creators racing between the two may both pass."""
        self._check_writable("writing", path)
        inner = self._inner(path)
        if self.conditional_create:
            self.fs.pipe_file(inner, data, mode="create")
            return
        if self.fs.exists(inner):
            raise FileExistsError(path)
        try:
            with self.fs.open(inner, "xb") as f:
                f.write(data)
        except (ValueError, NotImplementedError, TypeError):  # no exclusive mode here
            self.fs.pipe_file(inner, data)

    def remove(self, path: str) -> None:
        self._check_writable("deleting", path)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._inner(path))

    def makedirs(self, path: str) -> None:
        self._check_writable("making directories", path)
        self.fs.makedirs(self._inner(path), exist_ok=True)

    def rmtree(self, path: str) -> None:
        with contextlib.suppress(Exception):  # best effort, as locally
            self.fs.rm(self._inner(path), recursive=True)

    def move(self, source: str, destination: str) -> None:
        self._check_writable("moving files", source)
        self.fs.mv(self._inner(source), self._inner(destination))

    def copy(self, source: str, destination: str) -> None:
        self._check_writable("copying files", source)
        self.fs.copy(self._inner(source), self._inner(destination))

    def upload(self, path: str) -> Upload:
        return Upload(path, shown_while_written=not self.pending_uploads)


def filesystem_for(path: str) -> Filesystem:
    """The filesystem ``path`` lives on: this machine's for local paths (and ``file://``),
    an :class:`FsspecFilesystem` for URLs. Chosen once per path; pass it along with it."""
    if not is_url(path):
        return LOCAL
    fs, _ = _filesystem(path)
    return FsspecFilesystem(fs, path.partition("://")[0].lower())


def join(base: str, *parts: str) -> str:
    """Join path components as the filesystem of ``base`` does (``/`` for URLs); no request."""
    return posixpath.join(base, *parts) if is_url(base) else os.path.join(base, *parts)


def dirname(path: str) -> str:
    return posixpath.dirname(path) if is_url(path) else os.path.dirname(path)


def basename(path: str) -> str:
    return posixpath.basename(path) if is_url(path) else os.path.basename(path)


def glob_escape(path: str) -> str:
    return _glob.escape(path)


UPLOAD_PART_BYTES = 16 << 20  # S3 needs >= 5 MiB per part; 16 MiB keeps a 10,000-part upload at 160 GB
UPLOAD_PARTS_QUEUED = 2  # parts waiting for the helper thread: memory bound, and enough to keep it busy


class Upload:
    """One remote file written as a stream, without a local copy.

    :meth:`write` gathers bytes into parts of ``part_bytes``; a helper thread hands each part
    to the filesystem's writer (a multipart upload on S3/GCS) while the caller produces the
    next, so encoding and network transfer overlap. At most ``UPLOAD_PARTS_QUEUED`` parts wait
    (besides the one being filled and the one being sent), which bounds memory whatever the
    file's or a single write's size. Object stores show nothing at ``url`` until
    :meth:`commit` completes the upload; :meth:`discard` abandons it (and, with
    ``shown_while_written``, deletes what a filesystem without pending uploads, such as
    ``memory://``, already shows; never on object stores, where that would delete the older
    object at ``url`` that the abandoned upload never replaced).

    Examples
    --------
    >>> upload = Upload("memory://doc/upload.bin", part_bytes=4)
    >>> for piece in (b"abc", b"defg", b"h"):
    ...     _ = upload.write(piece)
    >>> upload.commit()
    >>> filesystem_for("memory://").read_bytes("memory://doc/upload.bin")
    b'abcdefgh'
    """

    def __init__(self, url: str, *, part_bytes: int = UPLOAD_PART_BYTES, shown_while_written: bool = True) -> None:
        self.name = url
        self._shown_while_written = shown_while_written
        self._fs, self._path = _filesystem(url)
        self._part_bytes = part_bytes
        try:
            self._file = self._fs.open(self._path, "wb", block_size=max(part_bytes, 5 << 20))
        except NotImplementedError:  # e.g. plain HTTP(S): fsspec reads it, but cannot write
            raise UnsupportedError(f"{url}: the {type(self._fs).__name__} filesystem cannot write files; "
                                   f"save to a local path or to object storage (s3://, gs://, ...)") from None
        self._buffer = bytearray()
        self._parts: queue.Queue[bytearray | None] = queue.Queue(maxsize=UPLOAD_PARTS_QUEUED)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if get_num_threads() > 1:  # with one thread (tfckpt.settings), parts are sent inline
            self._thread = threading.Thread(target=self._send, name="tfckpt-upload", daemon=True)
            self._thread.start()
        self._finished = False

    def _put(self, part: bytearray | None) -> None:
        """Hand a part (``None``: the end) to the helper thread, or send it now without one."""
        if self._thread is not None:
            self._parts.put(part)
        elif part is not None:
            self._file.write(part)

    def _send(self) -> None:
        """The helper thread: write parts in order; after a failure, keep taking parts (so the
        producer never blocks) but drop them; the failure is raised to the producer."""
        while True:
            part = self._parts.get()
            if part is None:
                return
            if self._error is None:
                try:
                    self._file.write(part)
                except BaseException as error:  # noqa: BLE001 - re-raised in the producer's thread
                    self._error = error

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data: Any) -> int:
        """Queue ``data`` (any C-contiguous buffer; copied part by part, so the caller may
        reuse it). A buffer larger than a part (a whole 4 GiB tensor) is cut into parts, and
        this call waits while the queue is full: memory stays within a few parts."""
        self._raise_failure()
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        n = view.nbytes
        if len(self._buffer) + n < self._part_bytes:  # the usual small write
            self._buffer += view
            return n
        pos = 0
        while pos < n:
            take = min(self._part_bytes - len(self._buffer), n - pos)
            self._buffer += view[pos:pos + take]
            pos += take
            if len(self._buffer) >= self._part_bytes:
                self._raise_failure()
                self._put(self._buffer)
                self._buffer = bytearray()
        return n

    def flush(self) -> None:
        """Nothing to do: parts are sent as they fill (file objects' ``flush``, for writers
        such as ``zipfile`` that call it)."""

    def commit(self) -> None:
        """Send the rest and complete the upload: the file appears at its URL, whole."""
        if self._finished:
            return
        self._finished = True
        try:
            if self._buffer:
                self._put(self._buffer)
                self._buffer = bytearray()
        except BaseException as error:  # noqa: BLE001 - an inline send failed: abandon, then raise
            self._error = error
        self._put(None)
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            self._abandon()
            raise self._error
        self._file.close()

    def discard(self) -> None:
        """Abandon the upload; best effort (the storage may be what failed)."""
        if self._finished:
            return
        self._finished = True
        self._buffer = bytearray()
        self._put(None)
        if self._thread is not None:
            self._thread.join()
        self._abandon()

    def _abandon(self) -> None:
        # Cleaning up after a failure, best effort: the failure itself is what the caller sees.
        with contextlib.suppress(Exception):
            self._file.discard()  # aborts a multipart upload where there is one
        with contextlib.suppress(AttributeError):  # (BytesIO-based files have a read-only flag)
            self._file.closed = True  # else fsspec's __del__ would close, i.e. commit, the partial file
        if self._shown_while_written:
            with contextlib.suppress(Exception):  # usually "not found"; or the storage is down
                self._fs.rm_file(self._path)
