"""Publishing a bundle: moving a complete checkpoint from temporary names to its final ones.

The writer (and the merge) stage a checkpoint completely before anything at its final names
changes: every data file and the index exist, written and (with ``sync``) fsynced, under
temporary names ``NAME.tempstate<pid>_<random>``. :func:`publish` then moves it into place so
that every state a concurrent reader or a crash can observe at the final names is one whole
checkpoint, the old or the new::

    0. staged:     P.data-0000k-of-0000M.tempstate..., P.index.tempstate...
    1. re-point:   only if a checkpoint already at P uses the data file names the new one
                   needs (same shard count N == M): hard-link its data files to
                   P.data-k-of-(N+1), add an empty P.data-N-of-(N+1), and atomically replace
                   P.index by the same index with num_shards N+1. Same content, other names.
    2. move data:  rename each staged data file to P.data-k-of-M.
    3. commit:     rename the staged index to P.index.
    4. tidy:       delete P's data files the new index does not use (the re-pointed links,
                   other shard counts) and the directory's temporaries of crashed saves.

A failure before the commit undoes steps 2 and 1 (moved files go back, the original index
returns) and deletes the staged files; if undoing fails too, the re-pointed old checkpoint
is left, which is complete. Because every change of a data file name that the current index
uses is preceded by a change of ``P.index``, a reader that finds ``P.index`` unchanged after
opening a data file knows that file belongs to the index it parsed
(:class:`tfckpt.bundle.reader.CheckpointReader` checks exactly that).

Where the filesystem cannot hard-link, step 1 is skipped: steps 2 and 3 then follow each
other immediately, and only a crash between those two renames loses the old checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import posixpath
import re
import secrets
from collections.abc import Callable, Sequence
from typing import BinaryIO

from .. import storage
from ..errors import TfckptError
from ..storage import FileSource
from ..table import TableBuilder, TableReader, replace_first_value
from .entry import BundleHeader
from .naming import DATA_SUFFIX_RE, data_filename, index_filename

__all__ = ["fsync_directory", "publish", "remove_quietly", "remove_stale_temporaries", "repoint_existing",
           "temporary_name", "upload"]

TEMP_MARKER = ".tempstate"
_OURS = re.compile(re.escape(TEMP_MARKER) + r"(\d+)_[0-9a-f]+$")

IndexWriter = Callable[[BinaryIO], object]


def temporary_name(path: str) -> str:
    """A fresh temporary name next to ``path``; the pid in it lets later saves tell the
    leftovers of a crashed process from the files of one still running."""
    return f"{path}{TEMP_MARKER}{os.getpid()}_{secrets.token_hex(8)}"


def remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def fsync_directory(path: str) -> None:
    """Make renames in the directory of ``path`` durable (where the platform allows it)."""
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


def _write_file(path: str, write: IndexWriter, sync: bool) -> None:
    try:
        with open(path, "xb") as out:
            write(out)
            if sync:
                out.flush()
                os.fsync(out.fileno())
    except BaseException:
        remove_quietly(path)
        raise


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_stale_temporaries(directory: str) -> list[str]:
    """Delete the temporaries in ``directory`` (``*.tempstate<pid>_<random>``, only ever made by
    tfckpt) whose process has died, e.g. a save killed mid-way; return them."""
    removed = []
    for candidate in glob.glob(os.path.join(glob.escape(directory or "."), "*" + TEMP_MARKER + "*")):
        match = _OURS.search(candidate)
        if match and not _process_alive(int(match.group(1))):
            remove_quietly(candidate)
            removed.append(candidate)
    return removed


@dataclasses.dataclass
class _Repointed:
    """The old checkpoint, moved aside to another shard count (step 1)."""

    backup_index: str  # hard link to the original P.index
    links: list[str]  # P.data-k-of-(N+1), then the empty last shard


def repoint_existing(prefix: str, new_shards: int, sync: bool) -> _Repointed | None:
    """Step 1, if the checkpoint at ``prefix`` uses the names the new one needs."""
    index_path = index_filename(prefix)
    try:
        with open(index_path, "rb") as f:
            original = f.read()
        source = FileSource(index_path)
    except FileNotFoundError:
        return None
    try:
        table = TableReader(source)
        first = next(iter(table), None)
        if first is None or first[0] != b"":
            return None
        header = BundleHeader.decode(first[1], index_path)
    except TfckptError:
        return None  # no readable checkpoint there: nothing to keep readable
    finally:
        source.close()
    old = header.num_shards
    if old != new_shards or not any(os.path.exists(data_filename(prefix, k, old)) for k in range(old)):
        return None  # the new data files take other names: the old ones stay valid as they are
    moved_to = old + 1
    backup = temporary_name(index_path)
    try:
        os.link(index_path, backup)
    except OSError:
        return None  # no hard links here: fall back to back-to-back renames
    state = _Repointed(backup, [])
    try:
        for shard in range(old):
            target = data_filename(prefix, shard, moved_to)
            remove_quietly(target)  # a stale file of an older save with that shard count
            with contextlib.suppress(FileNotFoundError):
                os.link(data_filename(prefix, shard, old), target)
                state.links.append(target)
        empty = data_filename(prefix, old, moved_to)
        remove_quietly(empty)
        _write_file(empty, lambda out: None, sync)
        state.links.append(empty)
        moved_header = dataclasses.replace(header, num_shards=moved_to).encode()
        temp = temporary_name(index_path)
        # Usually only the header's shard count changes, in place; otherwise rebuild the table.
        patched = replace_first_value(original, moved_header)
        items: list[tuple[bytes, bytes]] = []
        if patched is None:
            source = FileSource(index_path)
            try:
                items = list(TableReader(source))[1:]
            finally:
                source.close()

        def write(out: BinaryIO) -> None:
            if patched is not None:
                out.write(patched)
                return
            rebuilt = TableBuilder(out)
            rebuilt.add(b"", moved_header)
            for key, value in items:
                rebuilt.add(key, value)
            rebuilt.finish()

        _write_file(temp, write, sync)
        try:
            os.replace(temp, index_path)
        except BaseException:
            remove_quietly(temp)
            raise
    except BaseException:
        for path in state.links:
            remove_quietly(path)
        remove_quietly(backup)
        raise
    if sync:
        fsync_directory(index_path)
    return state


def _undo(prefix: str, old_shards: int, moved: list[tuple[str, str]], repointed: _Repointed | None,
          keep_staged: bool) -> None:
    """Reverse steps 2 and 1 after a failure, each step on its own so that one failing does
    not stop the rest. No index in place uses a moved file's final name (the re-pointed one
    uses the links), so a file that cannot move back may be deleted; the old checkpoint stays
    readable throughout."""
    for staged, final in reversed(moved):
        try:
            os.replace(final, staged)
        except OSError:
            if not keep_staged:
                remove_quietly(final)
            continue
        if not keep_staged:
            remove_quietly(staged)
    if repointed is None:
        return
    try:
        for shard in range(old_shards):
            original = data_filename(prefix, shard, old_shards)
            link = data_filename(prefix, shard, old_shards + 1)
            if not os.path.exists(original) and os.path.exists(link):
                os.link(link, original)
        os.replace(repointed.backup_index, index_filename(prefix))
    except OSError:
        remove_quietly(repointed.backup_index)
        return  # the re-pointed old checkpoint is complete: leave it as it is
    for path in repointed.links:
        remove_quietly(path)


def publish(prefix: str, staged_data: Sequence[str], write_index: IndexWriter, *, sync: bool = True,
            keep_staged_on_failure: bool = False) -> list[str]:
    """Publish a staged checkpoint at ``prefix``; return the final data file names.

    ``staged_data[k]`` becomes ``prefix.data-k-of-M`` (``M = len(staged_data)``) and
    ``write_index`` writes the index body. On failure the staged files are deleted (kept, at
    their staged names, with ``keep_staged_on_failure``, as the merge needs for its sources)
    and the previous checkpoint at ``prefix`` is left complete.
    """
    count = len(staged_data)
    index_path = index_filename(prefix)
    finals = [data_filename(prefix, shard, count) for shard in range(count)]
    index_temp = temporary_name(index_path)
    moved: list[tuple[str, str]] = []
    repointed: _Repointed | None = None
    try:
        _write_file(index_temp, write_index, sync)
        repointed = repoint_existing(prefix, count, sync)
        for staged, final in zip(staged_data, finals):
            os.replace(staged, final)
            moved.append((staged, final))
        if sync:
            fsync_directory(index_path)
        os.replace(index_temp, index_path)
    except BaseException:
        remove_quietly(index_temp)
        _undo(prefix, count, moved, repointed, keep_staged_on_failure)
        if not keep_staged_on_failure:
            for staged in staged_data:
                remove_quietly(staged)
        raise
    if sync:
        fsync_directory(index_path)
    if repointed is not None:
        remove_quietly(repointed.backup_index)
    _remove_unused_data_files(prefix, set(finals))
    remove_stale_temporaries(os.path.dirname(prefix))
    return finals


def _remove_unused_data_files(prefix: str, keep: set[str]) -> None:
    """Data files of earlier saves at ``prefix`` with another shard count are unreachable now."""
    for path in glob.glob(glob.escape(prefix) + ".data-*-of-*"):
        if path not in keep and DATA_SUFFIX_RE.search(path[len(prefix):]):
            remove_quietly(path)


def upload(staged_prefix: str, num_shards: int, url: str) -> None:
    """Publish a checkpoint complete at the local ``staged_prefix`` to the URL ``url``, with
    the same guarantee as :func:`publish`: every state a reader can observe at ``url`` is a
    whole checkpoint, the old or the new.

    Object stores have no rename and no hard link, but replacing one object is atomic. So:
    if a checkpoint already at ``url`` uses the data file names the new one needs, it is first
    re-pointed by server-side copies (its data under ``-of-(N+1)`` names, an empty last shard,
    its index replaced by the same index with ``num_shards`` N+1); then the new data files are
    uploaded, then the new index (the commit); then data files it does not use are deleted.
    A failure before the commit leaves the old checkpoint (maybe re-pointed) readable and
    nothing of the new one visible.
    """
    index_url = index_filename(url)
    old = storage.read_bytes(index_url)
    old_header = _header_of(old, index_url) if old is not None else None
    if old is not None and old_header is not None and old_header.num_shards == num_shards:
        moved_to = num_shards + 1
        for shard in range(num_shards):
            source = data_filename(url, shard, num_shards)
            if storage.exists(source):
                storage.copy(source, data_filename(url, shard, moved_to))
        storage.write_bytes_remote(data_filename(url, num_shards, moved_to), b"")
        patched = replace_first_value(old, dataclasses.replace(old_header, num_shards=moved_to).encode())
        if patched is not None:  # else (a header too unusual to patch): no re-pointing possible
            storage.write_bytes_remote(index_url, patched)
        else:
            storage.remove(index_url)
    for shard in range(num_shards):
        storage.upload(data_filename(staged_prefix, shard, num_shards), data_filename(url, shard, num_shards))
    storage.upload(index_filename(staged_prefix), index_url)  # the commit: one atomic PUT
    # fsspec may spell the URLs it globs differently (memory:///b vs memory://b): compare names.
    keep = {posixpath.basename(data_filename(url, shard, num_shards)) for shard in range(num_shards)}
    base = posixpath.basename(url)
    for path in storage.glob(storage.glob_escape(url) + ".data-*-of-*"):
        name = posixpath.basename(path)
        if name not in keep and DATA_SUFFIX_RE.search(name[len(base):]):
            storage.remove(path)


def _header_of(index: bytes, where: str) -> BundleHeader | None:
    """The bundle header of an index file's bytes; ``None`` if it is not a readable index."""
    try:
        first = next(iter(TableReader(storage.BytesSource(where, index))), None)
        if first is None or first[0] != b"":
            return None
        return BundleHeader.decode(first[1], where)
    except TfckptError:
        return None
