"""The one narrow I/O seam between the format code and storage.

Readers need only :class:`ByteSource` (``size()``, ``read_at()``, ``readinto_at()``); writers
use ordinary binary file objects. Paths are adapted here, at the edge; the format layers never
open files themselves.
"""

from __future__ import annotations

import os
import threading
from typing import Protocol

from .errors import CorruptionError

PathLike = str | os.PathLike[str]


class ByteSource(Protocol):
    """Random-access bytes: what the table and bundle readers need from storage."""

    name: str

    def size(self) -> int: ...

    def read_at(self, offset: int, n: int) -> bytes: ...

    def readinto_at(self, offset: int, buffer: memoryview) -> None: ...

    def close(self) -> None: ...


class FileSource:
    """A local file read with positional reads, so one instance serves many threads."""

    def __init__(self, path: PathLike) -> None:
        self.name = os.fspath(path)
        self._fd: int | None = os.open(self.name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._size = os.fstat(self._fd).st_size
        # Platforms without pread (Windows) share one file offset; a lock keeps seek+read whole.
        self._lock = None if hasattr(os, "pread") else threading.Lock()

    def size(self) -> int:
        return self._size

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

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __repr__(self) -> str:
        return f"FileSource({self.name!r})"
