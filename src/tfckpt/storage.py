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
import glob as _glob
import mmap
import os
import posixpath
import queue
import re
import stat
import threading
import warnings
from collections.abc import Hashable, Iterator
from typing import Any, Protocol

from .errors import CorruptionError, InvalidArgumentError, NotFoundError, UnsupportedError
from .settings import get_num_threads

__all__ = [
    "ByteSource",
    "BytesSource",
    "FileIdentity",
    "FileSource",
    "FsspecSource",
    "PathLike",
    "Upload",
    "copy",
    "create_exclusive",
    "directory_lock",
    "dirname",
    "exists",
    "glob",
    "glob_escape",
    "is_url",
    "isdir",
    "isfile",
    "join",
    "listdir",
    "makedirs",
    "move",
    "open_file",
    "open_source",
    "path_identity",
    "read_bytes",
    "remove",
    "same_filesystem",
    "write_bytes_remote",
]

PathLike = str | os.PathLike[str]


class ByteSource(Protocol):
    """Random-access bytes: what the table and bundle readers need from storage."""

    name: str
    is_remote: bool  # each read is a round trip: worth coalescing and issuing concurrently

    def size(self) -> int: ...

    def read_at(self, offset: int, n: int) -> bytes: ...

    def readinto_at(self, offset: int, buffer: memoryview) -> None: ...

    def close(self) -> None: ...


FileIdentity = tuple[Hashable, ...]


def _identity(stat: os.stat_result) -> FileIdentity:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def path_identity(path: str) -> FileIdentity | None:
    """The identity of the file now at ``path`` (``None`` if there is none, or if the storage
    cannot tell one version of a file from the next): a file renamed or written over it has
    another. Local files: device, inode, size and mtime. URLs: what the store's metadata
    offers (ETag, generation, version, modification time, size; one HEAD request)."""
    if is_url(path):
        return _remote_identity(path)
    try:
        return _identity(os.stat(path))
    except OSError:
        return None


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

    def mapping(self) -> mmap.mmap | None:
        """A read-only memory map of the whole file (made once), or ``None`` if it cannot be."""
        if self._map is None and self._size:
            try:
                self._map = mmap.mmap(self._fd_or_raise(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                return None
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


def open_source(path: str) -> ByteSource:
    """A :class:`ByteSource` for a local path or a URL."""
    return FsspecSource(path) if is_url(path) else FileSource(path)


def join(base: str, *parts: str) -> str:
    return posixpath.join(base, *parts) if is_url(base) else os.path.join(base, *parts)


def dirname(path: str) -> str:
    return posixpath.dirname(path) if is_url(path) else os.path.dirname(path)


def exists(path: str) -> bool:
    """Whether a file exists. For URLs this asks for its size (HTTP: a HEAD request), because
    fsspec's ``exists`` downloads the whole body over HTTP."""
    if not is_url(path):
        return os.path.exists(path)
    fs, inner = _filesystem(path)
    try:
        fs.size(inner)
    except (FileNotFoundError, IsADirectoryError):
        return False
    return True


def _is(kind: str, path: str) -> bool:
    """``os.path.isfile``/``isdir`` (``kind``), or the fsspec filesystem's method of that name."""
    if not is_url(path):
        return bool(getattr(os.path, kind)(path))
    fs, inner = _filesystem(path)
    try:
        return bool(getattr(fs, kind)(inner))
    except (OSError, ValueError):
        return False


def isfile(path: str) -> bool:
    return _is("isfile", path)


def isdir(path: str) -> bool:
    return _is("isdir", path)


def read_bytes(path: str) -> bytes | None:
    """The whole (small) file, or ``None`` if it does not exist (or is a directory); another
    kind of file that is not a regular one (a FIFO) raises :class:`NotFoundError`."""
    if not is_url(path):
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
    fs, inner = _filesystem(path)
    try:
        return bytes(fs.cat_file(inner))
    except (FileNotFoundError, IsADirectoryError):
        return None


def write_bytes_remote(url: str, data: bytes) -> None:
    """Store a small object in one request (atomic on object stores)."""
    fs, inner = _filesystem(url)
    fs.pipe_file(inner, data)


def remove(path: str) -> None:
    """Delete a file; a file that is already gone is fine (another process pruned it)."""
    try:
        if is_url(path):
            fs, inner = _filesystem(path)
            fs.rm_file(inner)
        else:
            os.remove(path)
    except FileNotFoundError:
        pass


def glob(pattern: str) -> list[str]:
    """Paths matching a glob pattern (URLs keep their protocol)."""
    if not is_url(pattern):
        return _glob.glob(pattern)
    fs, inner = _filesystem(pattern)
    return [fs.unstrip_protocol(p) for p in fs.glob(inner)]


def glob_escape(path: str) -> str:
    return _glob.escape(path)


def move(source: str, destination: str) -> None:
    """Rename a file: ``os.replace`` locally; on a filesystem of URLs, its own move (a
    server-side copy and delete on object stores; nothing is downloaded)."""
    if not is_url(source):
        os.replace(source, destination)
        return
    fs, inner = _filesystem(source)
    _, target = _filesystem(destination)
    fs.mv(inner, target)


def create_exclusive(path: str, data: bytes) -> None:
    """Create a small file that must not exist yet; ``FileExistsError`` if it does. Object
    stores that support conditional writes (S3's ``If-None-Match``) decide atomically; on
    others the check and the write are two requests."""
    if not is_url(path):
        with open(path, "xb") as f:
            f.write(data)
        return
    fs, inner = _filesystem(path)
    if fs.exists(inner):
        raise FileExistsError(path)
    try:
        with fs.open(inner, "xb") as f:
            f.write(data)
    except (ValueError, NotImplementedError, TypeError):  # no exclusive mode here
        fs.pipe_file(inner, data)


def copy(source: str, destination: str) -> None:
    """Copy a file within one filesystem of URLs by the filesystem itself (a server-side
    copy on object stores: nothing is downloaded)."""
    fs, inner = _filesystem(source)
    _, target = _filesystem(destination)
    fs.copy(inner, target)


def open_file(path: str, mode: str = "rb") -> Any:
    """A file object for a local path or a URL (``"r"``/``"rb"``/``"w"``/``"wb"``/``"a"``...): the
    file-at-a-time access of ``tf.io.gfile.GFile`` (:mod:`tfckpt.compat`). Text modes use UTF-8."""
    encoding = None if "b" in mode else "utf-8"
    if not is_url(path):
        return open(path, mode, encoding=encoding)
    fs, inner = _filesystem(path)
    return fs.open(inner, mode, encoding=encoding) if encoding else fs.open(inner, mode)


def listdir(path: str) -> list[str]:
    """The names (not paths) of a directory's entries; ``FileNotFoundError`` (or
    ``NotADirectoryError``) if ``path`` is not a directory."""
    if not is_url(path):
        return os.listdir(path)
    fs, inner = _filesystem(path)
    if not fs.isdir(inner):
        raise FileNotFoundError(path)
    return [posixpath.basename(str(p).rstrip("/")) for p in fs.ls(inner, detail=False)]


def makedirs(path: str) -> None:
    """Create a directory and its parents; one that exists is fine (object stores have none)."""
    if not is_url(path):
        os.makedirs(path, exist_ok=True)
        return
    fs, inner = _filesystem(path)
    fs.makedirs(inner, exist_ok=True)


UPLOAD_PART_BYTES = 16 << 20  # S3 needs >= 5 MiB per part; 16 MiB keeps a 10,000-part upload at 160 GB
UPLOAD_PARTS_QUEUED = 2  # parts waiting for the helper thread: memory bound, and enough to keep it busy


class Upload:
    """One remote file written as a stream, without a local copy.

    :meth:`write` gathers bytes into parts of ``part_bytes``; a helper thread hands each part
    to the filesystem's writer (a multipart upload on S3/GCS) while the caller produces the
    next, so encoding and network transfer overlap. At most ``UPLOAD_PARTS_QUEUED`` parts wait
    (besides the one being filled and the one being sent), which bounds memory whatever the
    file's or a single write's size. Object stores show nothing at ``url`` until
    :meth:`commit` completes the upload; :meth:`discard` abandons it (and deletes what a
    filesystem without pending uploads, such as ``memory://``, already shows).

    Examples
    --------
    >>> upload = Upload("memory://doc/upload.bin", part_bytes=4)
    >>> for piece in (b"abc", b"defg", b"h"):
    ...     _ = upload.write(piece)
    >>> upload.commit()
    >>> read_bytes("memory://doc/upload.bin")
    b'abcdefgh'
    """

    def __init__(self, url: str, *, part_bytes: int = UPLOAD_PART_BYTES) -> None:
        self.name = url
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
        with contextlib.suppress(Exception):  # usually "not found"; or the storage is down
            self._fs.rm_file(self._path)  # filesystems that show a file while it is written
