"""A single output file written whole or not at all: under a temporary name renamed into place
where the filesystem renames atomically; streamed to its final name on object stores, where
an upload shows nothing until it completes."""

from __future__ import annotations

from typing import Any

from .. import storage
from ..bundle.writer import make_parents
from ..storage import temporary_name

__all__ = ["StagedFile"]


class StagedFile:
    """``path`` is written as ``path.tempstate<pid>_<random>`` (or as an upload on object
    stores); :meth:`publish` puts it in place, :meth:`discard` deletes it (and the
    directories it had to create)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fs = storage.filesystem_for(path)
        self.created_directories = make_parents(path, self._fs)
        self._upload: storage.Upload | None = None
        self.file: Any
        if self._fs.atomic_rename:
            self.temp = temporary_name(path)
            self.file = self._fs.open_file(self.temp, "xb")  # closed by publish()/discard()
        else:
            self.temp = path
            self._upload = self.file = self._fs.upload(path)

    def publish(self) -> None:
        if self._upload is not None:
            self._upload.commit()
            return
        self.file.close()
        self._fs.move(self.temp, self.path)

    def discard(self) -> None:
        if self._upload is not None:
            self._upload.discard()
            return
        self.file.close()
        self._fs.remove(self.temp)
        for directory in self.created_directories:
            try:
                self._fs.rmdir(directory)
            except OSError:
                break
