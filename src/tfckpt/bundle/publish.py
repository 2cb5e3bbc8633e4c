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
    2. move data:  rename each staged data file to P.data-k-of-M (a file at that name, which
                   no index in place uses, is deleted first: see publish()).
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

Steps 1 to 4 run under the filesystem's directory lock (:meth:`tfckpt.storage.Filesystem.lock`),
so saves in one directory (processes or threads) publish one at a time; where no lock can be
taken, a save that finds ``P.index`` changed under it (before its moves and before its commit)
raises :class:`~tfckpt.errors.ConcurrentSaveError`, touching no final name.

That is the strategy for filesystems with atomic renames. Object stores (no rename, no hard
links; a whole-object PUT is atomic) take the other one, chosen by the filesystem's declared
capabilities: step 1 copies the old checkpoint's data server-side to ``-of-(N+1)`` names and
replaces its index in one PUT; step 2 copies staged files to their final names; step 3 is one
PUT of the index; step 4 deletes the staged files and unused data files. The same invariant
holds: every state a reader can observe at ``P`` is one whole checkpoint, the old or the new.
:func:`publish_file` is the same rule for one small file (the state file) and
:func:`publish_stream` for one file written as a stream (a converted file): a temporary name
renamed into place with atomic renames; on object stores an upload the store shows only once
complete; elsewhere (``memory://``) an upload to a temporary name moved into place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any, BinaryIO

from .. import storage
from ..errors import ConcurrentSaveError, TfckptError
from ..storage import Filesystem, LocalFilesystem, temporary_name
from ..table.builder import TableBuilder
from ..table.reader import TableReader, first_value, replace_first_value
from .entry import BundleHeader
from .naming import DATA_SUFFIX_RE, data_filename, index_filename

__all__ = ["StagedStream", "discard_remote", "make_parents", "publish", "publish_file", "publish_stream",
           "repoint_existing", "repoint_remote"]

IndexWriter = Callable[[BinaryIO], object]


def _local(fs: Filesystem, what: str) -> LocalFilesystem:
    """The renaming strategy's filesystem: one with atomic renames, files and fsync."""
    if not isinstance(fs, LocalFilesystem):  # pragma: no cover - chosen by capabilities above
        raise fs.unsupported(what, "")
    return fs


def make_parents(prefix: str, fs: Filesystem | None = None) -> list[str]:
    """Create the missing directories above ``prefix``; return them, deepest first (none on
    filesystems without directories of their own, such as object stores)."""
    fs = fs or storage.filesystem_for(prefix)
    if fs.is_remote:
        return []
    missing = []
    directory = fs.dirname(prefix)
    while directory and not fs.isdir(directory):
        missing.append(directory)
        parent = fs.dirname(directory)
        if parent == directory:
            break
        directory = parent
    if missing:
        fs.makedirs(missing[0])
    return missing


def _rename_into_place(local: LocalFilesystem, temp: str, path: str) -> None:
    """The renaming strategy's last step for one file: ``temp`` (complete, fsynced if asked)
    replaces ``path`` in one rename, or is deleted; then the directory's temporaries of dead
    processes go."""
    try:
        local.move(temp, path)
    except BaseException:
        local.remove(temp)
        raise
    local.remove_stale_temporaries(local.dirname(path))


def publish_file(path: str, write: IndexWriter, *, sync: bool = True, fs: Filesystem | None = None) -> None:
    """Replace the small file at ``path`` by what ``write(file)`` writes, atomically: with
    atomic renames, a temporary name next to it (fsynced with ``sync``) renamed onto it, then
    the directory's leftovers of dead processes removed; elsewhere, one PUT."""
    fs = fs or storage.filesystem_for(path)
    if not fs.atomic_rename:
        body = io.BytesIO()
        write(body)
        fs.write_bytes(path, body.getvalue())
        return
    local = _local(fs, "publishing a file")
    temp = temporary_name(path)
    local.write_new(temp, write, sync)
    _rename_into_place(local, temp, path)


class StagedStream:
    """A file being written for ``path``, shown there whole or not at all (see
    :func:`publish_stream`). Write to :attr:`file`; then :meth:`publish` or :meth:`discard`.
    :attr:`temp` is the name the bytes go to (``path`` itself for a pending upload)."""

    file: Any

    def __init__(self, path: str, fs: Filesystem, sync: bool) -> None:
        self.path = path
        self.fs = fs
        self._sync = sync
        self.created_directories = make_parents(path, fs)
        self._upload: storage.Upload | None = None
        # With atomic renames, or where an upload is visible while it is written, the bytes
        # go to a temporary name; an object store's pending upload shows nothing until done.
        self.temp = path if fs.pending_uploads else temporary_name(path)
        if fs.atomic_rename:
            self.file = fs.open_file(self.temp, "xb")  # closed by publish()/discard()
        else:
            self._upload = self.file = fs.upload(self.temp)

    def publish(self) -> None:
        """Put the complete file at :attr:`path` (replacing what was there in one step)."""
        if self._upload is not None:
            self._upload.commit()
            if self.temp != self.path:
                try:
                    self.fs.move(self.temp, self.path)
                except BaseException:
                    discard_remote([self.temp], self.fs)
                    raise
            return
        try:
            if self._sync and not self.file.closed:
                self.fs.sync_file(self.file)
            self.file.close()
        except BaseException:
            self.discard()
            raise
        _rename_into_place(_local(self.fs, "publishing a file"), self.temp, self.path)

    def discard(self) -> None:
        """Delete what was written (and the directories made for it); ``path`` is untouched."""
        if self._upload is not None:
            self._upload.discard()
            if self.temp != self.path:
                discard_remote([self.temp], self.fs)
            return
        self.file.close()
        self.fs.remove(self.temp)
        for directory in self.created_directories:
            try:
                self.fs.rmdir(directory)
            except OSError:
                break


def publish_stream(path: str, fs: Filesystem | None = None, *, sync: bool = False) -> StagedStream:
    """A file to write as a stream and then publish at ``path`` whole, or discard leaving
    ``path`` as it was. The strategy follows ``fs``'s capabilities (``path``'s filesystem
    unless given), as :func:`publish_file`'s: with atomic renames, a temporary name next to
    ``path`` (fsynced with ``sync``) renamed onto it, then the directory's leftovers of dead
    processes removed; on object stores, an upload committed by :meth:`StagedStream.publish`
    (missing parent directories are made, and removed again by a discard)."""
    return StagedStream(path, fs or storage.filesystem_for(path), sync)


@dataclasses.dataclass
class _Repointed:
    """The old checkpoint, moved aside to another shard count (step 1)."""

    backup_index: str  # hard link to the original P.index
    links: list[str]  # P.data-k-of-(N+1), then the empty last shard


def _uses_names(fs: Filesystem, prefix: str, new_shards: int) -> tuple[bytes, BundleHeader] | None:
    """The index bytes and header of a checkpoint at ``prefix`` whose data files take the
    names a new one with ``new_shards`` files needs; ``None`` if there is none such."""
    index_path = index_filename(prefix)
    original = fs.read_bytes(index_path)
    if original is None:
        return None
    header = _header_of(original, index_path)
    if header is None:
        return None  # no readable checkpoint there: nothing to keep readable
    old = header.num_shards
    if old != new_shards or not any(fs.exists(data_filename(prefix, k, old)) for k in range(old)):
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
    """Step 1 (renaming strategy), if the checkpoint at the local ``prefix`` uses the names
    the new one needs; ``None`` if it does not, or if the filesystem cannot hard-link."""
    fs = _local(storage.filesystem_for(prefix), "re-pointing a checkpoint")
    found = _uses_names(fs, prefix, new_shards)
    return None if found is None else _repoint(fs, prefix, *found, sync)


# What a filesystem without hard links answers to link() (exFAT, FAT, some FUSE and SMB mounts).
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK})


def _repoint(fs: LocalFilesystem, prefix: str, original: bytes, header: BundleHeader,
             sync: bool) -> _Repointed | None:
    index_path = index_filename(prefix)
    old = header.num_shards
    moved_to = old + 1
    backup = temporary_name(index_path)
    try:
        fs.link(index_path, backup)
    except OSError as exc:
        if exc.errno in _NO_LINKS:
            return None
        raise
    state = _Repointed(backup, [])
    try:
        for shard in range(old):
            target = data_filename(prefix, shard, moved_to)
            fs.remove(target)  # a stale file of an older save with that shard count
            with contextlib.suppress(FileNotFoundError):
                fs.link(data_filename(prefix, shard, old), target)
                state.links.append(target)
        empty = data_filename(prefix, old, moved_to)
        fs.remove(empty)
        fs.write_new(empty, lambda out: None, sync)
        state.links.append(empty)
        temp = temporary_name(index_path)
        fs.write_new(temp, _index_writer(original, header, moved_to, index_path), sync)
        try:
            fs.move(temp, index_path)
        except BaseException:
            fs.remove(temp)
            raise
    except BaseException:
        for path in state.links:
            fs.remove(path)
        fs.remove(backup)
        raise
    if sync:
        fs.fsync_directory(index_path)
    return state


def _undo(fs: LocalFilesystem, prefix: str, old_shards: int, moved: list[tuple[str, str]],
          repointed: _Repointed | None, keep_staged: bool) -> None:
    """Reverse steps 2 and 1 after a failure, each step on its own so that one failing does
    not stop the rest. No index in place uses a moved file's final name (the re-pointed one
    uses the links), so a file that cannot move back may be deleted; the old checkpoint stays
    readable throughout."""
    for staged, final in reversed(moved):
        try:
            fs.move(final, staged)
        except OSError:
            if not keep_staged:
                fs.remove(final)
            continue
        if not keep_staged:
            fs.remove(staged)
    if repointed is None:
        return
    try:
        for shard in range(old_shards):
            original = data_filename(prefix, shard, old_shards)
            link = data_filename(prefix, shard, old_shards + 1)
            if not fs.exists(original) and fs.exists(link):
                fs.link(link, original)
        fs.move(repointed.backup_index, index_filename(prefix))
    except OSError:
        fs.remove(repointed.backup_index)
        return  # the re-pointed old checkpoint is complete: leave it as it is
    for path in repointed.links:
        fs.remove(path)


def publish(prefix: str, staged_data: Sequence[str], write_index: IndexWriter, *, sync: bool = True,
            keep_staged_on_failure: bool = False, fs: Filesystem | None = None) -> list[str]:
    """Publish a staged checkpoint at ``prefix``; return the final data file names.

    ``staged_data[k]`` becomes ``prefix.data-k-of-M`` (``M = len(staged_data)``) and
    ``write_index`` writes the index body. On failure the staged files are deleted (kept, at
    their staged names, with ``keep_staged_on_failure``, as the merge needs for its sources)
    and the previous checkpoint at ``prefix`` is left complete.

    The strategy follows ``fs``'s capabilities (``prefix``'s filesystem unless given): with
    atomic renames, the steps of this module's docstring under the directory lock; where no
    lock can be taken, a save that finds the index changed by another one under it raises
    :class:`~tfckpt.errors.ConcurrentSaveError` instead of committing. Without them (object
    stores), server-side copies and one PUT of the index (see :func:`_publish_by_copies`).
    """
    fs = fs or storage.filesystem_for(prefix)
    if not fs.atomic_rename:
        index = io.BytesIO()
        write_index(index)
        return _publish_by_copies(fs, prefix, staged_data, index.getvalue(), keep_staged_on_failure)
    local = _local(fs, "publishing a checkpoint")
    index_path = index_filename(prefix)
    index_temp = temporary_name(index_path)
    old_shards = len(staged_data)  # a checkpoint re-pointed by step 1 had this many
    created: list[str] = []  # files this function staged itself (an index rewrite, an empty shard)
    moved: list[tuple[str, str]] = []
    repointed: _Repointed | None = None
    finals: list[str] = []
    committed = False
    try:
        local.write_new(index_temp, write_index, sync)
        with local.lock(index_path) as locked:
            found = _uses_names(local, prefix, old_shards)
            if found is not None:
                repointed = _repoint(local, prefix, *found, sync)
                if repointed is None:  # no hard links: take names the old index does not use
                    staged_data, index_temp = _shifted(local, prefix, staged_data, index_temp, created, sync)
            expected = local.identity(index_path)

            def check_alone() -> None:
                if not locked and local.identity(index_path) != expected:
                    raise ConcurrentSaveError(f"{prefix}: another save replaced {index_path} while this one "
                                              f"was publishing (no lock can be taken here); this save is undone")

            count = len(staged_data)
            finals = [data_filename(prefix, shard, count) for shard in range(count)]
            check_alone()
            for staged, final in zip(staged_data, finals):
                # No index in place uses ``final`` now (re-pointed, shifted, or another shard
                # count), so a file there can go first, and the move is not a rename over an
                # existing file: ext4 (auto_da_alloc) writes out a file renamed over another
                # before the rename commits, which made an overwrite wait for the disk (256 MiB:
                # 237 ms against 86 ms). A failure later relinks the re-pointed names (_undo).
                local.remove(final)
                local.move(staged, final)
                moved.append((staged, final))
            if sync:
                local.fsync_directory(index_path)
            check_alone()
            local.move(index_temp, index_path)
            committed = True
            if sync:
                local.fsync_directory(index_path)
            if repointed is not None:
                local.remove(repointed.backup_index)
            _remove_unused_data_files(local, prefix, set(finals))
            local.remove_stale_temporaries(local.dirname(prefix))
    except BaseException as exc:
        if committed:
            raise  # only tidying failed; the next save at the prefix tidies again
        local.remove(index_temp)
        if isinstance(exc, ConcurrentSaveError):
            # The final names belong to the other save's index now: touch none of them.
            moved = []
            if repointed is not None:
                local.remove(repointed.backup_index)
                repointed = None
        _undo(local, prefix, old_shards, moved, repointed, keep_staged_on_failure)
        for path in created:
            local.remove(path)
        if not keep_staged_on_failure:
            for staged in staged_data:
                local.remove(staged)
        if isinstance(exc, FileExistsError):  # a name this save made was taken meanwhile
            raise ConcurrentSaveError(f"{prefix}: another save is publishing here at the same time "
                                      f"({exc.filename} appeared); this save is undone") from exc
        raise
    return finals


def _shifted(fs: LocalFilesystem, prefix: str, staged_data: Sequence[str], index_temp: str, created: list[str],
             sync: bool) -> tuple[list[str], str]:
    """Without hard links the old checkpoint cannot be re-pointed: the new one takes other
    names instead, one more shard (an empty last data file) and its index's ``num_shards``
    to match. Every state of the prefix is then a whole checkpoint, and readers of the old
    index never open a new data file under an old name."""
    shards = len(staged_data) + 1
    empty = temporary_name(f"{prefix}.data")
    fs.write_new(empty, lambda out: None, sync)
    created.append(empty)
    written = fs.read_bytes(index_temp) or b""
    header = _header_of(written, index_temp)
    if header is None:  # pragma: no cover - the index was written by this save a moment ago
        raise TfckptError(f"{index_temp}: the index just written cannot be read back")
    rewritten = temporary_name(index_filename(prefix))
    fs.write_new(rewritten, _index_writer(written, header, shards, index_temp), sync)
    created.append(rewritten)
    fs.remove(index_temp)
    return [*staged_data, empty], rewritten


def _unused_data_files(fs: Filesystem, prefix: str, keep: Iterable[str]) -> list[str]:
    """Data files of earlier saves at ``prefix`` with another shard count: unreachable now.
    Compared by name (fsspec may spell the URLs it globs differently: memory:///b, memory://b)."""
    kept = {fs.basename(path) for path in keep}
    base = fs.basename(prefix)
    return [path for path in fs.glob(storage.glob_escape(prefix) + ".data-*-of-*")
            if fs.basename(path) not in kept and DATA_SUFFIX_RE.search(fs.basename(path)[len(base):])]


def _remove_unused_data_files(fs: Filesystem, prefix: str, keep: set[str]) -> None:
    for path in _unused_data_files(fs, prefix, keep):
        fs.remove(path)


def repoint_remote(url: str, new_shards: int, fs: Filesystem | None = None) -> None:
    """Step 1 on object storage, which has no hard links: if the checkpoint at ``url`` uses
    the data file names a new one with ``new_shards`` files needs, copy (server-side) its data
    to ``-of-(N+1)`` names, add an empty last shard and replace its index by the same index
    with ``num_shards`` N+1 (one atomic PUT). It stays readable, under other names."""
    fs = fs or storage.filesystem_for(url)
    index_url = index_filename(url)
    old = fs.read_bytes(index_url)
    header = _header_of(old, index_url) if old is not None else None
    if old is None or header is None or header.num_shards != new_shards:
        return
    moved_to = new_shards + 1
    for shard in range(new_shards):
        source = data_filename(url, shard, new_shards)
        if fs.exists(source):
            fs.copy(source, data_filename(url, shard, moved_to))
    fs.write_bytes(data_filename(url, new_shards, moved_to), b"")
    # A header too unusual to patch in place is rebuilt: the old index is replaced whole by
    # one PUT, never deleted first (a save failing later must leave it readable).
    rewritten = io.BytesIO()
    _index_writer(old, header, moved_to, index_url)(rewritten)
    fs.write_bytes(index_url, rewritten.getvalue())


def _publish_by_copies(fs: Filesystem, url: str, staged: Sequence[str], index: bytes,
                       keep_staged_on_failure: bool) -> list[str]:
    """The object-store strategy: data files staged under other names than their final ones
    move there by the store itself (after step 1 if an old checkpoint uses those names; a
    writer streaming straight to a final name has done step 1 before it began); staged files
    that must survive a failure (``keep_staged_on_failure``: a merge's sources) are copied
    instead and deleted after the commit. Then the index is PUT (the commit, atomic on object
    stores), then data files the new index does not use are deleted. A failure before the
    commit deletes the new files that no index in place can use; after an unclear commit (the
    PUT failed, but may have landed) they are kept."""
    count = len(staged)
    finals = [data_filename(url, shard, count) for shard in range(count)]
    to_place = [(source, final) for source, final in zip(staged, finals) if source != final]
    finals_free = not to_place  # streamed straight to final names: the writer re-pointed first
    place = fs.copy if keep_staged_on_failure else fs.move
    try:
        if to_place:
            repoint_remote(url, count, fs)
            finals_free = True  # no index in place uses the final names now
        for source, final in to_place:
            place(source, final)
    except BaseException:
        # Until step 1 is complete the old index may still use the final names: keep them.
        discard_remote([*([] if keep_staged_on_failure else staged), *(finals if finals_free else [])], fs)
        raise
    fs.write_bytes(index_filename(url), index)  # the commit
    # Tidying is best effort: the save has succeeded, and the next one at url tidies again.
    with contextlib.suppress(Exception):
        if keep_staged_on_failure:
            discard_remote([source for source, _ in to_place], fs)
        discard_remote(_unused_data_files(fs, url, finals), fs)
    return finals


def discard_remote(urls: Iterable[str], fs: Filesystem | None = None) -> None:
    """Delete the new files of a failed remote save; best effort (the storage may be what failed)."""
    for url in dict.fromkeys(urls):
        with contextlib.suppress(Exception):  # the save's own failure is what the caller sees
            (fs or storage.filesystem_for(url)).remove(url)


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
