"""A single output file written under a temporary name and renamed into place when whole."""

from __future__ import annotations

import os
from typing import BinaryIO

from ..bundle.publish import remove_quietly, temporary_name
from ..bundle.writer import make_parents

__all__ = ["StagedFile"]


class StagedFile:
    """``path`` is written as ``path.tempstate<pid>_<random>``; :meth:`publish` renames it,
    :meth:`discard` deletes it (and the directories it had to create)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.created_directories = make_parents(path)
        self.temp = temporary_name(path)
        self.file: BinaryIO = open(self.temp, "xb")  # noqa: SIM115 - closed by publish()/discard()

    def publish(self) -> None:
        self.file.close()
        os.replace(self.temp, self.path)

    def discard(self) -> None:
        self.file.close()
        remove_quietly(self.temp)
        for directory in self.created_directories:
            try:
                os.rmdir(directory)
            except OSError:
                break
