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

Where the filesystem cannot hard-link, step 1 cannot keep the old checkpoint's names free;
the new checkpoint takes other names instead: one more shard, an empty last data file, and
its index's ``num_shards`` to match (the next save then takes the usual names again). The
invariant above holds unchanged, with no window.

Steps 1 to 4 run under :func:`tfckpt.storage.directory_lock`, so saves in one directory
(processes or threads) publish one at a time; where no lock can be taken, a save that finds
``P.index`` changed under it (before its moves and before its commit) raises
:class:`~tfckpt.errors.ConcurrentSaveError`, touching no final name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import glob
import io
import os
import posixpath
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO

from .. import storage
from ..errors import ConcurrentSaveError, TfckptError
from ..table.builder import TableBuilder
from ..table.reader import TableReader, first_value, replace_first_value
from .entry import BundleHeader
from .naming import DATA_SUFFIX_RE, data_filename, index_filename

__all__ = ["discard_remote", "fsync_directory", "publish", "publish_remote", "remove_quietly",
           "remove_stale_temporaries", "repoint_existing", "repoint_remote", "temporary_name"]

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


def _uses_names(prefix: str, new_shards: int) -> tuple[bytes, BundleHeader] | None:
    """The index bytes and header of a checkpoint at ``prefix`` whose data files take the
    names a new one with ``new_shards`` files needs; ``None`` if there is none such."""
    index_path = index_filename(prefix)
    try:
        with open(index_path, "rb") as f:
            original = f.read()
    except FileNotFoundError:
        return None
    header = _header_of(original, index_path)
    if header is None:
        return None  # no readable checkpoint there: nothing to keep readable
    old = header.num_shards
    if old != new_shards or not any(os.path.exists(data_filename(prefix, k, old)) for k in range(old)):
        return None  # the new data files take other names: the old ones stay valid as they are
    return original, header


def _index_writer(original: bytes, header: BundleHeader, shards: int, where: str) -> IndexWriter:
    """Writes the index ``original`` with its header's ``num_shards`` set to ``shards``:
    usually a patch of that one field in place; otherwise the table rebuilt."""
    moved_header = dataclasses.replace(header, num_shards=shards).encode()
    patched = replace_first_value(original, moved_header)
    items: list[tuple[bytes, bytes]] = []
    if patched is None:
        items = list(TableReader(storage.BytesSource(where, original)))[1:]

    def write(out: BinaryIO) -> None:
        if patched is not None:
            out.write(patched)
            return
        rebuilt = TableBuilder(out)
        rebuilt.add(b"", moved_header)
        for key, value in items:
            rebuilt.add(key, value)
        rebuilt.finish()

    return write


def repoint_existing(prefix: str, new_shards: int, sync: bool) -> _Repointed | None:
    """Step 1, if the checkpoint at ``prefix`` uses the names the new one needs; ``None``
    if it does not, or if the filesystem cannot hard-link (see :func:`publish`)."""
    found = _uses_names(prefix, new_shards)
    return None if found is None else _repoint(prefix, *found, sync)


# What a filesystem without hard links answers to link() (exFAT, FAT, some FUSE and SMB mounts).
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK})


def _repoint(prefix: str, original: bytes, header: BundleHeader, sync: bool) -> _Repointed | None:
    index_path = index_filename(prefix)
    old = header.num_shards
    moved_to = old + 1
    backup = temporary_name(index_path)
    try:
        os.link(index_path, backup)
    except OSError as exc:
        if exc.errno in _NO_LINKS:
            return None
        raise
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
        temp = temporary_name(index_path)
        _write_file(temp, _index_writer(original, header, moved_to, index_path), sync)
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

    Saves publishing in one directory take turns (:func:`tfckpt.storage.directory_lock`);
    where no lock can be taken, a save that finds the index changed by another one under it
    raises :class:`~tfckpt.errors.ConcurrentSaveError` instead of committing.
    """
    index_path = index_filename(prefix)
    index_temp = temporary_name(index_path)
    old_shards = len(staged_data)  # a checkpoint re-pointed by step 1 had this many
    created: list[str] = []  # files this function staged itself (an index rewrite, an empty shard)
    moved: list[tuple[str, str]] = []
    repointed: _Repointed | None = None
    finals: list[str] = []
    committed = False
    try:
        _write_file(index_temp, write_index, sync)
        with storage.directory_lock(index_path) as locked:
            found = _uses_names(prefix, old_shards)
            if found is not None:
                repointed = _repoint(prefix, *found, sync)
                if repointed is None:  # no hard links: take names the old index does not use
                    staged_data, index_temp = _shifted(prefix, staged_data, index_temp, created, sync)
            expected = storage.path_identity(index_path)

            def check_alone() -> None:
                if not locked and storage.path_identity(index_path) != expected:
                    raise ConcurrentSaveError(f"{prefix}: another save replaced {index_path} while this one "
                                              f"was publishing (no lock can be taken here); this save is undone")

            count = len(staged_data)
            finals = [data_filename(prefix, shard, count) for shard in range(count)]
            check_alone()
            for staged, final in zip(staged_data, finals):
                os.replace(staged, final)
                moved.append((staged, final))
            if sync:
                fsync_directory(index_path)
            check_alone()
            os.replace(index_temp, index_path)
            committed = True
            if sync:
                fsync_directory(index_path)
            if repointed is not None:
                remove_quietly(repointed.backup_index)
            _remove_unused_data_files(prefix, set(finals))
            remove_stale_temporaries(os.path.dirname(prefix))
    except BaseException as exc:
        if committed:
            raise  # only tidying failed; the next save at the prefix tidies again
        remove_quietly(index_temp)
        if isinstance(exc, ConcurrentSaveError):
            # The final names belong to the other save's index now: touch none of them.
            moved = []
            if repointed is not None:
                remove_quietly(repointed.backup_index)
                repointed = None
        _undo(prefix, old_shards, moved, repointed, keep_staged_on_failure)
        for path in created:
            remove_quietly(path)
        if not keep_staged_on_failure:
            for staged in staged_data:
                remove_quietly(staged)
        if isinstance(exc, FileExistsError):  # a name this save made was taken meanwhile
            raise ConcurrentSaveError(f"{prefix}: another save is publishing here at the same time "
                                      f"({exc.filename} appeared); this save is undone") from exc
        raise
    return finals


def _shifted(prefix: str, staged_data: Sequence[str], index_temp: str, created: list[str],
             sync: bool) -> tuple[list[str], str]:
    """Without hard links the old checkpoint cannot be re-pointed: the new one takes other
    names instead, one more shard (an empty last data file) and its index's ``num_shards``
    to match. Every state of the prefix is then a whole checkpoint, and readers of the old
    index never open a new data file under an old name."""
    shards = len(staged_data) + 1
    empty = temporary_name(f"{prefix}.data")
    _write_file(empty, lambda out: None, sync)
    created.append(empty)
    with open(index_temp, "rb") as f:
        written = f.read()
    header = _header_of(written, index_temp)
    if header is None:  # pragma: no cover - the index was written by this save a moment ago
        raise TfckptError(f"{index_temp}: the index just written cannot be read back")
    rewritten = temporary_name(index_filename(prefix))
    _write_file(rewritten, _index_writer(written, header, shards, index_temp), sync)
    created.append(rewritten)
    remove_quietly(index_temp)
    return [*staged_data, empty], rewritten


def _remove_unused_data_files(prefix: str, keep: set[str]) -> None:
    """Data files of earlier saves at ``prefix`` with another shard count are unreachable now."""
    for path in glob.glob(glob.escape(prefix) + ".data-*-of-*"):
        if path not in keep and DATA_SUFFIX_RE.search(path[len(prefix):]):
            remove_quietly(path)


def repoint_remote(url: str, new_shards: int) -> None:
    """Step 1 on object storage, which has no hard links: if the checkpoint at ``url`` uses
    the data file names a new one with ``new_shards`` files needs, copy (server-side) its data
    to ``-of-(N+1)`` names, add an empty last shard and replace its index by the same index
    with ``num_shards`` N+1 (one atomic PUT). It stays readable, under other names."""
    index_url = index_filename(url)
    old = storage.read_bytes(index_url)
    header = _header_of(old, index_url) if old is not None else None
    if old is None or header is None or header.num_shards != new_shards:
        return
    moved_to = new_shards + 1
    for shard in range(new_shards):
        source = data_filename(url, shard, new_shards)
        if storage.exists(source):
            storage.copy(source, data_filename(url, shard, moved_to))
    storage.write_bytes_remote(data_filename(url, new_shards, moved_to), b"")
    # A header too unusual to patch in place is rebuilt: the old index is replaced whole by
    # one PUT, never deleted first (a save failing later must leave it readable).
    rewritten = io.BytesIO()
    _index_writer(old, header, moved_to, index_url)(rewritten)
    storage.write_bytes_remote(index_url, rewritten.getvalue())


def publish_remote(url: str, streamed: Sequence[str], index: bytes) -> list[str]:
    """Publish a checkpoint whose data files were uploaded (:class:`tfckpt.storage.Upload`)
    to ``streamed``; return the final data file URLs. The same guarantee as :func:`publish`:
    every state a reader can observe at ``url`` is one whole checkpoint, the old or the new.

    A data file streamed under another name than its final one moves there server-side (after
    step 1 if an old checkpoint uses that name; a writer streaming straight to a final name has
    done step 1 before it began). Then the index is PUT (the commit, atomic on object stores),
    then data files the new index does not use are deleted. A failure before the commit
    deletes the new data files that no index in place can use; after an unclear commit (the
    PUT failed, but may have landed) they are kept.
    """
    count = len(streamed)
    finals = [data_filename(url, shard, count) for shard in range(count)]
    index_url = index_filename(url)
    to_move = [(source, final) for source, final in zip(streamed, finals) if source != final]
    finals_free = not to_move  # streamed straight to final names: the writer re-pointed first
    try:
        if to_move:
            repoint_remote(url, count)
            finals_free = True  # no index in place uses the final names now
        for source, final in to_move:
            storage.move(source, final)
    except BaseException:
        # Until step 1 is complete the old index may still use the final names: keep them.
        discard_remote([*streamed, *finals] if finals_free else streamed)
        raise
    storage.write_bytes_remote(index_url, index)  # the commit
    # Tidying is best effort: the save has succeeded, and the next one at url tidies again.
    with contextlib.suppress(Exception):
        # fsspec may spell the URLs it globs differently (memory:///b vs memory://b): compare names.
        keep = {posixpath.basename(final) for final in finals}
        base = posixpath.basename(url)
        unused = [path for path in storage.glob(storage.glob_escape(url) + ".data-*-of-*")
                  if posixpath.basename(path) not in keep
                  and DATA_SUFFIX_RE.search(posixpath.basename(path)[len(base):])]
        discard_remote(unused)
    return finals


def discard_remote(urls: Iterable[str]) -> None:
    """Delete the new files of a failed remote save; best effort (the storage may be what failed)."""
    for url in dict.fromkeys(urls):
        with contextlib.suppress(Exception):  # the save's own failure is what the caller sees
            storage.remove(url)


def _header_of(index: bytes, where: str) -> BundleHeader | None:
    """The bundle header of an index file's bytes; ``None`` if it is not a readable index."""
    try:
        value = first_value(index)  # without parsing the first block's other entries
        if value is None:  # an unusual first block (e.g. compressed): read it properly
            first = next(iter(TableReader(storage.BytesSource(where, index))), None)
            if first is None or first[0] != b"":
                return None
            value = first[1]
        return BundleHeader.decode(value, where)
    except TfckptError:
        return None
